"""The one-line-per-epoch training summary: its parts hand-checked, and its loss equal to
the epoch mean Lightning logs."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from histvq.callbacks import progress
from histvq.callbacks.progress import EpochSummary, epoch_line, format_duration
from histvq.pipeline import train_and_evaluate


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (60, "1 min 0 s"), (3599, "59 min 59 s"),
     (3600, "1 h 0 min"), (28380, "7 h 53 min"), (-3, "0 s")],
)  # fmt: skip
def test_durations_read_as_a_progress_line_needs(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_epoch_line_names_loss_terms_codes_and_time_left() -> None:
    means = {"spatial": 5.7432e5, "temporal": 0.81234, "loss": 1006.2,
             "level1/used_codes": 9.25, "level2/used_codes": 4.0}  # fmt: skip
    assert epoch_line(2, 30, 138, means, 1032.0, 27000.0) == (
        "epoch 3/30 (step 138) in 17 min 12 s: loss 1006 (unweighted terms: spatial "
        "5.743e+05, temporal 0.8123); codes used per batch: level1 9.2, level2 4.0; "
        "about 7 h 30 min left"
    )
    assert epoch_line(29, 30, 1380, {"loss": 2.0}, 5.0, 0.0) == (
        "epoch 30/30 (step 1380) in 5 s: loss 2; done"
    )
    assert epoch_line(0, -1, 4, {"loss": 2.0}, 5.0, None) == "epoch 1 (step 4) in 5 s: loss 2"


def test_one_line_per_epoch_with_lightnings_epoch_mean_loss(
    tiny_train_config, tmp_path: Path, caplog
) -> None:
    # 8 sequences in batches of 2: equal batches, so Lightning's batch-size-weighted epoch
    # mean equals the summary's mean over batches
    cfg = tiny_train_config(
        "run", "dataset.generator.num_sequences=8", "dataset.batch_size=2",
        "dataset.bucket_by_length=false", "trainer.max_epochs=2", "eval.plots=false",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="histvq.callbacks.progress"):
        train_and_evaluate(cfg)
    lines = [r.getMessage() for r in caplog.records if r.name == "histvq.callbacks.progress"]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "; codes used per batch: level1 " in lines[0] and lines[0].endswith(" left")
    assert lines[1].endswith("; done")
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as handle:
        logged = [
            float(r["train/loss_epoch"]) for r in csv.DictReader(handle) if r["train/loss_epoch"]
        ]
    summarised = [float(re.search(r": loss (\S+)", line).group(1)) for line in lines]
    assert summarised == [float(f"{value:.4g}") for value in logged]


def test_time_left_is_the_remaining_batches_at_the_pace_so_far() -> None:
    summary = EpochSummary()
    # a resumed run: 4 batches of a half epoch in 10 s, then a whole epoch of 10 in 30 s
    summary._seconds_trained, summary._batches_trained = 40.0, 14
    trainer = SimpleNamespace(max_epochs=5, current_epoch=2, num_training_batches=10)
    assert summary._seconds_left(trainer) == pytest.approx(2 * 10 * 40.0 / 14)
    assert summary._seconds_left(SimpleNamespace(**{**vars(trainer), "max_epochs": -1})) is None
    endless = SimpleNamespace(**{**vars(trainer), "num_training_batches": float("inf")})
    assert summary._seconds_left(endless) is None


def test_an_epoch_resumed_midway_is_timed_from_the_resume(
    tiny_train_config, tmp_path: Path, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning starts no epoch when it resumes one midway; the line must not time that
    epoch from whenever the clock began. On a clock that ticks one second per reading:"""
    every = ("callbacks.model_checkpoint.every_n_train_steps=3", "trainer.max_epochs=3")
    data = ("dataset.generator.num_sequences=8", "dataset.batch_size=2",
            "dataset.bucket_by_length=false", "eval.plots=false")  # fmt: skip
    train_and_evaluate(tiny_train_config("stopped", *data, *every, "trainer.max_steps=6"))
    ticks = iter(range(10**6, 10**7))
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    checkpoint = tmp_path / "stopped" / "checkpoints" / "epoch001-step6.ckpt"
    resumed = tiny_train_config("resumed", *data, *every, f"ckpt_path={checkpoint}")
    with caplog.at_level(logging.INFO, logger="histvq.callbacks.progress"):
        train_and_evaluate(resumed)
    lines = [r.getMessage() for r in caplog.records if r.name == "histvq.callbacks.progress"]
    # 4 batches per epoch; the resume trains the last 2 of epoch 2 in 1 s (one tick from the
    # start of training to the epoch end): 0.5 s per batch, so epoch 3's 4 batches take 2 s
    assert [line.split(": ")[0] for line in lines] == [
        "epoch 2/3 (step 8) in 1 s", "epoch 3/3 (step 12) in 1 s"
    ]  # fmt: skip
    assert lines[0].endswith("; about 2 s left") and lines[1].endswith("; done")
