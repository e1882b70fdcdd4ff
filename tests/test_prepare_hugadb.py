"""`prepare hugadb`: raw HuGaDB text -> features/groundTruth/mapping, value by value."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import (
    HUGADB_NAMES,
    hugadb_lines,
    hugadb_values,
    snapshot,
    write_hugadb,
    write_text,
)

from histvq.data.layout import read_layout
from histvq.data.sources import hugadb
from histvq.errors import ConfigError, RawFormatError
from histvq.prepare import prepare_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_V2 = SHARED_DATA / "hugadb" / "HuGaDB_v2_various_01_00.txt"
V1_ARCHIVE = SHARED_DATA / "hugadb_v1.tar.xz"

ACTIVITIES = [5, 5, 7, 8, 8, 6, 12]


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    write_hugadb(folder / "HuGaDB_v2_various_01_00.txt", hugadb_values(7), ACTIVITIES)
    write_hugadb(folder / "HuGaDB_v1_walking_02_01.txt", hugadb_values(3) + 5, [1, 1, 2])
    write_text(folder / "ReadMe.txt", ["not data"])
    write_text(folder / "loadDataFromFile.m", ["function data = f(x)"])
    return folder


def test_values_labels_and_mapping(raw_dir: Path, tmp_path: Path) -> None:
    summary = prepare_dataset("hugadb", raw_dir, tmp_path / "out", pattern="all", progress=False)
    root = tmp_path / "out" / "hugadb"
    assert summary.path == root
    assert (summary.sequences, summary.frames, summary.labels) == (2, 10, 7)
    assert sorted(summary.skipped) == [
        ("ReadMe.txt", "not a HuGaDB_v*_*.txt recording"),
        ("loadDataFromFile.m", "not a HuGaDB_v*_*.txt recording"),
    ]

    features = np.load(root / "features" / "HuGaDB_v2_various_01_00.npy")
    assert features.dtype == np.float32 and features.shape == (6, 7, 6, 1)
    for t in range(7):
        for sensor in range(6):
            for channel in range(6):
                raw = 1000 * t + 10 * sensor + channel
                expected = -raw if channel % 2 else raw
                assert features[channel, t, sensor, 0] == expected
    assert not np.isin(features, [77, 78]).any()  # EMG dropped

    labels = (root / "groundTruth" / "HuGaDB_v2_various_01_00.txt").read_text()
    assert labels == "\n".join(HUGADB_NAMES[i] for i in ACTIVITIES)  # no trailing newline
    assert labels.split("\n")[:3] == ["sitting", "sitting", "standing_up"]
    mapping = (root / "mapping" / "mapping.txt").read_text()
    assert mapping.split("\n") == [f"{i} {HUGADB_NAMES[i]}" for i in range(1, 13)]
    assert mapping.split("\n")[11] == "12 sitting_in_car"

    dataset = read_layout(root)
    assert [s.name for s in dataset.sequences] == [
        "HuGaDB_v1_walking_02_01",
        "HuGaDB_v2_various_01_00",
    ]
    assert dataset.shape == (6, 6, 1)
    line = summary.line()
    assert "\n" not in line
    assert "2 sequences, 10 frames, 7 labels (of 12 in mapping)" in line
    assert "2 not a HuGaDB_v*_*.txt recording (ReadMe.txt, loadDataFromFile.m)" in line


def test_crlf_trailing_whitespace_and_blank_lines_parse_the_same(tmp_path: Path) -> None:
    values = hugadb_values(4)
    clean = write_hugadb(tmp_path / "a" / "HuGaDB_v1_x_01_00.txt", values, [1, 1, 2, 2])
    lines = hugadb_lines(values, [1, 1, 2, 2])
    messy = [line + "\t" if i > 3 else line for i, line in enumerate(lines)]
    messy.insert(6, "")
    messy.append("   ")
    write_text(tmp_path / "b" / "HuGaDB_v1_x_01_00.txt", messy, newline="\r\n")
    a = hugadb.read_hugadb_file(clean)
    b = hugadb.read_hugadb_file(tmp_path / "b" / "HuGaDB_v1_x_01_00.txt")
    np.testing.assert_array_equal(a.features, b.features)
    assert a.labels == b.labels == ["walking", "walking", "running", "running"]


def _mutate(lines: list[str], line_number: int, column: int | None, token: str | None) -> None:
    """Replace one field (column 1-based) of file line ``line_number``, or the whole line."""
    fields = lines[line_number - 1].split("\t")
    if column is None:
        lines[line_number - 1] = token if token is not None else ""
    elif token is None:
        del fields[column - 1]
        lines[line_number - 1] = "\t".join(fields)
    else:
        fields[column - 1] = token
        lines[line_number - 1] = "\t".join(fields)


MALFORMED = {
    "unknown activity id": (lambda L: _mutate(L, 6, 39, "13"), ":6: unknown activity id '13'"),
    "activity id zero": (lambda L: _mutate(L, 7, 39, "0"), ":7: unknown activity id '0'"),
    "fractional activity": (lambda L: _mutate(L, 5, 39, "1.5"), ":5: unknown activity id '1.5'"),
    "short row": (
        lambda L: _mutate(L, 6, 20, None),
        ":6: expected 39 tab-separated columns, found 38",
    ),
    "long row": (
        lambda L: L.__setitem__(7, L[7] + "\t1"),
        ":8: expected 39 tab-separated columns, found 40",
    ),
    "non-numeric": (
        lambda L: _mutate(L, 5, 7, "abc"),
        ":5: column 7 (acc_rs_x) is not a finite number: 'abc'",
    ),
    "nan value": (
        lambda L: _mutate(L, 8, 1, "nan"),
        ":8: column 1 (acc_rf_x) is not a finite number: 'nan'",
    ),
    "empty field": (
        lambda L: _mutate(L, 6, 4, ""),
        ":6: column 4 (gyro_rf_x) is not a finite number: ''",
    ),
    "space inside a value": (
        lambda L: _mutate(L, 7, 2, "1 2"),
        ":7: column 2 (acc_rf_y) is not a finite number: '1 2'",
    ),
    "header-less": (lambda L: L.__delitem__(slice(0, 4)), ":1: expected header line 1 of 3"),
    "missing date line": (lambda L: L.__delitem__(2), ":3: expected header line 3 of 3"),
    "renamed column": (
        lambda L: _mutate(L, 4, 10, "acc_rs_x"),
        ":4: column 10 is named 'acc_rs_x', expected 'gyro_rs_x'",
    ),
    "no data rows": (lambda L: L.__delitem__(slice(4, None)), ": no data rows after the header"),
    "empty file": (lambda L: L.clear(), ": empty file"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_a_one_line_error_and_keeps_the_old_dataset(
    case: str, raw_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    prepare_dataset("hugadb", raw_dir, out, pattern="all", progress=False)
    before = snapshot(out)

    mutate, message = MALFORMED[case]
    lines = hugadb_lines(hugadb_values(5), [1, 1, 2, 3, 3])
    mutate(lines)
    bad = raw_dir / "HuGaDB_v1_zz_01_00.txt"
    bad.write_text("\n".join(lines) + ("\n" if lines else ""))

    with pytest.raises(RawFormatError) as caught:
        prepare_dataset("hugadb", raw_dir, out, pattern="all", progress=False)
    text = str(caught.value)
    assert text.startswith(str(bad)), text
    assert message in text
    assert "\n" not in text
    assert snapshot(out) == before  # the existing dataset is untouched
    assert [p.name for p in out.iterdir()] == ["hugadb"]  # no temp folder left behind


def test_second_run_is_byte_identical(raw_dir: Path, tmp_path: Path) -> None:
    prepare_dataset("hugadb", raw_dir, tmp_path / "one", pattern="all", progress=False)
    first = snapshot(tmp_path / "one")
    prepare_dataset("hugadb", raw_dir, tmp_path / "one", pattern="all", progress=False)
    prepare_dataset("hugadb", raw_dir, tmp_path / "two", pattern="all", progress=False)
    assert snapshot(tmp_path / "one") == first == snapshot(tmp_path / "two")
    assert len(first) == 5


def test_exclude_corrupted_skips_the_readme_list_for_any_version(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for stem in (
        "HuGaDB_v1_various_03_00",
        "HuGaDB_v2_sitting_in_car_01_14",
        "HuGaDB_v1_various_15_10",
    ):
        write_hugadb(raw / f"{stem}.txt", hugadb_values(2), [1, 2])
    kept = prepare_dataset("hugadb", raw, tmp_path / "all", pattern="all", progress=False)
    clean = prepare_dataset(
        "hugadb",
        raw,
        tmp_path / "out",
        name="clean",
        exclude_corrupted=True,
        pattern="all",
        progress=False,
    )
    assert kept.sequences == 3
    assert clean.sequences == 1 and clean.path == tmp_path / "out" / "clean"
    assert sorted(clean.skipped) == [
        ("HuGaDB_v1_various_03_00.txt", "corrupted gyroscope data (HuGaDB README)"),
        ("HuGaDB_v2_sitting_in_car_01_14.txt", "corrupted gyroscope data (HuGaDB README)"),
    ]


def test_pattern_selects_the_multi_activity_recordings(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for stem in ("HuGaDB_v1_various_01_00", "HuGaDB_v1_walking_01_00", "HuGaDB_v1_various_02_01"):
        write_hugadb(raw / f"{stem}.txt", hugadb_values(3), [1, 1, 2])
    summary = prepare_dataset(
        "hugadb",
        raw,
        tmp_path / "out",
        progress=False,  # default: the various recordings
    )
    names = sorted(s.name for s in read_layout(summary.path).sequences)
    assert names == ["HuGaDB_v1_various_01_00", "HuGaDB_v1_various_02_01"]
    assert summary.skipped == [
        ("HuGaDB_v1_walking_01_00.txt", "not a HuGaDB_v*_various_*.txt recording")
    ]
    everything = prepare_dataset("hugadb", raw, tmp_path / "all", pattern="all", progress=False)
    assert everything.sequences == 3 and everything.skipped == []


def test_corrupted_list_matches_the_readme_table() -> None:
    keys = hugadb.CORRUPTED_GYRO_RECORDINGS
    assert len(keys) == 465
    counts = {}
    for key in keys:
        activity = key.rsplit("_", 2)[0]
        counts[activity] = counts.get(activity, 0) + 1
    assert counts == {
        "various": 255, "running": 8, "sitting": 61, "sitting_in_car": 14,
        "standing": 57, "walking": 70,
    }  # fmt: skip
    for listed in (
        "various_03_24",
        "various_09_13",
        "various_17_04",
        "sitting_10_04",
        "walking_18_03",
    ):
        assert listed in keys
    for absent in (
        "various_01_00",
        "various_09_10",
        "various_15_10",
        "various_17_03",
        "sitting_in_car_01_07",
        "walking_09_04",
    ):
        assert absent not in keys
    assert hugadb.has_corrupted_gyro("HuGaDB_v2_various_03_00.txt")
    assert not hugadb.has_corrupted_gyro("HuGaDB_v2_various_01_00.txt")


def test_duplicate_names_across_inputs(tmp_path: Path) -> None:
    a = write_hugadb(tmp_path / "a" / "HuGaDB_v1_x_01_00.txt", hugadb_values(3), [1, 1, 1])
    b = write_hugadb(tmp_path / "b" / "HuGaDB_v1_x_01_00.txt", hugadb_values(3), [1, 1, 1])
    summary = prepare_dataset(
        "hugadb", [a.parent, b.parent], tmp_path / "out", pattern="all", progress=False
    )
    assert summary.sequences == 1
    assert summary.skipped == [("HuGaDB_v1_x_01_00", f"duplicate of an identical sequence in {a}")]
    write_hugadb(b, hugadb_values(3), [1, 1, 2])
    with pytest.raises(RawFormatError, match=r"also comes from .* with different content"):
        prepare_dataset(
            "hugadb", [a.parent, b.parent], tmp_path / "out", pattern="all", progress=False
        )


def test_bad_inputs_and_options(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_text(tmp_path / "empty" / "ReadMe.txt", ["x"])
    with pytest.raises(ConfigError, match=r"no input files to read .*ReadMe\.txt"):
        prepare_dataset("hugadb", tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        prepare_dataset("hugadb", tmp_path / "missing", tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match=r"unknown option.*'sample_rate'"):
        prepare_dataset("hugadb", tmp_path / "empty", tmp_path / "out", sample_rate=4)
    with pytest.raises(ConfigError, match="unknown dataset kind 'pku'"):
        prepare_dataset("pku", tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out" / "hugadb").exists()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "histvq.prepare", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_success_prints_one_summary_line(raw_dir: Path, tmp_path: Path) -> None:
    result = _cli(
        "hugadb",
        "--input",
        str(raw_dir),
        "--output",
        str(tmp_path / "out"),
        "--name",
        "h",
        "--pattern",
        "all",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("prepared h: 2 sequences, 10 frames, 7 labels")
    assert (tmp_path / "out" / "h" / "mapping" / "mapping.txt").is_file()


def test_cli_error_is_one_line_on_stderr_with_exit_code_2(raw_dir: Path, tmp_path: Path) -> None:
    lines = hugadb_lines(hugadb_values(3), [1, 1, 99])
    bad = write_text(raw_dir / "HuGaDB_v1_bad_01_00.txt", lines)
    result = _cli(
        "hugadb", "--input", str(raw_dir), "--output", str(tmp_path / "out"), "--pattern", "all"
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        result.stderr == f"error: {bad}:7: unknown activity id '99' (expected an integer 1..12)\n"
    )
    assert not (tmp_path / "out" / "hugadb").exists()


# -- real data ---------------------------------------------------------------------------


def _reference_transform(path: Path) -> tuple[np.ndarray, list[str]]:
    """SMQ's preprocessing re-done independently with np.loadtxt (features, label names)."""
    table = np.loadtxt(path, delimiter="\t", skiprows=4, dtype=np.int64)
    features = table[:, :36].reshape(len(table), 1, 6, 6).transpose(3, 0, 2, 1)
    return features, [HUGADB_NAMES[int(i)] for i in table[:, -1]]


