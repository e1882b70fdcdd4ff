"""`prepare ntu`: .skeleton clips -> seeded concatenations with known action boundaries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _raw_fixtures import (
    ntu_body,
    ntu_clip_frames,
    ntu_clip_lines,
    snapshot,
    write_ntu_clip,
    write_text,
)
from conftest import compose_config
from hydra.utils import instantiate

from histvq.data.datamodules import NTUDataModule
from histvq.data.layout import read_layout
from histvq.data.sources import FileGroup, Skipped, ntu
from histvq.errors import ConfigError, RawFormatError
from histvq.prepare import prepare_dataset

REPO = Path(__file__).resolve().parents[1]

# clip name -> (frames, bodies per frame); seven clips, actions 1, 5, 5, 43, 60, 61, 120
CLIPS = {
    "S001C001P001R001A001": (4, 1),
    "S001C002P001R001A005": (3, 2),
    "S002C001P003R002A005": (5, 1),
    "S003C003P002R001A043": (2, 1),
    "S010C001P007R002A060": (6, 2),
    "S018C001P008R001A061": (3, 1),
    "S032C003P106R002A120": (4, 1),
}
NAMES = {
    1: "drink_water",
    5: "drop",
    43: "falling",
    60: "walking_apart_from_each_other",
    61: "put_on_headphone",
    120: "finger_guessing_game_playing_rock_paper_scissors",
}


def _frames(stem: str) -> list[list[np.ndarray]]:
    num_frames, bodies = CLIPS[stem]
    return ntu_clip_frames(num_frames, seed=sorted(CLIPS).index(stem), bodies=bodies)


def _expected_clip(frames: list[list[np.ndarray]], bodies: int = 2) -> np.ndarray:
    """(3, T, 25, bodies): slot m = m-th listed body, centred on its joint 0, in mm."""
    out = np.zeros((3, len(frames), 25, bodies), dtype=np.float32)
    for t, listed in enumerate(frames):
        for m, xyz in enumerate(listed[:bodies]):
            for v in range(25):
                for c in range(3):
                    out[c, t, v, m] = (xyz[v, c] - xyz[0, c]) * 1000.0
    return out


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    folder = tmp_path / "nturgb+d_skeletons"
    for stem in CLIPS:
        write_ntu_clip(folder / f"{stem}.skeleton", _frames(stem))
    write_text(folder / "samples_with_missing_skeletons.txt", ["S001C002P005R002A008"])
    write_ntu_clip(folder / "S001C001P001R001.skeleton", ntu_clip_frames(2, 99))
    return folder


def _prepare(folder: Path, out: Path, **options: object):
    return prepare_dataset("ntu", folder, out, progress=False, **options)


# -- one clip ---------------------------------------------------------------------------------


def _body(base: tuple[float, float, float], step: tuple[float, float, float]) -> np.ndarray:
    """Joint j at base + j * step (metres)."""
    return np.array(base) + np.arange(25)[:, None] * np.array(step)


BODY_A = _body((0.5, 1.0, 3.0), (0.125, 0.0, -0.125))  # centred joint j: (125j, 0, -125j) mm
BODY_B = _body((-1.0, 0.25, 2.5), (0.0, 0.25, 0.5))  # (0, 250j, 500j) mm
BODY_C = _body((2.0, 2.0, 2.0), (1.0, 1.0, 1.0))  # a third body, never kept


def test_hand_checked_clip(tmp_path: Path) -> None:
    clip = write_ntu_clip(
        tmp_path / "S001C001P001R001A007.skeleton",
        [[BODY_A], [BODY_A, BODY_B], [BODY_B, BODY_A, BODY_C], []],
    )
    two = ntu.read_ntu_clip(clip, bodies=2)
    assert two.body_counts.tolist() == [1, 2, 3, 0]
    features = two.features
    assert features.shape == (3, 4, 25, 2) and features.dtype == np.float32
    j = np.arange(25, dtype=np.float32)
    a = np.stack([125 * j, 0 * j, -125 * j])  # (3, 25)
    b = np.stack([0 * j, 250 * j, 500 * j])
    np.testing.assert_array_equal(features[:, 0, :, 0], a)
    np.testing.assert_array_equal(features[:, 0, :, 1], 0.0)  # one body: second slot zero
    np.testing.assert_array_equal(features[:, 1, :, 0], a)
    np.testing.assert_array_equal(features[:, 1, :, 1], b)
    np.testing.assert_array_equal(features[:, 2, :, 0], b)  # slots follow the listed order
    np.testing.assert_array_equal(features[:, 2, :, 1], a)
    np.testing.assert_array_equal(features[:, 3], 0.0)  # no body at all
    assert features[:, 1, 4, 1].tolist() == [0.0, 1000.0, 2000.0]

    one = ntu.read_ntu_clip(clip, bodies=1).features
    assert one.shape == (3, 4, 25, 1)
    np.testing.assert_array_equal(one[..., 0], features[..., 0])


def test_action_names() -> None:
    assert len(ntu.ACTIONS) == 120 and len(set(ntu.ACTIONS.values())) == 120
    for action, name in NAMES.items():
        assert ntu.ACTIONS[action] == name
    assert ntu.ACTIONS[25] == "put_something_inside_pocket_take_out_something_from_pocket"
    assert ntu.ACTIONS[57] == "touch_other_persons_pocket"
    assert ntu.action_of(Path("S001C001P001R001A013.skeleton")) == 13
    assert ntu.action_of(Path("S001C001P001R001.skeleton")) is None


# -- concatenation ----------------------------------------------------------------------------


def _plan(seed: int, concat: int, count: int) -> list[list[str]]:
    """The documented draw, spelled out: sorted names, permuted by default_rng(seed)."""
    names = sorted(CLIPS)
    order = np.random.default_rng(seed).permutation(len(names))
    return [[names[k] for k in order[i * concat : (i + 1) * concat]] for i in range(count)]


def test_concatenation_features_labels_and_mapping(clips: Path, tmp_path: Path) -> None:
    summary = _prepare(clips, tmp_path / "out", concat=3, seed=5)
    root = tmp_path / "out" / "ntu"
    plan = _plan(5, 3, 2)
    unused = sorted(set(CLIPS) - set(plan[0]) - set(plan[1]))
    assert len(unused) == 1
    assert sorted(summary.skipped) == sorted(
        [
            ("S001C001P001R001.skeleton", "name is not SsssCcccPpppRrrrAaaa"),
            ("samples_with_missing_skeletons.txt", "not a .skeleton file"),
            (f"{unused[0]}.skeleton", "not drawn into any sequence"),
        ]
    )
    assert summary.sequences == 2
    assert summary.frames == sum(CLIPS[s][0] for s in plan[0] + plan[1])

    for index, stems in enumerate(plan):
        name = f"concat_{index:05d}"
        features = np.load(root / "features" / f"{name}.npy")
        expected = np.concatenate([_expected_clip(_frames(s)) for s in stems], axis=1)
        np.testing.assert_array_equal(features, expected)
        labels = (root / "groundTruth" / f"{name}.txt").read_text().split("\n")
        assert labels == [NAMES[int(s[-3:])] for s in stems for _ in range(CLIPS[s][0])]

    mapping = (root / "mapping" / "mapping.txt").read_text().split("\n")
    assert len(mapping) == 120
    assert mapping[0] == "1 drink_water" and mapping[59] == "60 walking_apart_from_each_other"
    assert mapping[119] == "120 finger_guessing_game_playing_rock_paper_scissors"
    assert read_layout(root).shape == (3, 25, 2)


def test_plan_is_seeded_and_uses_each_clip_once(clips: Path) -> None:
    paths = sorted(clips.glob("S*A*.skeleton"))
    groups, unused = ntu.plan_sequences(paths[::-1], concat=2, seed=3)  # input order is moot
    assert [g.name for g in groups] == ["concat_00000", "concat_00001", "concat_00002"]
    assert [[p.stem for p in g.files] for g in groups] == _plan(3, 2, 3)
    used = [p for g in groups for p in g.files] + unused
    assert sorted(used) == paths  # every clip exactly once
    again, _ = ntu.plan_sequences(paths, concat=2, seed=3)
    other, _ = ntu.plan_sequences(paths, concat=2, seed=4)
    assert again == groups and other != groups
    one, rest = ntu.plan_sequences(paths, concat=2, seed=3, sequences=1)
    assert one == groups[:1] and len(rest) == 5


def test_sequences_and_bodies_options(clips: Path, tmp_path: Path) -> None:
    summary = _prepare(clips, tmp_path / "out", concat=2, seed=1, sequences=2, bodies=1)
    assert summary.sequences == 2
    assert sum(reason == "not drawn into any sequence" for _, reason in summary.skipped) == 3
    dataset = read_layout(tmp_path / "out" / "ntu")
    assert dataset.shape == (3, 25, 1)
    plan = _plan(1, 2, 2)
    expected = np.concatenate([_expected_clip(_frames(s), bodies=1) for s in plan[1]], axis=1)
    np.testing.assert_array_equal(dataset.sequences[1].features, expected)

    with pytest.raises(ConfigError) as caught:
        _prepare(clips, tmp_path / "out", concat=3, sequences=3)
    assert str(caught.value) == "ntu: 3 sequence(s) of 3 clips need 9 clips, but the inputs have 7"
    with pytest.raises(ConfigError, match=r"1 sequence\(s\) of 8 clips need 8 clips"):
        _prepare(clips, tmp_path / "out", concat=8)
    with pytest.raises(ConfigError, match=r"ntu needs concat"):
        _prepare(clips, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"ntu concat must be an integer >= 1, got 0"):
        _prepare(clips, tmp_path / "out", concat=0)
    with pytest.raises(ConfigError, match=r"ntu bodies must be 1 or 2, got 3"):
        _prepare(clips, tmp_path / "out", concat=2, bodies=3)


def test_empty_and_bodiless_clips_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    write_ntu_clip(folder / "S001C001P001R001A010.skeleton", ntu_clip_frames(3, 1))
    empty = write_text(folder / "S001C001P001R001A011.skeleton", ["0"])
    bodiless = write_text(folder / "S001C001P001R001A012.skeleton", ["3", "0", "0", "0"])
    summary = _prepare(folder, tmp_path / "out", concat=3)
    assert summary.sequences == 1 and summary.frames == 3
    assert sorted(summary.skipped) == [
        (empty.name, "clip has no frames"),
        (bodiless.name, "no body in any frame"),
    ]
    sequence = read_layout(tmp_path / "out" / "ntu").sequences[0]
    np.testing.assert_array_equal(sequence.features, _expected_clip(ntu_clip_frames(3, 1)))
    assert sequence.labels.tolist() == [10, 10, 10]

    items = list(ntu.read_group(FileGroup("concat_00007", (empty, bodiless))))
    assert items == [
        Skipped(empty.name, "clip has no frames"),
        Skipped(bodiless.name, "no body in any frame"),
        Skipped("concat_00007", "no usable clip (all its clips were skipped)"),
    ]


def test_duplicate_clip_names_across_inputs(clips: Path, tmp_path: Path) -> None:
    stem = "S001C001P001R001A001"
    copy = write_ntu_clip(tmp_path / "copy" / f"{stem}.skeleton", _frames(stem))
    with pytest.raises(ConfigError) as caught:
        prepare_dataset("ntu", [clips, copy.parent], tmp_path / "out", concat=2, progress=False)
    assert str(caught.value) == (
        f"{copy}: clip {stem}.skeleton is also in {clips}; give each clip once"
    )


# -- malformed clips --------------------------------------------------------------------------

# two frames of one body: line 1 frame count, 2 body count, 3 body values, 4 joint count,
# 5-29 joints, 30 body count of frame 2, 31 body values, 32 joint count, 33-57 joints
TWO_FRAMES = ntu_clip_lines([[ntu_body(1)], [ntu_body(2)]])
assert len(TWO_FRAMES) == 57


def _edit(line: int, text: str | None) -> list[str]:
    lines = list(TWO_FRAMES)
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    return lines


def _token(line: int, position: int, token: str | None) -> list[str]:
    tokens = TWO_FRAMES[line - 1].split()
    if token is None:
        del tokens[position - 1]
    else:
        tokens[position - 1] = token
    return _edit(line, " ".join(tokens))


MALFORMED = {
    "truncated in the joints": (
        TWO_FRAMES[:-3],
        ":55: file ends early (truncated): expected 25 joint lines of frame 2 of 2, "
        "body 1 of 1 after line 54",
    ),
    "truncated after a body count": (
        TWO_FRAMES[:2],
        ":3: file ends early (truncated): expected the 10 body values of frame 1 of 2, "
        "body 1 of 1 after line 2",
    ),
    "missing frame": (TWO_FRAMES[:29], ":30: file ends early (truncated): expected the body"),
    "frame count not a number": (
        _edit(1, "two"),
        ":1: expected the frame count (one integer >= 0), got 'two'",
    ),
    "body count with two numbers": (
        _edit(30, "1 0"),
        ":30: expected the body count of frame 2 of 2 (one integer >= 0), got '1 0'",
    ),
    "negative body count": (
        _edit(2, "-1"),
        ":2: expected the body count of frame 1 of 2 (one integer >= 0), got '-1'",
    ),
    "joint count 24": (
        _edit(32, "24"),
        ":32: joint count 24 (frame 2 of 2, body 1 of 1), expected 25",
    ),
    "joint count not a number": (
        _edit(4, "x"),
        ":4: expected the joint count of frame 1 of 2, body 1 of 1 (one integer >= 0), got 'x'",
    ),
    "text in a joint line": (
        _token(10, 2, "abc"),
        ":10: value 2 of the joint values is not a finite number: 'abc'",
    ),
    "nan in a joint line": (
        _token(57, 1, "nan"),
        ":57: value 1 of the joint values is not a finite number: 'nan'",
    ),
    "short joint line": (_token(40, 12, None), ":40: expected 12 joint values, found 11"),
    "short body line": (_token(31, 1, None), ":31: expected 10 body values, found 9"),
    "text in a body line": (
        _token(3, 10, "tracked"),
        ":3: value 10 of the body values is not a finite number: 'tracked'",
    ),
    "content after the last frame": (
        [*TWO_FRAMES, "1"],
        ":58: unexpected content after the last frame (2 frames): '1'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_clip_is_a_one_line_error_and_keeps_the_old_dataset(
    case: str, clips: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _prepare(clips, out, concat=7)  # one sequence of all seven clips
    before = snapshot(out)

    lines, message = MALFORMED[case]
    bad = write_text(clips / "S005C002P010R001A031.skeleton", lines)
    with pytest.raises(RawFormatError) as caught:
        _prepare(clips, out, concat=8)  # now one sequence of all eight clips
    text = str(caught.value)
    assert text.startswith(f"{bad}:"), text
    assert message in text
    assert "\n" not in text
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["ntu"]


def test_unknown_action_id(clips: Path, tmp_path: Path) -> None:
    bad = write_ntu_clip(clips / "S033C001P001R001A121.skeleton", ntu_clip_frames(2, 5))
    with pytest.raises(RawFormatError) as caught:
        _prepare(clips, tmp_path / "out", concat=2)
    assert str(caught.value) == f"{bad}: action A121 is not an NTU RGB+D action (A001..A120)"


def test_second_run_is_byte_identical(clips: Path, tmp_path: Path) -> None:
    _prepare(clips, tmp_path / "one", concat=2, seed=7)
    first = snapshot(tmp_path / "one")
    _prepare(clips, tmp_path / "one", concat=2, seed=7)
    _prepare(clips, tmp_path / "two", concat=2, seed=7)
    assert snapshot(tmp_path / "one") == first == snapshot(tmp_path / "two")
    assert len(first) == 7  # 3 features, 3 label files, mapping
    _prepare(clips, tmp_path / "three", concat=2, seed=8)
    assert snapshot(tmp_path / "three") != first


# -- command line -----------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "histvq.prepare", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_success_and_one_line_error(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _cli(
        "ntu", "--input", str(clips), "--output", str(out), "--concat", "3", "--seed", "5",
        "--bodies", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = sum(CLIPS[s][0] for group in _plan(5, 3, 2) for s in group)
    assert result.stdout.startswith(f"prepared ntu: 2 sequences, {frames} frames, ")
    assert result.stdout.count("\n") == 1
    assert read_layout(out / "ntu").shape == (3, 25, 1)

    bad = write_text(clips / "S005C002P010R001A031.skeleton", _edit(32, "24"))
    result = _cli("ntu", "--input", str(clips), "--output", str(out), "--concat", "8")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {bad}:32: joint count 24 (frame 2 of 2, body 1 of 1), expected 25\n"
    )
    assert read_layout(out / "ntu").shape == (3, 25, 1)  # the earlier dataset is untouched


# -- dataset config ---------------------------------------------------------------------------


def test_config_mirrors_hugadb_and_prepares_on_first_use(clips: Path, tmp_path: Path) -> None:
    hugadb = compose_config("train", ["dataset=hugadb"]).dataset
    cfg = compose_config(
        "train",
        [
            "dataset=ntu",
            f"paths.data_dir={tmp_path / 'data'}",
            f"dataset.raw_dir={clips}",
            "dataset.prepare_options.concat=3",
        ],
    ).dataset
    assert list(cfg) == list(hugadb)
    assert dict(cfg.prepare_options) == {"concat": 3, "seed": 0, "bodies": 2, "sequences": None}
    assert (cfg.patch_size, cfg.fps, cfg.num_channels, cfg.num_joints) == (30, 30, 3, 25)

    module = instantiate(cfg)
    assert isinstance(module, NTUDataModule) and module.kind == "ntu"
    module.prepare_data()
    module.setup()
    present = {int(s[-3:]) for group in _plan(0, 3, 2) for s in group}
    assert module.spec.num_classes == len(present)
    assert module.spec.num_persons == 2
