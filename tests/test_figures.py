"""The numbers behind the comparison figures: segments per sequence against the ground truth."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from histvq.errors import ConfigError
from histvq.figures import (
    RunLabels,
    draw,
    load_run_labels,
    patch_oracle_table,
    segment_table,
    short_segment_table,
    stray_boundary_table,
)


def _run(name: str, predictions: dict[str, list[int]]) -> RunLabels:
    targets = {"a": np.array([0, 0, 0, 1, 1, 1]), "b": np.array([1, 1, 1, 1])}
    return RunLabels(
        name,
        {0: "walking", 1: "sitting"},
        {key: np.array(value) for key, value in predictions.items()},
        targets,
    )


def test_segment_table_counts_against_the_ground_truth() -> None:
    fine = _run("fine", {"a": [0, 1, 0, 1, 1, 1], "b": [1, 0, 1, 1]})  # 4 + 3 segments
    coarse = _run("coarse", {"a": [0, 0, 0, 0, 0, 0], "b": [1, 1, 1, 1]})  # 1 + 1
    rows = segment_table([fine, coarse])
    assert [row["source"] for row in rows] == ["ground truth", "fine", "coarse"]
    assert [row["segments"] for row in rows] == [3.0, 7.0, 2.0]
    assert [row["ratio_to_ground_truth"] for row in rows] == pytest.approx([1.0, 7 / 3, 2 / 3])
    assert rows[0]["median"] == 3.0 and rows[2]["median"] == 5.0
    # no patch size: exact boundaries; "fine" has 5, of which frame 3 is the true one
    assert [row["boundary_tolerance"] for row in rows] == [0, 0, 0]
    assert [row["boundary_precision"] for row in rows[:2]] == [1.0, 0.2]
    assert [row["boundary_recall"] for row in rows] == [1.0, 1.0, 0.0]
    assert np.isnan(rows[2]["boundary_precision"])
    fine.patch_size = 1  # within one frame: boundaries 2, 3 of the first sequence
    assert segment_table([fine])[1]["boundary_precision"] == pytest.approx(0.4)


def test_draw_writes_the_segment_table_beside_the_figures(tmp_path: Path) -> None:
    run = _run("model", {"a": [0, 0, 1, 1, 1, 1], "b": [1, 1, 1, 1]})
    written = draw([run], ["a"], tmp_path, "demo")
    assert {path.name for path in written} == {
        "demo_segment_lengths.png", "demo_segments.csv", "demo_stray_boundaries.csv", "demo_a.png",
    }  # fmt: skip
    with (tmp_path / "demo_segments.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["source"], r["segments_per_sequence"]) for r in rows] == [
        ("ground truth", "1.5"), ("model", "1.5"),
    ]  # fmt: skip
    assert rows[1]["median"] == "4.0"


def test_patch_oracle_scores_the_ground_truth_at_patch_resolution() -> None:
    targets = [np.array([0, 0, 1, 1, 1, 0]), np.array([1, 1, 1, 1])]
    # 3-frame patches: [0 0 1] -> 0, [1 1 0] -> 1; the second sequence stays all 1
    (row,) = patch_oracle_table(targets, [3])
    assert row["patch_size"] == 3 and row["segments_per_sequence"] == 1.5
    assert row["mof"] == pytest.approx(80.0)  # 4 of 6 and 4 of 4 frames
    assert row["edit"] == pytest.approx((100 * (1 - 1 / 3) + 100) / 2)  # [0 1] vs [0 1 0]
    # IoUs 2/3 and 2/4 in the first sequence, 1 in the second: 3 hits of 4 true segments
    assert row["f1@50"] == pytest.approx(100 * 2 * 0.75 / 1.75)
    assert row["jsd"] == pytest.approx(0.0)  # every length in the first 20-frame bin
    exact = patch_oracle_table(targets, [1])[0]
    assert [exact[key] for key in ("mof", "edit", "f1@50")] == [100.0, 100.0, 100.0]


def test_draw_writes_the_patch_oracle_for_runs_with_a_patch_size(tmp_path: Path) -> None:
    run = _run("model", {"a": [0, 0, 1, 1, 1, 1], "b": [1, 1, 1, 1]})
    run.patch_size = 4
    written = draw([run], [], tmp_path, "demo")
    assert tmp_path / "demo_patch_oracle.csv" in written
    with (tmp_path / "demo_short_segments.csv").open() as handle:
        short = list(csv.DictReader(handle))
    assert [(r["source"], r["max_length"]) for r in short] == [
        ("ground truth", "4"),
        ("model", "4"),
    ]
    with (tmp_path / "demo_patch_oracle.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    # [0 0 0 1] [1 1] -> 0 0 0 0 1 1: 9 of 10 frames
    assert row["source"] == "ground truth, majority label per 4-frame patch"
    assert (row["patch_size"], row["mof"], row["edit"]) == ("4", "90.0", "100.0")
    # patches [0 0 0 1] -> 0 at timestamp 0 and [1 1] -> 1 at 1; "b": one patch, 1 at 0
    assert row["timestamp_mse_constant"] == str(round(np.var([0.0, 1.0, 0.0]), 4))
    assert float(row["timestamp_mse_per_label"]) == pytest.approx(0.5**2 * 2 / 3, abs=1e-4)


def test_short_segment_table_scores_before_and_after_merging_short_segments() -> None:
    # "a": a one-frame sitting inside walking, a one-frame walking one frame late (true:
    # 0 0 0 1 1 1); "b": one flicker
    run = _run("flicker", {"a": [0, 0, 1, 0, 1, 1], "b": [1, 1, 0, 1]})
    truth, flicker = short_segment_table([run], 1)
    assert truth["source"] == "ground truth" and truth["max_length"] == 1
    assert (truth["edit"], truth["absorbed_edit"]) == (100.0, 100.0)  # no short true segment
    assert (flicker["segments_per_sequence"], flicker["absorbed_segments_per_sequence"]) == (
        3.5, 1.5,
    )  # fmt: skip
    # before: edits 1 - 2/4 and 1 - 2/3; after: "a" is 0 0 0 0 1 1, "b" all sitting
    assert flicker["edit"] == pytest.approx((50.0 + 100 / 3) / 2)
    assert flicker["mof"] == pytest.approx(70.0)  # 4 of 6 and 3 of 4 frames
    assert flicker["absorbed_mof"] == pytest.approx(90.0)  # 5 of 6 and 4 of 4
    assert (flicker["absorbed_edit"], flicker["absorbed_f1@50"]) == (100.0, 100.0)
    # merging a true short segment costs the ground truth itself
    (short_truth,) = short_segment_table([_run("x", {"a": [0] * 6, "b": [1] * 4})], 3)[:1]
    assert short_truth["absorbed_segments_per_sequence"] == 1.0  # 0 0 0 1 1 1 -> one segment
    assert short_truth["absorbed_edit"] == pytest.approx(75.0)  # (50 + 100) / 2


def test_stray_boundary_table_names_the_activities_cut_into_pieces() -> None:
    # "a": true boundary at 3; predicted 1, 2 (inside walking) and 3; "b": 1, 2 inside sitting
    fine = _run("fine", {"a": [0, 1, 0, 1, 1, 1], "b": [1, 0, 1, 1]})
    rows = stray_boundary_table([fine])
    assert [(r["label"], r["frames"], r["stray_boundaries"]) for r in rows] == [
        ("walking", 3, 2), ("sitting", 7, 2),
    ]  # fmt: skip
    assert rows[0]["per_1000_frames"] == pytest.approx(1000 * 2 / 3)
    fine.patch_size = 1  # boundary 2 is now one frame from the true one
    assert [r["stray_boundaries"] for r in stray_boundary_table([fine])] == [1, 2]


def _toy_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run folder trained from ``<tmp>/project`` on the relative dataset ``data/toy``;
    returns (run folder, dataset folder)."""
    launch, run = tmp_path / "project", tmp_path / "runs" / "r0"
    dataset = launch / "data" / "toy"
    for folder in ("mapping", "groundTruth"):
        (dataset / folder).mkdir(parents=True)
    (dataset / "mapping" / "mapping.txt").write_text("0 walking\n1 sitting\n")
    (dataset / "groundTruth" / "s.txt").write_text("walking\nwalking\nsitting\n")
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "dataset:\n  data_dir: data\n  name: toy\n  patch_size: 2\n"
    )
    (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {launch}\n")
    (run / "predictions").mkdir()
    (run / "predictions" / "s.txt").write_text("walking\ncluster_3\nsitting\n")
    return run, dataset


def test_a_run_reads_its_relative_dataset_path_from_where_it_was_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = _toy_run(tmp_path)
    monkeypatch.chdir(tmp_path)  # not the folder training started from
    labels = load_run_labels("model", run)
    assert labels.patch_size == 2
    assert labels.targets["s"].tolist() == [0, 0, 1]
    assert labels.predictions["s"][[0, 2]].tolist() == [0, 1] and labels.predictions["s"][1] < 0


def test_a_run_whose_dataset_lost_or_changed_its_ground_truth_is_a_clear_error(
    tmp_path: Path,
) -> None:
    run, dataset = _toy_run(tmp_path)
    truth = dataset / "groundTruth" / "s.txt"
    truth.write_text("walking\nrunning\nsitting\n")
    with pytest.raises(ConfigError, match=r"s\.txt: labels \['running'\] are not in the dataset"):
        load_run_labels("model", run)
    truth.unlink()
    with pytest.raises(ConfigError, match=r"s\.txt: the run's dataset has no ground truth"):
        load_run_labels("model", run)


def test_a_folder_that_is_no_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"neither a training run folder .* nor an evaluate\.py"):
        load_run_labels("model", tmp_path)