def _runs(labels: list[str]) -> list[str]:
    return [label for i, label in enumerate(labels) if i == 0 or labels[i - 1] != label]


@pytest.mark.skipif(not REAL_V2.is_file(), reason="real HuGaDB sample not available")
def test_real_v2_file_matches_the_reference_transform(tmp_path: Path) -> None:
    summary = prepare_dataset("hugadb", REAL_V2, tmp_path, progress=False)
    assert (summary.sequences, summary.frames, summary.labels) == (1, 3142, 4)
    features = np.load(tmp_path / "hugadb" / "features" / f"{REAL_V2.stem}.npy")
    labels = (tmp_path / "hugadb" / "groundTruth" / f"{REAL_V2.stem}.txt").read_text().split("\n")
    assert features.shape == (6, 3142, 6, 1) and features.dtype == np.float32

    expected_features, expected_labels = _reference_transform(REAL_V2)
    np.testing.assert_array_equal(features, expected_features.astype(np.float32))
    assert np.array_equal(features.astype(np.int64), expected_features)  # exact integers
    assert labels == expected_labels

    header = REAL_V2.read_text().splitlines()[:2]
    header_names = header[0].split("\t")[1].split()
    header_ids = [int(i) for i in header[1].split("\t")[1].split()]
    assert len(header_names) == 17
    assert header_names == [HUGADB_NAMES[i] for i in header_ids]
    assert header_names == ["sitting", "standing_up", "standing", "sitting_down"] * 4 + ["sitting"]
    assert _runs(labels) == header_names


