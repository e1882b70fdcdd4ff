"""Resuming and reproducibility: exact resume (epoch end, mid-epoch, after SIGKILL or SIGTERM,
ckpt_path=last), checkpoints during training, and the divergence guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY

from histvq.callbacks.divergence import DivergenceError
from histvq.errors import ConfigError
from histvq.pipeline import train_and_evaluate
from histvq.report.history import read_log

# Dropout on, several batches per epoch and periodic evaluations between epochs: every
# source of randomness and order a resume must restore is exercised.
EXACT = (
    "dataset.generator.num_sequences=7",
    "dataset.batch_size=2",
    "dataset.bucket_by_length=false",
    "callbacks.segmentation_evaluation.every_n_epochs=1",
    "eval.plots=false",
    "model.encoder.hidden_channels=16",  # wide enough not to collapse to one cluster
    "seed=3",
)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_checkpoints_are_written_every_epoch(tiny_train_config, tmp_path: Path) -> None:
    cfg = tiny_train_config("run", *EXACT, "trainer.max_epochs=3")
    train_and_evaluate(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch002-step12.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 12
    assert len(last["callbacks"]["RNGStates"]["per_rank"]) == 1
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 2, "batches": 4}
    ]


def test_resume_at_an_epoch_end_equals_an_uninterrupted_run(tiny_train_config, tmp_path) -> None:
    straight = tiny_train_config("straight", *EXACT, "trainer.max_epochs=4")
    train_and_evaluate(straight)
    half = tiny_train_config("half", *EXACT, "trainer.max_epochs=2")
    train_and_evaluate(half)
    resumed = tiny_train_config(
        "resumed", *EXACT, "trainer.max_epochs=4",
        f"ckpt_path={tmp_path / 'half' / 'checkpoints' / 'last.ckpt'}",
    )  # fmt: skip
    train_and_evaluate(resumed)
    assert _metrics(tmp_path / "resumed") == _metrics(tmp_path / "straight")
    assert _metrics(tmp_path / "half") != _metrics(tmp_path / "straight")


def _training_log(run: Path) -> dict[str, dict[str, str]]:
    """Step -> the training values the run logged at that step. Evaluations are left out:
    the interrupted run also evaluated itself when it stopped (a line with a step but no
    epoch), and the uninterrupted one evaluated after epoch 1 instead."""
    return {
        line["step"]: {k: v for k, v in line.items() if not k.startswith("eval/")}
        for line in read_log(run / "csv" / "metrics.csv")
        if "epoch" in line
    }


def test_ckpt_path_last_starts_then_continues_the_run_folder_and_its_log(
    tiny_train_config, tmp_path: Path
) -> None:
    straight = tiny_train_config("straight", *EXACT, "trainer.max_epochs=4")
    train_and_evaluate(straight)
    # No checkpoint in the folder yet: training starts from scratch.
    train_and_evaluate(tiny_train_config("run", *EXACT, "trainer.max_epochs=2", "ckpt_path=last"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1
    # The same command with more epochs continues it, log included.
    train_and_evaluate(tiny_train_config("run", *EXACT, "trainer.max_epochs=4", "ckpt_path=last"))
    assert _metrics(tmp_path / "run") == _metrics(tmp_path / "straight")
    resumed_log = _training_log(tmp_path / "run")
    # 4 steps per epoch, a line every 5 steps and one at each epoch's end: steps 3, 4 and 7
    # were trained before the interruption.
    assert sorted(resumed_log, key=int) == ["3", "4", "7", "9", "11", "14", "15"]
    assert resumed_log == _training_log(tmp_path / "straight")


@pytest.mark.parametrize(
    ("override", "message"),
    [("~callbacks.model_checkpoint", "callbacks.model_checkpoint is disabled, so this run"),
     ("callbacks.model_checkpoint.dirpath=null", "callbacks.model_checkpoint.dirpath must be")],
)  # fmt: skip
def test_ckpt_path_last_without_a_checkpoint_folder_is_a_config_error(
    tiny_train_config, override: str, message: str
) -> None:
    cfg = tiny_train_config("run", "ckpt_path=last", override)
    with pytest.raises(ConfigError) as raised:
        train_and_evaluate(cfg)
    assert str(raised.value).startswith(f"ckpt_path=last: {message}")


def test_resume_mid_epoch_continues_with_the_next_batch(tiny_train_config, tmp_path) -> None:
    every = "callbacks.model_checkpoint.every_n_train_steps=3"
    straight = tiny_train_config("straight", *EXACT, every, "trainer.max_epochs=3")
    train_and_evaluate(straight)
    # 4 batches per epoch: step 7 is the third batch of the second epoch
    stopped = tiny_train_config(
        "stopped", *EXACT, every, "trainer.max_epochs=3", "trainer.max_steps=6"
    )
    train_and_evaluate(stopped)
    checkpoint = tmp_path / "stopped" / "checkpoints" / "epoch001-step6.ckpt"
    state = torch.load(checkpoint, weights_only=False)
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": 2}
    ]
    resumed = tiny_train_config(
        "resumed", *EXACT, every, "trainer.max_epochs=3", f"ckpt_path={checkpoint}"
    )
    train_and_evaluate(resumed)
    assert _metrics(tmp_path / "resumed") == _metrics(tmp_path / "straight")


@pytest.mark.parametrize("step", [6, 8])  # within epoch 1; after its last batch
def test_sigterm_writes_the_last_checkpoint_and_ckpt_path_last_continues_exactly(
    tiny_train_config, tmp_path: Path, step: int
) -> None:
    straight = tiny_train_config("straight", *EXACT, "trainer.max_epochs=3")
    train_and_evaluate(straight)
    stop = ("+callbacks.sigterm._target_=_poison.SigtermAt", f"+callbacks.sigterm.step={step}")
    with pytest.raises(SystemExit) as raised:
        train_and_evaluate(tiny_train_config("run", *EXACT, "trainer.max_epochs=3", *stop))
    assert raised.value.code == 143  # not Lightning's status 0: the run did not finish
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == step
    assert not (tmp_path / "run" / "metrics.json").exists()
    train_and_evaluate(tiny_train_config("run", *EXACT, "trainer.max_epochs=3", "ckpt_path=last"))
    assert _metrics(tmp_path / "run") == _metrics(tmp_path / "straight")


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tiny_train_config, tmp_path: Path
) -> None:
    cfg = tiny_train_config(
        "run", *EXACT, "trainer.max_epochs=4", "+callbacks.poison._target_=_poison.PoisonAt",
        "+callbacks.poison.step=6",
    )  # fmt: skip
    with pytest.raises(DivergenceError) as raised:
        train_and_evaluate(cfg)
    message = str(raised.value)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert "\n" not in message
    assert "at step 6: loss term 'spatial' is not finite" in message
    assert f"last good checkpoint: {last} (kept)" in message
    kept = torch.load(last, weights_only=False)
    assert kept["global_step"] == 4  # the end of epoch 1, before the poisoned step
    assert all(
        torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point()
    )


def _start(run: Path, data: Path, *extra: str) -> subprocess.Popen:
    args = [
        sys.executable, "train.py", f"paths.data_dir={data}", f"hydra.run.dir={run}",
        *TINY, *EXACT, "trainer.max_epochs=8", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_run_resumed_in_place_equals_an_uninterrupted_run(tmp_path: Path, stop) -> None:
    data = tmp_path / "data"
    straight = _start(tmp_path / "straight", data)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-2000:]
    killed = _start(tmp_path / "killed", data)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # let it get further, possibly into writing the next checkpoint
    assert killed.poll() is None, "the run finished before it could be killed"
    killed.send_signal(stop)
    assert killed.wait(timeout=120) == (143 if stop == signal.SIGTERM else -signal.SIGKILL)
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert torch.load(last, weights_only=False)["epoch"] < 7  # an intact, earlier checkpoint
    if stop == signal.SIGTERM:  # written at the end of the batch SIGTERM arrived in
        assert "stopped by SIGTERM after step" in (tmp_path / "killed" / "train.log").read_text()
    resumed = _start(tmp_path / "killed", data, "ckpt_path=last")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "straight")
