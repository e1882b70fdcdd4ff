"""Tiny raw files in the exact HuGaDB, LARa, BABEL, PKU-MMD and NTU formats, for prepare tests.

Spelled out here independently of ``histvq.data.sources`` (column names, joint names, header
lines), so a mistake in the parsers' constants shows up as a test failure.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HUGADB_SENSORS = ("rf", "rs", "rt", "lf", "ls", "lt")
HUGADB_HEADER = "\t".join(
    [f"{kind}_{s}_{axis}" for s in HUGADB_SENSORS for kind in ("acc", "gyro") for axis in "xyz"]
    + ["EMG_r", "EMG_l", "act"]
)
HUGADB_NAMES = {
    1: "walking", 2: "running", 3: "going_up", 4: "going_down", 5: "sitting",
    6: "sitting_down", 7: "standing_up", 8: "standing", 9: "bicycling",
    10: "up_by_elevator", 11: "down_by_elevator", 12: "sitting_in_car",
}  # fmt: skip


def hugadb_values(num_frames: int) -> np.ndarray:
    """(T, 36) distinct integers: row t, sensor s, channel c -> 1000 t + 10 s + c (+ sign)."""
    t = np.arange(num_frames)[:, None, None]
    s = np.arange(6)[None, :, None]
    c = np.arange(6)[None, None, :]
    values = 1000 * t + 10 * s + c
    values = np.where((c % 2) == 1, -values, values)  # negative numbers too
    return values.reshape(num_frames, 36)


def hugadb_lines(values: np.ndarray, activities: Sequence[int], emg: int = 77) -> list[str]:
    """The lines of a HuGaDB file (3 '#' header lines, column names, rows)."""
    ids = list(dict.fromkeys(activities))
    lines = [
        "#Activity\t" + " ".join(HUGADB_NAMES.get(i, "?") for i in ids) + " ",
        "#ActivityID\t" + " ".join(str(i) for i in ids) + " ",
        "#Date 10-26-17-47",
        HUGADB_HEADER,
    ]
    for row, activity in zip(values, activities, strict=True):
        lines.append("\t".join(str(int(v)) for v in row) + f"\t{emg}\t{emg + 1}\t{activity}")
    return lines


def write_text(path: Path, lines: Sequence[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def write_hugadb(path: Path, values: np.ndarray, activities: Sequence[int]) -> Path:
    return write_text(path, hugadb_lines(values, activities))


LARA_JOINTS = (
    "Head", "Head_End", "L_Collar", "L_Elbow", "L_Femur", "L_Foot", "L_Humerus", "L_Tibia",
    "L_Toe", "L_Wrist", "L_Wrist_End", "LowerBack", "R_Collar", "R_Elbow", "R_Femur",
    "R_Foot", "R_Humerus", "R_Tibia", "R_Toe", "R_Wrist", "R_Wrist_End", "Root",
)  # fmt: skip
LARA_CLASSES = (
    "Standing", "Walking", "Cart", "Handling(upwards)", "Handling(centred)",
    "Handling(downwards)", "Synchronization", "None",
)  # fmt: skip
LARA_ATTRIBUTES = tuple(f"attr_{i}" for i in range(19))


def lara_motion(num_frames: int, seed: int = 0) -> np.ndarray:
    """(T, 22, 6) values with 4 decimals, each the double nearest its CSV text."""
    rng = np.random.default_rng(seed)
    return rng.integers(-9_000_000, 9_000_000, size=(num_frames, 22, 6)) / 10_000


def lara_motion_lines(motion: np.ndarray, vicon_header: bool = True) -> list[str]:
    """A recording CSV: the 5-line OMoCap export header (or one column-name line) + rows."""
    if vicon_header:
        header = [
            "Segments",
            "200",
            ",," + "".join(f"Subject01:{j},,,,,," for j in LARA_JOINTS),
            "Frame,Sub Frame," + ",".join(["RX,RY,RZ,TX,TY,TZ"] * 22),
            ",," + ",".join(["deg,deg,deg,mm,mm,mm"] * 22),
        ]
    else:
        header = [
            "sample,label,"
            + ",".join(
                f"{j}_{c}" for j in LARA_JOINTS for c in ("RX", "RY", "RZ", "TX", "TY", "TZ")
            )
        ]
    rows = [
        f"{t + 1},0," + ",".join(f"{v:.4f}" for v in frame.reshape(-1))
        for t, frame in enumerate(motion)
    ]
    return header + rows


def lara_label_lines(classes: Sequence[int | None]) -> list[str]:
    """A labels CSV: header, then per frame the one-hot of class index 0..7 (None: no class)."""
    lines = [",".join(LARA_CLASSES + LARA_ATTRIBUTES)]
    for cls in classes:
        onehot = ["1" if cls == i else "0" for i in range(8)]
        lines.append(",".join(onehot + ["0"] * len(LARA_ATTRIBUTES)))
    return lines


def write_lara_pair(
    folder: Path, stem: str, motion: np.ndarray, classes: Sequence[int | None]
) -> tuple[Path, Path]:
    recording = write_text(folder / f"{stem}.csv", lara_motion_lines(motion))
    labels = write_text(folder / f"{stem}_labels.csv", lara_label_lines(classes))
    return recording, labels


def babel_sequence(num_frames: int, seed: int) -> np.ndarray:
    """(3, T, 25, 1) float32 root-centred coordinates in metres."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(3, num_frames, 25, 1)).astype(np.float32)