@pytest.mark.slow
@pytest.mark.skipif(not V1_ARCHIVE.is_file(), reason="HuGaDB v1 archive not available")
def test_full_v1_archive(tmp_path: Path) -> None:
    with tarfile.open(V1_ARCHIVE, "r:xz") as archive:
        archive.extractall(tmp_path / "raw", filter="data")
    raw = tmp_path / "raw" / "hugadb_v1"
    summary = prepare_dataset("hugadb", raw, tmp_path / "out", pattern="all", progress=False)
    assert (summary.sequences, summary.frames, summary.labels) == (635, 2_111_869, 12)
    assert sorted(item for item, _ in summary.skipped) == ["ReadMe.txt", "loadDataFromFile.m"]
    dataset = read_layout(tmp_path / "out" / "hugadb")
    assert dataset.present_label_ids() == list(range(1, 13))
    assert sum(s.name.startswith("HuGaDB_v1_various_") for s in dataset.sequences) == 364

    # every file equals the reference transform once cast to float32; the only values float32
    # cannot hold exactly are 2 garbage readings on line 7283 of bicycling_01_08
    inexact = []
    for seq in dataset.sequences:
        expected_features, expected_labels = _reference_transform(raw / f"{seq.name}.txt")
        np.testing.assert_array_equal(seq.features, expected_features.astype(np.float32))
        assert [dataset.mapping[i] for i in seq.labels] == expected_labels
        if not np.array_equal(seq.features.astype(np.int64), expected_features):
            inexact.append((seq.name, int((seq.features != expected_features).sum())))
    assert inexact == [("HuGaDB_v1_bicycling_01_08", 2)]

    names = {p.name for p in raw.glob("HuGaDB_v1_*.txt")}
    listed = {f"HuGaDB_v1_{key}.txt" for key in hugadb.CORRUPTED_GYRO_RECORDINGS}
    assert listed <= names  # every README entry is a real file
    clean = prepare_dataset(
        "hugadb",
        raw,
        tmp_path / "out",
        name="clean",
        exclude_corrupted=True,
        pattern="all",
        progress=False,
    )
    assert (clean.sequences, clean.frames) == (170, 652_247)
