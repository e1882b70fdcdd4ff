"""`prepare pkummd`: skeleton + label files -> root-centred (3, T, 25, M) mm, per-frame labels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import (
    pkummd_lines,
    pkummd_values,
    snapshot,
    write_pkummd,
    write_text,
)
from conftest import compose_config
from hydra.utils import instantiate

from histvq.data.datamodules import PKUMMDDataModule
from histvq.data.layout import read_layout
from histvq.data.sources import pkummd
from histvq.errors import ConfigError, RawFormatError
from histvq.prepare import prepare_dataset

REPO = Path(__file__).resolve().parents[1]
BG = "background"


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, Path]:
    """(skeleton folder, label folder) with three recordings and one stray file."""
    skel, labels = tmp_path / "skeletons", tmp_path / "labels"
    write_pkummd(skel, labels, "0002-L", pkummd_values(10, 1), [(3, 2, 4, 1), (7, 6, 10, 2)])
    write_pkummd(skel, labels, "0002-M", pkummd_values(6, 2, second_body=False), [(5, 1, 6, 1)])
    write_pkummd(skel, labels, "0005-R", pkummd_values(5, 3), [(12, 2, 3, 1)])
    write_text(skel / "notes.md", ["not a recording"])
    return skel, labels


def _prepare(raw: tuple[Path, Path], out: Path, **options: object):
    skel, labels = raw
    return prepare_dataset("pkummd", skel, out, labels=labels, progress=False, **options)


def _reference_features(values: np.ndarray, bodies: int = 2) -> np.ndarray:
    """The expected (3, T, 25, M) features, element by element."""
    num_frames = values.shape[0]
    out = np.zeros((3, num_frames, 25, bodies), dtype=np.float32)
    for t in range(num_frames):
        for m in range(bodies):
            for v in range(25):
                for c in range(3):
                    out[c, t, v, m] = (values[t, m, v, c] - values[t, m, 0, c]) * 1000.0
    return out


def _labels(root: Path, name: str) -> list[str]:
    return (root / "groundTruth" / f"{name}.txt").read_text().split("\n")


# -- values -----------------------------------------------------------------------------------


def test_hand_checked_recording(tmp_path: Path) -> None:
    """Spine base of body 1 at (1, 2, 3 + t/2) m, joint j at base + (j/8, -j/4, 1/2) m;
    body 2 only in frames 3..6 (0-based), base (-1, 0, 4) m, joint j at base + (1/2, j/8, -1/4)."""
    values = np.zeros((10, 2, 25, 3))
    for t in range(10):
        for j in range(25):
            values[t, 0, j] = (1 + j / 8, 2 - j / 4, 3 + t / 2 + (0.5 if j else 0))
            if 3 <= t <= 6:
                values[t, 1, j] = (-1 + (0.5 if j else 0), j / 8, 4 - (0.25 if j else 0))
    skel, labels = tmp_path / "s", tmp_path / "l"
    write_pkummd(skel, labels, "0001-M", values, [(3, 2, 4, 1), (7, 6, 10, 2)])
    prepare_dataset("pkummd", skel, tmp_path / "out", labels=labels, progress=False)
    root = tmp_path / "out" / "pkummd"

    features = np.load(root / "features" / "0001-M.npy")
    assert features.shape == (3, 10, 25, 2) and features.dtype == np.float32
    np.testing.assert_array_equal(features[:, :, 0, :], 0.0)  # spine base at the origin
    assert features[:, 0, 1, 0].tolist() == [125.0, -250.0, 500.0]  # millimetres
    assert features[:, 9, 3, 0].tolist() == [375.0, -750.0, 500.0]
    assert features[:, 4, 24, 1].tolist() == [500.0, 3000.0, -250.0]
    np.testing.assert_array_equal(features[:, [0, 1, 2, 7, 8, 9], :, 1], 0.0)  # body 2 absent
    for j in range(1, 25):
        assert features[:, 5, j, 0].tolist() == [125.0 * j, -250.0 * j, 500.0]
        assert features[:, 5, j, 1].tolist() == [500.0, 125.0 * j, -250.0]

    assert _labels(root, "0001-M") == [BG, "class_3", "class_3", "class_3", BG] + ["class_7"] * 5
    assert (root / "mapping" / "mapping.txt").read_text() == "0 background\n3 class_3\n7 class_7"


def test_dataset_values_labels_mapping_and_summary(raw: tuple[Path, Path], tmp_path: Path) -> None:
    summary = _prepare(raw, tmp_path / "out")
    root = tmp_path / "out" / "pkummd"
    assert summary.path == root
    assert (summary.sequences, summary.frames, summary.labels) == (3, 21, 5)
    assert summary.skipped == [("notes.md", "not a .txt skeleton file")]
    assert "3 sequences, 21 frames, 5 labels (of 5 in mapping)" in summary.line()

    for name, values in (
        ("0002-L", pkummd_values(10, 1)),
        ("0002-M", pkummd_values(6, 2, second_body=False)),
        ("0005-R", pkummd_values(5, 3)),
    ):
        features = np.load(root / "features" / f"{name}.npy")
        np.testing.assert_array_equal(features, _reference_features(values))
    np.testing.assert_array_equal(np.load(root / "features" / "0002-M.npy")[..., 1], 0.0)

    assert _labels(root, "0002-L") == [BG] + ["class_3"] * 3 + [BG] + ["class_7"] * 5
    assert _labels(root, "0002-M") == ["class_5"] * 6  # an instance may span frames 1..T
    assert _labels(root, "0005-R") == [BG, "class_12", "class_12", BG, BG]
    assert (root / "mapping" / "mapping.txt").read_text() == (
        "0 background\n3 class_3\n5 class_5\n7 class_7\n12 class_12"
    )
    dataset = read_layout(root)
    assert dataset.shape == (3, 25, 2)
    assert dataset.present_label_ids() == [0, 3, 5, 7, 12]


def test_one_body_keeps_the_main_body(raw: tuple[Path, Path], tmp_path: Path) -> None:
    _prepare(raw, tmp_path / "two")
    _prepare(raw, tmp_path / "one", bodies=1)
    for name in ("0002-L", "0002-M", "0005-R"):
        one = np.load(tmp_path / "one" / "pkummd" / "features" / f"{name}.npy")
        two = np.load(tmp_path / "two" / "pkummd" / "features" / f"{name}.npy")
        assert one.shape == (3, two.shape[1], 25, 1)
        np.testing.assert_array_equal(one[..., 0], two[..., 0])
    assert read_layout(tmp_path / "one" / "pkummd").shape == (3, 25, 1)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["1,2,6,1", "2,5,8,1"], [BG] + ["class_1"] * 3 + ["class_2"] * 4 + [BG, BG]),
        (["2,5,8,1", "1,2,6,1"], [BG] + ["class_1"] * 5 + ["class_2"] * 2 + [BG, BG]),
        (["  4 , 1 , 10 , 2 ,", ""], ["class_4"] * 10),  # spaces, trailing comma, blank line
        ([], [BG] * 10),  # a recording without instances is all background
    ],
)
def test_overlaps_later_instance_wins(
    tmp_path: Path, lines: list[str], expected: list[str]
) -> None:
    skel = write_text(tmp_path / "s" / "0003-L.txt", pkummd_lines(pkummd_values(10)))
    write_text(tmp_path / "l" / "0003-L.txt", lines)
    sequence = next(iter(pkummd.read(skel, pkummd.PkummdOptions(labels=tmp_path / "l"))))
    assert sequence.labels == expected


# -- actions table and split --------------------------------------------------------------------


def test_actions_table_names_and_separators(raw: tuple[Path, Path], tmp_path: Path) -> None:
    table = write_text(
        tmp_path / "actions.csv",
        ["Label,Action", "# the classes of the fixture", '3,"bow  down"', "5,jump", "7\tthrow", "",
         "12 pick up", "20,clap"],
    )  # fmt: skip
    _prepare(raw, tmp_path / "out", actions=table)
    root = tmp_path / "out" / "pkummd"
    assert (root / "mapping" / "mapping.txt").read_text() == (
        "0 background\n3 bow_down\n5 jump\n7 throw\n12 pick_up\n20 clap"
    )
    assert _labels(root, "0002-L") == [BG] + ["bow_down"] * 3 + [BG] + ["throw"] * 5
    assert _labels(root, "0005-R")[1] == "pick_up"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["3,a", "3,b"], ":2: class id 3 appears twice"),
        (["3,a", "7,a"], ":2: class name 'a' appears twice"),
        (["3,background"], ":1: the name 'background' is reserved"),
        (["0,nothing"], ":1: class ids start at 1 (0 is background), got 0"),
        (["3,a", "x,b"], ":2: expected '<class id>,<name>' with an integer id, got 'x,b'"),
        (["3,"], ":1: class 3 has no name"),
        (["# only a comment"], ": actions table lists no classes"),
    ],
)
def test_bad_actions_table(
    raw: tuple[Path, Path], tmp_path: Path, lines: list[str], message: str
) -> None:
    table = write_text(tmp_path / "actions.txt", lines)
    with pytest.raises(ConfigError) as caught:
        _prepare(raw, tmp_path / "out", actions=table)
    assert str(caught.value) == f"{table}{message}"


def test_class_missing_from_the_actions_table(raw: tuple[Path, Path], tmp_path: Path) -> None:
    table = write_text(tmp_path / "actions.txt", ["3,bow", "7,throw"])
    with pytest.raises(RawFormatError) as caught:
        _prepare(raw, tmp_path / "out", actions=table)
    assert str(caught.value) == (
        f"{raw[1] / '0002-M.txt'}:1: class id 5 is not in the actions table"
    )


def test_split_file_keeps_the_listed_videos(raw: tuple[Path, Path], tmp_path: Path) -> None:
    split = write_text(
        tmp_path / "cross-view.txt",
        ["# PKU-MMD cross view", "Training videos: 0002-L,", "Validation videos:", "0005-R"],
    )
    summary = _prepare(raw, tmp_path / "out", split="cross-view", split_file=split)
    dataset = read_layout(tmp_path / "out" / "pkummd")
    assert [s.name for s in dataset.sequences] == ["0002-L", "0005-R"]
    assert sorted(summary.skipped) == [
        ("0002-M.txt", "not in the cross-view split"),
        ("notes.md", "not a .txt skeleton file"),
    ]
    # class 5 occurs only in the recording left out
    assert (tmp_path / "out" / "pkummd" / "mapping" / "mapping.txt").read_text() == (
        "0 background\n3 class_3\n7 class_7\n12 class_12"
    )


def test_split_errors(raw: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"split 'cross-subject' needs split_file"):
        _prepare(raw, tmp_path / "out", split="cross-subject")
    split = write_text(tmp_path / "split.txt", ["0002-L 0002-M"])
    with pytest.raises(ConfigError, match=r"split_file is only used with split"):
        _prepare(raw, tmp_path / "out", split_file=split)
    with pytest.raises(ConfigError, match=r"split must be one of all, cross-subject, cross-view"):
        _prepare(raw, tmp_path / "out", split="xsub")
    missing = write_text(tmp_path / "missing.txt", ["0002-L, 0099-L", "0098-R"])
    with pytest.raises(ConfigError) as caught:
        _prepare(raw, tmp_path / "out", split="cross-subject", split_file=missing)
    assert str(caught.value) == (
        f"{missing}: 2 listed video(s) have no skeleton file among the inputs (0099-L, 0098-R)"
    )
    with pytest.raises(ConfigError, match=r"split file does not exist"):
        _prepare(raw, tmp_path / "out", split="cross-view", split_file=tmp_path / "nope.txt")
    assert not (tmp_path / "out" / "pkummd").exists()


def test_option_errors(raw: tuple[Path, Path], tmp_path: Path) -> None:
    skel = raw[0]
    with pytest.raises(ConfigError, match=r"pkummd needs labels"):
        prepare_dataset("pkummd", skel, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match=r"labels folder does not exist"):
        prepare_dataset("pkummd", skel, tmp_path / "out", labels=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match=r"bodies must be 1 or 2, got 3"):
        _prepare(raw, tmp_path / "out", bodies=3)


# -- malformed input ------------------------------------------------------------------------------


def _skeleton_with(line: int, position: int, token: str | None) -> list[str]:
    """Six frames; value ``position`` (1-based) of file line ``line`` replaced (None: removed)."""
    lines = pkummd_lines(pkummd_values(6, 9))
    tokens = lines[line - 1].split()
    if token is None:
        del tokens[position - 1]
    else:
        tokens[position - 1] = token
    lines[line - 1] = " ".join(tokens)
    return lines


GOOD_LABELS = ["1,2,3,1", "2,4,6,1"]
SKELETON_CASES = {
    "short line": (
        _skeleton_with(3, 7, None),
        ":3: expected 150 whitespace-separated numbers (2 bodies x 25 joints x x,y,z), "
        "found 149 values",
    ),
    "long line": (_skeleton_with(1, 150, "1.0 2.0"), ":1: expected 150 whitespace-separated"),
    "text": (_skeleton_with(2, 5, "abc"), ":2: value 5 is not a finite number: 'abc'"),
    "nan": (_skeleton_with(4, 150, "nan"), ":4: value 150 is not a finite number: 'nan'"),
    "comma separated": (
        [",".join(line.split()) for line in pkummd_lines(pkummd_values(6, 9))],
        ":1: expected 150 whitespace-separated numbers",
    ),
    "empty": ([], ": skeleton file has no frames"),
}
LABEL_CASES = {
    "three fields": (
        ["1,2,3,1", "1,2,3"],
        ":2: expected 'class,start,end,confidence' (4 integers), got '1,2,3'",
    ),
    "text": (["a,2,3,1"], ":1: expected 'class,start,end,confidence' (4 integers)"),
    "fractional frame": (["1,2,3,1", "", "1,2.5,3,1"], ":3: expected 'class,start,end,"),
    "class zero": (["0,2,3,1"], ":1: class id must be >= 1 (background is implicit), got 0"),
    "start after end": (
        ["1,2,3,1", "1,5,3,1"],
        ":2: instance starts after it ends (start 5 > end 3)",
    ),
    "end beyond the recording": (
        ["1,2,3,1", "2,4,7,1"],
        ":2: instance frames 4..7 lie outside the recording (frames 1..6)",
    ),
    "start zero": (["1,0,3,1"], ":1: instance frames 0..3 lie outside the recording"),
}


@pytest.mark.parametrize(
    "case", [f"skeleton: {c}" for c in SKELETON_CASES] + [f"labels: {c}" for c in LABEL_CASES]
)
def test_malformed_input_is_a_one_line_error_and_keeps_the_old_dataset(
    case: str, raw: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _prepare(raw, out)
    before = snapshot(out)

    kind, _, name = case.partition(": ")
    skel_lines, label_lines = pkummd_lines(pkummd_values(6, 9)), GOOD_LABELS
    if kind == "skeleton":
        skel_lines, message = SKELETON_CASES[name]
    else:
        label_lines, message = LABEL_CASES[name]
    skeleton = raw[0] / "0009-L.txt"
    label = raw[1] / "0009-L.txt"
    skeleton.write_text("\n".join(skel_lines) + ("\n" if skel_lines else ""))
    write_text(label, label_lines)

    with pytest.raises(RawFormatError) as caught:
        _prepare(raw, out)
    text = str(caught.value)
    bad = skeleton if kind == "skeleton" else label
    assert text.startswith(f"{bad}:"), text
    assert message in text
    assert "\n" not in text
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["pkummd"]


def test_recording_without_label_file(raw: tuple[Path, Path], tmp_path: Path) -> None:
    skeleton = write_text(raw[0] / "0010-M.txt", pkummd_lines(pkummd_values(4)))
    with pytest.raises(RawFormatError) as caught:
        _prepare(raw, tmp_path / "out")
    assert str(caught.value) == (f"{skeleton}: recording has no label file 0010-M.txt in {raw[1]}")
    assert not (tmp_path / "out" / "pkummd").exists()


def test_second_run_is_byte_identical(raw: tuple[Path, Path], tmp_path: Path) -> None:
    _prepare(raw, tmp_path / "one")
    first = snapshot(tmp_path / "one")
    _prepare(raw, tmp_path / "one")
    _prepare(raw, tmp_path / "two")
    assert snapshot(tmp_path / "one") == first == snapshot(tmp_path / "two")
    assert len(first) == 7  # 3 features, 3 label files, mapping


# -- command line -----------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "histvq.prepare", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_success_and_one_line_error(raw: tuple[Path, Path], tmp_path: Path) -> None:
    skel, labels = raw
    out = tmp_path / "out"
    result = _cli(
        "pkummd", "--input", str(skel), "--labels", str(labels), "--output", str(out),
        "--bodies", "1", "--name", "pku1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("prepared pku1: 3 sequences, 21 frames, 5 labels (of 5")
    assert result.stdout.count("\n") == 1
    assert read_layout(out / "pku1").shape == (3, 25, 1)

    label = write_text(labels / "0002-L.txt", ["3,2,4,1", "7,6,11,2"])
    result = _cli("pkummd", "--input", str(skel), "--labels", str(labels), "--output", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {label}:2: instance frames 6..11 lie outside the recording (frames 1..10)\n"
    )
    assert not (out / "pkummd").exists()

    result = _cli(
        "pkummd", "--input", str(skel), "--labels", str(labels), "--output", str(out),
        "--split", "cross-view",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "split 'cross-view' needs split_file" in result.stderr


# -- dataset config -------------------------------------------------------------------------------


def test_config_mirrors_hugadb_and_prepares_on_first_use(
    raw: tuple[Path, Path], tmp_path: Path
) -> None:
    hugadb = compose_config("train", ["dataset=hugadb"]).dataset
    skel, labels = raw
    cfg = compose_config(
        "train",
        [
            "dataset=pkummd",
            f"paths.data_dir={tmp_path / 'data'}",
            f"dataset.raw_dir={skel}",
            f"dataset.prepare_options.labels={labels}",
            "dataset.ignore_labels=[background]",
        ],
    ).dataset
    assert list(cfg) == list(hugadb)
    assert sorted(cfg.prepare_options) == ["actions", "bodies", "labels", "split", "split_file"]
    assert (cfg.patch_size, cfg.batch_size, cfg.fps, cfg.num_channels, cfg.num_joints) == (
        30, 8, 30, 3, 25,
    )  # fmt: skip
    assert (cfg.model_defaults.lambda_temp, cfg.bucket_by_length, cfg.num_classes) == (
        0.2,
        False,
        None,
    )

    module = instantiate(cfg)
    assert isinstance(module, PKUMMDDataModule) and module.kind == "pkummd"
    module.prepare_data()
    module.setup()
    assert module.group_names == ["0002", "0005"]  # the camera views of a recording together
    assert module.spec.num_classes == 5  # background, 3, 5, 7 and 12
    assert (module.spec.num_persons, module.spec.fps) == (2, 30)
    assert module.ignore_label_ids == [0]


def test_config_without_labels_folder_says_which_key(
    raw: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = compose_config(
        "train", ["dataset=pkummd", f"paths.data_dir={tmp_path}", f"dataset.raw_dir={raw[0]}"]
    ).dataset
    with pytest.raises(ConfigError, match=r"^dataset\.prepare_options\.labels: set it"):
        instantiate(cfg).prepare_data()