def write_pickle(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(data, handle)
    return path


def write_babel(
    path: Path, sids: Sequence[object], xs: Sequence[np.ndarray], ls: Sequence[Sequence[int]]
) -> Path:
    """A subset pickle as the STAL pipeline writes it: sid, X, L (per-frame ints), Y."""
    labels = [np.asarray(frame_labels, dtype=np.int64) for frame_labels in ls]
    return write_pickle(
        path,
        {"sid": list(sids), "X": list(xs), "L": labels, "Y": [np.unique(seq) for seq in labels]},
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to compare trees byte for byte."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# -- PKU-MMD ---------------------------------------------------------------------------------


def pkummd_values(num_frames: int, seed: int = 0, second_body: bool = True) -> np.ndarray:
    """(T, 2 bodies, 25 joints, 3) coordinates in metres, all multiples of 1/8 (exact in binary
    and in 3-decimal text); the second body is all zeros when ``second_body`` is false."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-40, 40, size=(num_frames, 2, 25, 3)) / 8
    if not second_body:
        values[:, 1] = 0.0
    return values


def pkummd_lines(values: np.ndarray) -> list[str]:
    """A skeleton file: per frame 150 space-separated numbers (body 1 joints x,y,z, then body
    2). Like the release, lines after the first start with a space and end with one."""
    lines = []
    for t, frame in enumerate(values):
        text = " ".join(f"{v:.3f}" for v in frame.reshape(-1)) + " "
        lines.append(text if t == 0 else " " + text)
    return lines


def pkummd_label_lines(instances: Sequence[tuple[int, int, int, int]]) -> list[str]:
    """A label file: ``class,start,end,confidence`` per instance."""
    return [",".join(str(v) for v in instance) for instance in instances]


def write_pkummd(
    skeleton_dir: Path,
    label_dir: Path,
    stem: str,
    values: np.ndarray,
    instances: Sequence[tuple[int, int, int, int]],
) -> tuple[Path, Path]:
    skeleton = write_text(skeleton_dir / f"{stem}.txt", pkummd_lines(values))
    labels = write_text(label_dir / f"{stem}.txt", pkummd_label_lines(instances))
    return skeleton, labels


# -- NTU RGB+D -------------------------------------------------------------------------------

NTU_BODY_LINE = "72057594037931101 0 1 1 1 1 0 0.01168375 0.2449851 2"
NTU_JOINT_TAIL = "277.0773 191.5004 1082.26 524.8035 -0.2598077 0.02244523 0.9653498 -0.01110962 2"


def ntu_body(seed: int) -> np.ndarray:
    """(25, 3) joint positions in metres, multiples of 1/8 (exact in binary and as text)."""
    return np.random.default_rng(seed).integers(-40, 40, size=(25, 3)) / 8


def ntu_clip_lines(frames: Sequence[Sequence[np.ndarray]]) -> list[str]:
    """A ``.skeleton`` file: frame count; per frame the body count, then per body its 10
    values, the joint count 25 and 25 lines of 12 values (x, y, z first)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for xyz in bodies:
            lines.append(NTU_BODY_LINE)
            lines.append("25")
            lines.extend(f"{x} {y} {z} {NTU_JOINT_TAIL}" for x, y, z in xyz)
    return lines


def ntu_clip_frames(num_frames: int, seed: int, bodies: int = 1) -> list[list[np.ndarray]]:
    """``num_frames`` frames of ``bodies`` random bodies each."""
    return [[ntu_body(seed * 1000 + 10 * t + b) for b in range(bodies)] for t in range(num_frames)]


def write_ntu_clip(path: Path, frames: Sequence[Sequence[np.ndarray]]) -> Path:
    return write_text(path, ntu_clip_lines(frames))
