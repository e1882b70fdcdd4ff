"""The prepared-folder layout: round trip, atomic writes, and every validation error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_script

from histvq.data.layout import LayoutWriter, read_layout, write_layout
from histvq.errors import LayoutError

MAPPING = {0: "walk", 1: "sit", 2: "jump"}


def make_dataset(root: Path, name: str = "toy") -> Path:
    rng = np.random.default_rng(0)
    return write_layout(root, name, MAPPING, [
        ("b_seq", rng.normal(size=(3, 5, 4, 1)), ["walk"] * 3 + ["sit"] * 2),
        ("a_seq", rng.normal(size=(3, 4, 4, 1)), ["jump"] * 4),
    ])  # fmt: skip


def test_round_trip_sorted_by_name_with_label_ids(tmp_path: Path) -> None:
    data = read_layout(make_dataset(tmp_path))
    assert [s.name for s in data.sequences] == ["a_seq", "b_seq"]
    assert data.mapping == MAPPING and data.shape == (3, 4, 1) and data.num_frames == 9
    assert data.sequences[1].labels.tolist() == [0, 0, 0, 1, 1]
    assert data.sequences[0].features.dtype == np.float32
    assert data.present_label_ids() == [0, 1, 2]
    text = (tmp_path / "toy" / "groundTruth" / "b_seq.txt").read_text()
    assert text == "walk\nwalk\nwalk\nsit\nsit"  # SMQ's format: no trailing newline
    assert (tmp_path / "toy" / "mapping" / "mapping.txt").read_text() == "0 walk\n1 sit\n2 jump"


def test_failed_write_leaves_the_existing_dataset_untouched(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    before = sorted(p.read_bytes() for p in (tmp_path / "toy").rglob("*") if p.is_file())
    with pytest.raises(RuntimeError), LayoutWriter(tmp_path, "toy", MAPPING) as writer:
        writer.add("new", np.zeros((3, 2, 4, 1)), ["walk", "walk"])
        raise RuntimeError("interrupted")
    after = sorted(p.read_bytes() for p in (tmp_path / "toy").rglob("*") if p.is_file())
    assert before == after
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no temporary folder left


def test_rewrite_replaces_the_dataset_as_a_whole(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    write_layout(tmp_path, "toy", MAPPING, [("only", np.ones((3, 2, 4, 1)), ["sit", "sit"])])
    assert [s.name for s in read_layout(tmp_path / "toy").sequences] == ["only"]


def _corrupt(root: Path, how: str) -> str:
    """Break a valid dataset in one way; return the expected message fragment."""
    folder = root / "toy"
    features, labels = folder / "features", folder / "groundTruth"
    if how == "nan":
        array = np.load(features / "b_seq.npy")
        array[1, 2, 3, 0] = np.nan
        np.save(features / "b_seq.npy", array)
        return "b_seq.npy: contains NaN or inf (first at channel 1, frame 2, joint 3, person 0)"
    if how == "length":
        (labels / "b_seq.txt").write_text("walk\nwalk\nsit")
        return "b_seq.txt: 3 labels but b_seq.npy has 5 frames"
    if how == "ndim":
        np.save(features / "a_seq.npy", np.zeros((3, 4, 4)))
        return "a_seq.npy: expected a 4-d array (C, T, V, M), got shape (3, 4, 4)"
    if how == "shape":
        np.save(features / "b_seq.npy", np.zeros((3, 5, 7, 1), dtype=np.float32))
        return "b_seq.npy: (C, V, M) = (3, 7, 1) differs from a_seq.npy's (3, 4, 1)"
    if how == "unknown_label":
        (labels / "a_seq.txt").write_text("jump\nrun\njump\njump")
        return "a_seq.txt:2: label 'run' is not in mapping/mapping.txt"
    if how == "missing_labels":
        (labels / "a_seq.txt").unlink()
        return "a_seq.txt: label file for a_seq.npy is missing"
    if how == "empty":
        for f in features.glob("*.npy"):
            f.unlink()
        return "features: no .npy feature files"
    if how == "mapping":
        (folder / "mapping" / "mapping.txt").write_text("0 walk\nx sit\n")
        return "mapping.txt:2: expected '<int id> <label name>', got 'x sit'"
    if how == "not_npy":
        (features / "a_seq.npy").write_text("hello")
        return "a_seq.npy: not a readable .npy array"
    raise AssertionError(how)


CASES = ["nan", "length", "ndim", "shape", "unknown_label", "missing_labels", "empty", "mapping",
         "not_npy"]  # fmt: skip


@pytest.mark.parametrize("how", CASES)
def test_every_malformed_dataset_gets_a_one_line_error_naming_the_file(
    tmp_path: Path, how: str
) -> None:
    make_dataset(tmp_path)
    expected = _corrupt(tmp_path, how)
    with pytest.raises(LayoutError) as error:
        read_layout(tmp_path / "toy")
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_missing_folder_is_a_layout_error(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        read_layout(tmp_path / "nowhere")


def test_training_on_a_malformed_folder_fails_in_one_line(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    expected = _corrupt(tmp_path, "nan")
    result = run_script(
        [
            "train.py",
            "dataset=folder",
            "dataset.name=toy",
            "dataset.patch_size=2",
            f"paths.data_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in result.stderr
