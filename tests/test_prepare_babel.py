"""`prepare babel`: STAL subset pickles -> babel{N} in millimetres, 'none'-heavy sequences out."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import babel_sequence, snapshot, write_babel, write_pickle

from histvq.data.layout import read_layout
from histvq.errors import ConfigError, RawFormatError
from histvq.prepare import prepare_dataset

# label rows: 0..3 actions, 4 none
SHARE_0 = [0, 0, 1, 1, 2, 3]  # 0 % none
SHARE_50 = [4, 4, 4, 1, 1, 1]  # exactly 50 % none: kept by default
SHARE_60 = [4, 4, 4, 0, 4, 4, 4, 2, 3, 1]  # 60 %: dropped by default


@pytest.fixture
def pickles(tmp_path: Path) -> list[Path]:
    train = write_babel(
        tmp_path / "train_split2.pkl",
        [101, 102, 103],
        [babel_sequence(6, 1), babel_sequence(6, 2), babel_sequence(10, 3)],
        [SHARE_0, SHARE_50, SHARE_60],
    )
    val = write_babel(tmp_path / "val_split2.pkl", ["v7"], [babel_sequence(4, 4)], [[3, 3, 0, 4]])
    return [train, val]


def test_scaling_labels_mapping_and_filtering(pickles: list[Path], tmp_path: Path) -> None:
    summary = prepare_dataset("babel", pickles, tmp_path / "out", subset=2, progress=False)
    root = tmp_path / "out" / "babel2"
    assert summary.path == root
    assert (summary.sequences, summary.frames) == (3, 6 + 6 + 4)
    assert summary.skipped == [("train_split2.pkl:103", "'none' share above 50%")]

    features = np.load(root / "features" / "101.npy")
    assert features.shape == (3, 6, 25, 1) and features.dtype == np.float32
    raw = babel_sequence(6, 1)
    np.testing.assert_array_equal(features, raw * np.float32(1000))
    assert features[2, 5, 24, 0] == raw[2, 5, 24, 0] * np.float32(1000)
    assert np.abs(features).max() > 100  # millimetres, not metres

    labels = (root / "groundTruth" / "101.txt").read_text()
    assert labels == "sit\nsit\nrun\nrun\nstand_up\nkick"
    assert (root / "groundTruth" / "102.txt").read_text().split("\n")[:3] == ["none"] * 3
    assert (root / "groundTruth" / "v7.txt").read_text() == "kick\nkick\nsit\nnone"
    assert (root / "mapping" / "mapping.txt").read_text() == (
        "0 sit\n1 run\n2 stand_up\n3 kick\n4 none"
    )
    assert sorted(p.stem for p in (root / "features").iterdir()) == ["101", "102", "v7"]
    assert read_layout(root).shape == (3, 25, 1)


def test_threshold_option_and_subset_names(pickles: list[Path], tmp_path: Path) -> None:
    loose = prepare_dataset(
        "babel", pickles, tmp_path, subset=1, none_threshold=60, name="b1", progress=False
    )
    assert loose.sequences == 4 and loose.skipped == []  # 60 % <= 60
    strict = prepare_dataset(
        "babel", pickles, tmp_path, subset=3, none_threshold=49.9, progress=False
    )
    assert strict.path == tmp_path / "babel3"
    assert sorted(item for item, _ in strict.skipped) == [
        "train_split2.pkl:102",
        "train_split2.pkl:103",
    ]
    assert (tmp_path / "babel3" / "mapping" / "mapping.txt").read_text() == (
        "0 jog\n1 wave\n2 dance\n3 gesture\n4 none"
    )
    assert (tmp_path / "b1" / "groundTruth" / "101.txt").read_text().split("\n")[::2] == [
        "walk",
        "stand",
        "turn",
    ]
    with pytest.raises(ConfigError, match="needs a subset"):
        prepare_dataset("babel", pickles, tmp_path)
    with pytest.raises(ConfigError, match="subset must be 1, 2 or 3"):
        prepare_dataset("babel", pickles, tmp_path, subset=4)
    with pytest.raises(ConfigError, match="percentage"):
        prepare_dataset("babel", pickles, tmp_path, subset=1, none_threshold=150)


def test_rerun_is_byte_identical(pickles: list[Path], tmp_path: Path) -> None:
    prepare_dataset("babel", pickles, tmp_path / "a", subset=2, progress=False)
    prepare_dataset("babel", pickles, tmp_path / "b", subset=2, progress=False)
    first = snapshot(tmp_path / "a")
    prepare_dataset("babel", pickles, tmp_path / "a", subset=2, progress=False)
    assert snapshot(tmp_path / "a") == first == snapshot(tmp_path / "b")


def test_duplicate_sids(pickles: list[Path], tmp_path: Path) -> None:
    same = write_babel(tmp_path / "more.pkl", [101], [babel_sequence(6, 1)], [SHARE_0])
    summary = prepare_dataset("babel", [*pickles, same], tmp_path / "out", subset=2, progress=False)
    assert summary.sequences == 3
    assert ("101", f"duplicate of an identical sequence in {pickles[0]}") in summary.skipped

    other = write_babel(tmp_path / "other.pkl", [101], [babel_sequence(6, 9)], [SHARE_0])
    before = snapshot(tmp_path / "out")
    with pytest.raises(RawFormatError) as caught:
        prepare_dataset("babel", [*pickles, other], tmp_path / "out", subset=2, progress=False)
    assert str(caught.value) == (
        f"{other}: sequence '101' also comes from {pickles[0]} with different content; "
        "rename or remove one of them"
    )
    assert snapshot(tmp_path / "out") == before


def _good() -> dict:
    return {
        "sid": [1, 2],
        "X": [babel_sequence(4, 1), babel_sequence(5, 2)],
        "L": [np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0, 0])],
        "Y": [0, 1],
    }


def _with(**changes) -> dict:
    data = _good()
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


MALFORMED = {
    "missing key": (_with(L=None), ": missing key(s) ['L']; found ['X', 'Y', 'sid']"),
    "not a dict": ([1, 2, 3], ": expected a dict with keys ['sid', 'X', 'L'], got list"),
    "length mismatch": (
        _with(sid=[1, 2, 3]),
        ": sid, X and L must have one entry per sequence, found lengths sid=3, X=2, L=2",
    ),
    "wrong joints": (
        _with(X=[babel_sequence(4, 1), np.zeros((3, 5, 24, 1), np.float32)]),
        ": sequence 1 (sid 2): X must be (3, T, 25, 1), got shape (3, 5, 24, 1)",
    ),
    "time first": (
        _with(X=[np.zeros((4, 3, 25, 1), np.float32), babel_sequence(5, 2)]),
        ": sequence 0 (sid 1): X must be (3, T, 25, 1), got shape (4, 3, 25, 1)",
    ),
    "nan": (
        _with(X=[babel_sequence(4, 1), np.full((3, 5, 25, 1), np.nan, np.float32)]),
        ": sequence 1 (sid 2): X contains NaN or inf",
    ),
    "frame-count mismatch": (
        _with(L=[np.array([0, 1, 2]), np.zeros(5, int)]),
        ": sequence 0 (sid 1): 3 labels but X has 4 frames",
    ),
    "label out of range": (
        _with(L=[np.array([0, 1, 2, 3]), np.array([0, 0, 5, 0, 0])]),
        ": sequence 1 (sid 2): label 5 at frame 2 is not an integer 0..4",
    ),
    "negative label": (
        _with(L=[np.array([0, -1, 2, 3]), np.zeros(5, int)]),
        ": sequence 0 (sid 1): label -1 at frame 1 is not an integer 0..4",
    ),
    "fractional label": (
        _with(L=[np.array([0, 1.5, 2, 3]), np.zeros(5, int)]),
        ": sequence 0 (sid 1): label 1.5 at frame 1 is not an integer 0..4",
    ),
    "2-d labels": (
        _with(L=[np.zeros((4, 1), int), np.zeros(5, int)]),
        ": sequence 0 (sid 1): L must be 1-d (one label per frame), got shape (4, 1)",
    ),
    "sid with a slash": (
        _with(sid=["a/b", 2]),
        ": sequence 0 (sid 'a/b'): sid cannot be used as a sequence name",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_pickle_is_a_one_line_error_and_keeps_the_old_dataset(
    case: str, pickles: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    prepare_dataset("babel", pickles, out, subset=1, progress=False)
    before = snapshot(out)
    data, message = MALFORMED[case]
    bad = write_pickle(tmp_path / "val_bad.pkl", data)
    with pytest.raises(RawFormatError) as caught:
        prepare_dataset("babel", [*pickles, bad], out, subset=1, progress=False)
    text = str(caught.value)
    assert text == f"{bad}{message}"
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["babel1"]


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))  # would create a file when unpickled

    target = ""


def test_pickles_that_would_run_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _Evil.target = str(marker)
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"sid": [1], "X": [_Evil()], "L": [[0]]}))
    with pytest.raises(RawFormatError, match=r"not a readable BABEL subset pickle \(refusing"):
        prepare_dataset("babel", bad, tmp_path / "out", subset=1, progress=False)
    assert not marker.exists()
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(pickle.dumps(_good())[:100])
    with pytest.raises(RawFormatError, match="not a readable BABEL subset pickle"):
        prepare_dataset("babel", truncated, tmp_path / "out", subset=1, progress=False)


def test_all_sequences_filtered_is_an_error(tmp_path: Path) -> None:
    only_none = write_babel(tmp_path / "p.pkl", [1], [babel_sequence(3, 0)], [[4, 4, 4]])
    with pytest.raises(RawFormatError, match="no sequences left to write; skipped 1"):
        prepare_dataset("babel", only_none, tmp_path / "out", subset=1, progress=False)
    assert not (tmp_path / "out" / "babel1").exists()
