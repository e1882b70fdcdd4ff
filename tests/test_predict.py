"""python -m histvq.predict: same segments as the run's own evaluation, raw inputs, outputs."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import (
    babel_sequence,
    hugadb_lines,
    lara_motion,
    write_babel,
    write_lara_pair,
    write_text,
)
from conftest import TINY, compose_config

from histvq.errors import ConfigError, HistvqError
from histvq.evaluation.segment import array_batches, segment_arrays
from histvq.models.checkpoint import load_trained
from histvq.pipeline import train_and_evaluate
from histvq.predict import (
    ClusterNames,
    PredictInputError,
    load_cluster_names,
    load_inputs,
    predict_recordings,
    reader_options,
    segments_of,
)

MODEL_TINY = [o for o in TINY if not o.startswith("dataset.")]


def _train(root: Path, *overrides: str) -> Path:
    cfg = compose_config(
        "train",
        [
            f"paths.data_dir={root / 'data'}",
            f"paths.output_dir={root / 'run'}",
            "logger=none",
            *overrides,
        ],
    )
    train_and_evaluate(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny HiST-VQ run on 4 synthetic sequences (run folder; data under ../data)."""
    return _train(tmp_path_factory.mktemp("synthetic"), *TINY)


def _hugadb_file(path: Path, num_frames: int, activities: list[int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    values = rng.integers(-2000, 2000, size=(num_frames, 36))
    per_frame = np.repeat(activities, -(-num_frames // len(activities)))[:num_frames]
    return write_text(path, hugadb_lines(values, per_frame.tolist()))


@pytest.fixture(scope="module")
def hugadb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model trained on a HuGaDB-shaped dataset prepared from raw files written here:
    (run folder, raw folder)."""
    from histvq.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("hugadb")
    raw = root / "raw"
    _hugadb_file(raw / "HuGaDB_v2_various_01_00.txt", 150, [1, 8, 5], seed=1)
    _hugadb_file(raw / "HuGaDB_v2_various_01_01.txt", 110, [4, 1], seed=2)
    _hugadb_file(raw / "HuGaDB_v2_various_02_00.txt", 97, [8, 1, 4], seed=3)
    prepare_dataset("hugadb", [raw], root / "data", progress=False)
    run = _train(root, "dataset=hugadb", "dataset.patch_size=20", *MODEL_TINY)
    return run, raw


def _frame_labels(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["label"] for row in csv.DictReader(handle)]


def _check_segment_files(out: Path, name: str) -> list[dict]:
    """Segments tile the sequence, CSV and JSON agree, and agree with the frame file."""
    with (out / f"{name}.frames.csv").open(newline="") as handle:
        frames = list(csv.DictReader(handle))
    data = json.loads((out / f"{name}.segments.json").read_text())
    segments = data["segments"]
    with (out / f"{name}.segments.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [{k: str(v) for k, v in s.items()} for s in segments] == rows
    assert data["num_frames"] == len(frames)
    assert [int(f["frame"]) for f in frames] == list(range(len(frames)))
    assert segments[0]["start"] == 0 and segments[-1]["end"] == len(frames)
    assert sum(s["length"] for s in segments) == len(frames)
    for before, after in itertools.pairwise(segments):
        assert before["end"] == after["start"] and before["cluster"] != after["cluster"]
    for s in segments:
        assert s["length"] == s["end"] - s["start"] > 0
        for f in frames[s["start"] : s["end"]]:
            assert (int(f["cluster"]), f["label"]) == (s["cluster"], s["label"])
    return segments


def test_predict_on_the_prepared_folder_reproduces_the_run(synthetic_run: Path, tmp_path: Path):
    run = synthetic_run
    ckpt = run / "checkpoints" / "last.ckpt"
    summary = predict_recordings(ckpt, run.parent / "data" / "synthetic", tmp_path, batch_size=3)
    expected = sorted((run / "predictions").glob("*.txt"))
    assert [s["name"] for s in summary["sequences"]] == [p.stem for p in expected]
    assert summary["kind"] == "layout"
    assert summary["cluster_mapping"] == str(run / "cluster_mapping.json")
    for path in expected:
        assert _frame_labels(tmp_path / f"{path.stem}.frames.csv") == path.read_text().split()
        _check_segment_files(tmp_path, path.stem)
        assert (tmp_path / f"{path.stem}.png").stat().st_size > 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert summary["num_frames"] == metrics["num_frames"]
    assert sum(summary["label_frames"].values()) == metrics["num_frames"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    # with the run's mapping, agreement with the ground truth is the global MoF
    agree = sum(s["agreement"] * s["num_frames"] for s in summary["sequences"]) / 100
    assert agree / summary["num_frames"] * 100 == pytest.approx(metrics["global"]["mof"])


def test_padding_and_batch_size_do_not_change_codes(synthetic_run: Path) -> None:
    trained = load_trained(synthetic_run / "checkpoints" / "last.ckpt", "cpu")
    assert trained.kind == "synthetic" and trained.spec.num_joints == 25
    model = trained.model.train()
    features = [
        np.load(p) for p in sorted((synthetic_run.parent / "data/synthetic/features").glob("*.npy"))
    ]
    features.append(features[0][:, :7].copy())  # shorter than one patch
    one = segment_arrays(model, features, batch_size=1)
    many = segment_arrays(model, features, batch_size=16)
    assert [len(c) for c in one] == [f.shape[1] for f in features]
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.training  # the previous mode is restored
    (batch,) = array_batches([features[-1], features[0]], batch_size=2, patch_size=30)
    padded, mask, lengths = batch["features"], batch["mask"], batch["length_list"]
    assert padded.shape[2] == 30 * -(-features[0].shape[1] // 30)
    assert mask.sum(1).tolist() == lengths == [7, features[0].shape[1]]
    assert batch["index"].tolist() == [0, 1]  # in length order
    assert float(padded[0, :, 7:].abs().sum()) == 0.0


def test_npy_and_unlabelled_inputs_without_mapping(synthetic_run: Path, tmp_path: Path) -> None:
    """A lone .npy (no ground truth) and a copied checkpoint without cluster_mapping.json."""
    source = sorted((synthetic_run.parent / "data/synthetic/features").glob("*.npy"))[1]
    array = tmp_path / "recording.npy"
    shutil.copy(source, array)
    lonely = tmp_path / "elsewhere" / "checkpoints" / "last.ckpt"
    lonely.parent.mkdir(parents=True)
    shutil.copy(synthetic_run / "checkpoints" / "last.ckpt", lonely)

    named = predict_recordings(synthetic_run / "checkpoints/last.ckpt", array, tmp_path / "a")
    bare = predict_recordings(lonely, array, tmp_path / "b", plots=False)
    assert named["kind"] == bare["kind"] == "npy"
    assert named["sequences"][0]["ground_truth"] is False
    assert "agreement" not in named["sequences"][0]
    assert (tmp_path / "a" / "recording.png").is_file()
    assert not (tmp_path / "b" / "recording.png").exists()
    assert bare["cluster_mapping"] is None
    with (tmp_path / "b" / "recording.frames.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["label"] == f"cluster_{r['cluster']}" for r in rows)
    expected = (synthetic_run / "predictions" / f"{source.stem}.txt").read_text().split()
    assert _frame_labels(tmp_path / "a" / "recording.frames.csv") == expected
    mapping = json.loads((synthetic_run / "cluster_mapping.json").read_text())["clusters"]
    for row, label in zip(rows, expected, strict=True):
        assert mapping.get(row["cluster"], f"cluster_{row['cluster']}") == label


def test_raw_hugadb_recording(hugadb_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, raw = hugadb_run
    ckpt = run / "checkpoints" / "last.ckpt"
    one = predict_recordings(ckpt, raw / "HuGaDB_v2_various_01_01.txt", tmp_path / "one")
    assert one["kind"] == "hugadb" and one["num_sequences"] == 1
    entry = one["sequences"][0]
    assert entry["name"] == "HuGaDB_v2_various_01_01" and entry["ground_truth"] is True
    expected = (run / "predictions" / "HuGaDB_v2_various_01_01.txt").read_text().split()
    assert _frame_labels(tmp_path / "one" / "HuGaDB_v2_various_01_01.frames.csv") == expected
    _check_segment_files(tmp_path / "one", "HuGaDB_v2_various_01_01")

    folder = predict_recordings(ckpt, raw, tmp_path / "all", plots=False)
    assert [s["name"] for s in folder["sequences"]] == sorted(p.stem for p in raw.glob("*.txt"))
    assert folder["num_frames"] == 150 + 110 + 97
    chosen = predict_recordings(ckpt, raw, tmp_path / "some", pattern="*_01_*.txt", plots=False)
    assert [s["name"] for s in chosen["sequences"]] == [
        "HuGaDB_v2_various_01_00", "HuGaDB_v2_various_01_01",
    ]  # fmt: skip
    for path in (run / "predictions").glob("*.txt"):
        assert (
            _frame_labels(tmp_path / "all" / f"{path.stem}.frames.csv") == path.read_text().split()
        )


def test_shape_mismatch_is_a_clear_error(
    synthetic_run: Path, hugadb_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, raw = hugadb_run
    recording = raw / "HuGaDB_v2_various_01_00.txt"
    with pytest.raises(PredictInputError, match=r"\(C, V, M\) = \(6, 6, 1\).*\(3, 25, 1\)"):
        predict_recordings(
            synthetic_run / "checkpoints/last.ckpt", recording, tmp_path, kind="hugadb"
        )
    # raw files need a kind when the checkpoint was trained on prepared data
    with pytest.raises(PredictInputError, match="give kind="):
        predict_recordings(synthetic_run / "checkpoints/last.ckpt", raw, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def _run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """``python -m histvq.predict ARGS`` in-process (a fresh interpreter costs ~8 s of imports)."""
    import sys

    from histvq import predict

    monkeypatch.setattr(sys, "argv", ["histvq.predict", *args])
    predict.main()


def test_cli_writes_into_the_hydra_run_dir(
    synthetic_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    ckpt = synthetic_run / "checkpoints" / "last.ckpt"
    data = synthetic_run.parent / "data" / "synthetic"
    _run_cli(monkeypatch, f"ckpt_path={ckpt}", f"input={data}",
             f"hydra.run.dir={tmp_path / 'run'}", "plots=false")  # fmt: skip
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_sequences"] == 4 and summary["output_dir"] == str(tmp_path / "run")
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
    assert not list((tmp_path / "run").glob("*.png"))
    assert "segmented 4 sequence(s)" in capsys.readouterr().out


def test_cli_reports_bad_input_in_one_line(
    hugadb_run: tuple[Path, Path], synthetic_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    data = synthetic_run.parent / "data" / "synthetic"
    with pytest.raises(SystemExit) as exit_info:
        _run_cli(monkeypatch, f"ckpt_path={hugadb_run[0] / 'checkpoints/last.ckpt'}",
                 f"input={data}", f"hydra.run.dir={tmp_path / 'bad'}")  # fmt: skip
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(C, V, M) = (3, 25, 1)" in errors[0]
    assert "(6, 6, 1)" in errors[0]


def test_segments_of_hand_checked() -> None:
    names = ClusterNames({2: "walk"}, {2: 0})
    segments = segments_of(np.array([2, 2, 5, 5, 5, 2]), names)
    assert [s.to_dict() for s in segments] == [
        {"start": 0, "end": 2, "length": 2, "cluster": 2, "label": "walk"},
        {"start": 2, "end": 5, "length": 3, "cluster": 5, "label": "cluster_5"},
        {"start": 5, "end": 6, "length": 1, "cluster": 2, "label": "walk"},
    ]


def test_cluster_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster_mapping.json"
    path.write_text(json.dumps({"clusters": {"0": "b", "3": "a"}}))
    names = load_cluster_names(path, {0: "a", 1: "b"})
    assert names.names == {0: "b", 3: "a"} and names.label_ids == {0: 1, 3: 0}
    assert load_cluster_names(tmp_path / "missing.json", {}).source is None
    path.write_text(json.dumps({"clusters": ["a"]}))
    with pytest.raises(PredictInputError, match=r"cluster_mapping\.json"):
        load_cluster_names(path, {})


def test_lara_recording_without_labels_reads_like_the_preparation(tmp_path: Path) -> None:
    motion = lara_motion(13, seed=4)
    write_lara_pair(tmp_path / "labelled", "L01_S01_R01", motion, [0] * 6 + [1] * 7)
    (tmp_path / "bare").mkdir()
    shutil.copy(tmp_path / "labelled" / "L01_S01_R01.csv", tmp_path / "bare" / "L01_S01_R01.csv")
    options = reader_options("lara", {}, None, {"sample_rate": 2, "root_joint": 11})
    assert options == {"require_labels": False, "sample_rate": 2, "root_joint": 11}
    [labelled], _ = load_inputs(tmp_path / "labelled", "lara", options)
    [bare], _ = load_inputs(tmp_path / "bare", "lara", options)
    assert labelled.labels == ["Standing"] * 3 + ["Walking"] * 4
    assert bare.labels is None
    np.testing.assert_array_equal(bare.features, labelled.features)
    assert bare.features.shape == (6, 7, 22, 1)
    with pytest.raises(ConfigError, match="subset"):
        reader_options("lara", {}, None, {"subset": 1})


def test_babel_pickle_keeps_every_sequence(tmp_path: Path) -> None:
    pickle = write_babel(
        tmp_path / "val_split2.pkl",
        [7, 3],
        [babel_sequence(5, 0), babel_sequence(4, 1)],
        [[4, 4, 4, 4, 0], [1, 1, 2, 2]],
    )
    sequences, skipped = load_inputs(pickle, "babel", {"subset": 2, "none_threshold": 100.0})
    assert [s.name for s in sequences] == ["3", "7"] and skipped == []
    assert sequences[1].labels == ["none"] * 4 + ["sit"]
    np.testing.assert_allclose(sequences[0].features, babel_sequence(4, 1) * 1000, rtol=1e-6)
    with pytest.raises(ConfigError, match="subset"):
        load_inputs(pickle, "babel", {})


def test_missing_input_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(HistvqError, match="does not exist"):
        load_inputs(tmp_path / "nope", "npy")
    with pytest.raises(ConfigError, match="kind"):
        load_inputs(tmp_path, "video")
