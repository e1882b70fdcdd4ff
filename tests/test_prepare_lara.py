"""`prepare lara`: OMoCap CSV + labels CSV -> root-centred, downsampled (6, T, 22, 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import (
    LARA_CLASSES,
    lara_label_lines,
    lara_motion,
    lara_motion_lines,
    snapshot,
    write_lara_pair,
    write_text,
)

from histvq.data.layout import read_layout
from histvq.data.sources import lara
from histvq.errors import ConfigError, RawFormatError
from histvq.prepare import prepare_dataset

CLASSES = [0, 0, 1, 1, None, 2, 3, 4, 5, 6, 7, 7, 0]  # index into LARA_CLASSES, None: no class


def _slow_reference(motion: np.ndarray, classes: list, rate: int, root: int):
    """Loop-by-loop version of the documented transform: (6, T, 22, 1) and label names."""
    frames = list(range(0, len(motion), rate))
    out = np.zeros((6, len(frames), 22, 1))
    for k, t in enumerate(frames):
        for j in range(22):
            for c in range(6):
                value = motion[t, j, c]
                if c >= 3:
                    value = value - motion[t, root, c]
                out[c, k, j, 0] = value
    labels = ["None" if classes[t] is None else LARA_CLASSES[classes[t]] for t in frames]
    return out.astype(np.float32), labels


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    write_lara_pair(folder / "S01", "L01_S01_R01", lara_motion(len(CLASSES), seed=1), CLASSES)
    write_lara_pair(folder / "S02", "L02_S02_R03", lara_motion(6, seed=2), [1] * 6)
    write_text(folder / "S01" / "notes.txt", ["hello"])
    return folder


def test_downsampled_root_centred_values_and_labels(raw_dir: Path, tmp_path: Path) -> None:
    summary = prepare_dataset("lara", raw_dir, tmp_path / "out", progress=False)
    root = tmp_path / "out" / "lara"
    assert (summary.sequences, summary.frames) == (2, 4 + 2)  # 13 -> 4 frames, 6 -> 2
    assert summary.skipped == [("notes.txt", "not a LARa CSV file")]

    features = np.load(root / "features" / "L01_S01_R01.npy")
    labels = (root / "groundTruth" / "L01_S01_R01.txt").read_text().split("\n")
    assert features.shape == (6, 4, 22, 1) and features.dtype == np.float32
    motion = lara_motion(len(CLASSES), seed=1)
    expected, expected_labels = _slow_reference(motion, CLASSES, rate=4, root=21)
    np.testing.assert_array_equal(features, expected)
    assert labels == expected_labels == ["Standing", "None", "Handling(downwards)", "Standing"]

    # hand-checked entries: frame 1 of the output is raw frame 4; joint 3 (L_Elbow)
    assert features[0, 1, 3, 0] == np.float32(motion[4, 3, 0])  # orientation untouched
    assert features[4, 1, 3, 0] == np.float32(motion[4, 3, 4] - motion[4, 21, 4])  # TY centred
    assert (features[3:, :, 21, 0] == 0).all()  # the root sits at the origin
    assert (features[:3, :, 21, 0] != 0).all()  # ... but keeps its orientation

    mapping = (root / "mapping" / "mapping.txt").read_text()
    assert mapping == (
        "1 Standing\n2 Walking\n3 Cart\n4 Handling(upwards)\n5 Handling(centred)\n"
        "6 Handling(downwards)\n7 Synchronization\n8 None"
    )
    assert read_layout(root).shape == (6, 22, 1)


def test_options_sample_rate_and_root_joint(raw_dir: Path, tmp_path: Path) -> None:
    prepare_dataset(
        "lara", raw_dir, tmp_path, name="lara_full", sample_rate=1, root_joint=11, progress=False
    )
    features = np.load(tmp_path / "lara_full" / "features" / "L01_S01_R01.npy")
    expected, _ = _slow_reference(lara_motion(len(CLASSES), seed=1), CLASSES, rate=1, root=11)
    assert features.shape == (6, len(CLASSES), 22, 1)
    np.testing.assert_array_equal(features, expected)
    assert (features[3:, :, 11, 0] == 0).all()  # LowerBack at the origin
    labels = (tmp_path / "lara_full" / "groundTruth" / "L01_S01_R01.txt").read_text()
    assert labels.split("\n")[4] == "None"  # the frame with no class set

    with pytest.raises(ConfigError, match="sample_rate must be >= 1"):
        prepare_dataset("lara", raw_dir, tmp_path, sample_rate=0)
    with pytest.raises(ConfigError, match=r"root_joint must be a joint index 0\.\.21"):
        prepare_dataset("lara", raw_dir, tmp_path, root_joint=22)


def test_joint_order_and_header_variants(tmp_path: Path) -> None:
    assert lara.JOINTS[lara.ROOT_JOINT] == "Root" and lara.ROOT_JOINT == 21
    assert lara.JOINTS[11] == "LowerBack" and lara.NUM_COLUMNS == 134
    motion = lara_motion(5, seed=3)
    classes = [0, 1, 2, 3, 4]
    vicon = write_text(tmp_path / "a" / "r.csv", lara_motion_lines(motion))
    write_text(tmp_path / "a" / "r_labels.csv", lara_label_lines(classes))
    plain = write_text(tmp_path / "b" / "r.csv", lara_motion_lines(motion, vicon_header=False))
    write_text(tmp_path / "b" / "r_labels.csv", lara_label_lines(classes))
    a = lara.read_lara_recording(vicon, sample_rate=1)
    b = lara.read_lara_recording(plain, sample_rate=1)
    np.testing.assert_array_equal(a.features, b.features)
    assert a.labels == b.labels == list(LARA_CLASSES[:5])


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines))


def _cell(path: Path, number: int, column: int, value: str | None) -> None:
    lines = path.read_text().split("\n")
    fields = lines[number - 1].split(",")
    if value is None:
        del fields[column - 1]
    else:
        fields[column - 1] = value
    lines[number - 1] = ",".join(fields)
    path.write_text("\n".join(lines))


# (what to break, expected message after the offending file's path). Recording: lines 1-5
# header, frame t on line 6 + t; labels: line 1 header, frame t on line 2 + t.
MALFORMED = {
    "short motion row": (
        lambda rec, lab: _cell(rec, 8, 50, None),
        "rec",
        ":8: expected 134 comma-separated values (frame, sub-frame, 22 joints x 6), found 133",
    ),
    "non-numeric motion value": (
        lambda rec, lab: _cell(rec, 7, 10, "x"),
        "rec",
        ":7: column 10 is not a finite number: 'x'",
    ),
    "empty motion value": (
        lambda rec, lab: _cell(rec, 9, 3, ""),
        "rec",
        ":9: column 3 is not a finite number: ''",
    ),
    "header only": (
        lambda rec, lab: rec.write_text("\n".join(rec.read_text().split("\n")[:5])),
        "rec",
        ": no data rows (found 5 header lines only)",
    ),
    "frame count mismatch": (
        lambda rec, lab: lab.write_text("\n".join(lab.read_text().split("\n")[:-2])),
        "rec",
        ": 8 frames but r_labels.csv has 7 label rows",
    ),
    "missing labels file": (
        lambda rec, lab: lab.unlink(),
        "rec",
        ": recording has no labels file r_labels.csv beside it",
    ),
    "too few class columns": (
        lambda rec, lab: lab.write_text(
            "\n".join(",".join(line.split(",")[:7]) for line in lab.read_text().split("\n"))
        ),
        "lab",
        ":1: expected at least 8 columns (the one-hot classes Standing, Walking, Cart, "
        "Handling(upwards), Handling(centred), Handling(downwards), Synchronization, None), "
        "found 7",
    ),
    "wrong class header": (
        lambda rec, lab: _cell(lab, 1, 3, "Trolley"),
        "lab",
        ":1: column 3 is named 'Trolley', expected 'Cart'",
    ),
    "label header missing": (
        lambda rec, lab: lab.write_text("\n".join(lab.read_text().split("\n")[1:])),
        "lab",
        ":1: expected a header line naming the classes",
    ),
    "class cell not 0/1": (
        lambda rec, lab: _cell(lab, 4, 2, "2"),
        "lab",
        ":4: class column 2 (Walking) must be 0 or 1, got '2'",
    ),
    "two classes set": (
        lambda rec, lab: _cell(lab, 3, 5, "1"),
        "lab",
        ":3: more than one class set (Standing, Handling(centred))",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_pair_is_a_one_line_error_and_keeps_the_old_dataset(
    case: str, raw_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    prepare_dataset("lara", raw_dir, out, progress=False)
    before = snapshot(out)
    rec, lab = write_lara_pair(raw_dir / "S09", "r", lara_motion(8, seed=9), [0] * 8)
    mutate, culprit, message = MALFORMED[case]
    mutate(rec, lab)
    with pytest.raises(RawFormatError) as caught:
        prepare_dataset("lara", raw_dir, out, progress=False)
    text = str(caught.value)
    assert text.startswith(str(rec if culprit == "rec" else lab)), text
    assert message in text
    assert "\n" not in text
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["lara"]


def test_orphan_labels_are_skipped_and_reruns_are_identical(raw_dir: Path, tmp_path: Path) -> None:
    write_text(raw_dir / "S03" / "lonely_labels.csv", lara_label_lines([0, 1]))
    first = prepare_dataset("lara", raw_dir, tmp_path / "a", progress=False)
    assert ("lonely_labels.csv", "labels file without its recording") in first.skipped
    prepare_dataset("lara", raw_dir, tmp_path / "b", progress=False)
    prepare_dataset("lara", raw_dir, tmp_path / "a", progress=False)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert len(snapshot(tmp_path / "a")) == 5


def test_crlf_trailing_commas_and_quotes_parse_the_same(tmp_path: Path) -> None:
    motion = lara_motion(4, seed=5)
    clean = write_text(tmp_path / "a" / "r.csv", lara_motion_lines(motion))
    write_text(tmp_path / "a" / "r_labels.csv", lara_label_lines([0, 1, 1, 7]))
    messy = write_text(
        tmp_path / "b" / "r.csv", [line + "," for line in lara_motion_lines(motion)], "\r\n"
    )
    write_text(tmp_path / "b" / "r_labels.csv", lara_label_lines([0, 1, 1, 7]), "\r\n")
    quoted_lines = lara_motion_lines(motion)
    quoted_lines[5:] = [",".join(f'"{v}"' for v in line.split(",")) for line in quoted_lines[5:]]
    quoted = write_text(tmp_path / "c" / "r.csv", quoted_lines)
    write_text(tmp_path / "c" / "r_labels.csv", lara_label_lines([0, 1, 1, 7]))
    a = lara.read_lara_recording(clean, sample_rate=1)
    b = lara.read_lara_recording(messy, sample_rate=1)
    c = lara.read_lara_recording(quoted, sample_rate=1)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.features, c.features)
    assert a.labels == b.labels == c.labels == ["Standing", "Walking", "Walking", "None"]
