"""LARa (v3, OMoCap, annotated) CSV recordings -> (6, T, 22, 1) root-centred sequences.

A recording ``<rec>.csv`` is the optical motion capture export: a few header lines
(``Segments``, the frame rate, the 22 segment names, the column names ``Frame, Sub Frame,
RX, RY, RZ, TX, TY, TZ, ...`` and their units), then one comma-separated row per frame at
200 fps: frame number, sub-frame, and 22 joints x 6 values (orientation RX, RY, RZ in
degrees, then position TX, TY, TZ in mm). Its annotation is the sibling ``<rec>_labels.csv``:
a header line, then one row per frame whose first 8 columns are the one-hot classes
Standing, Walking, Cart, Handling(upwards), Handling(centred), Handling(downwards),
Synchronization, None (the remaining columns are the attributes, unused here).

Preparation follows SMQ's reference: drop the header rows and the two frame columns,
keep every ``sample_rate``-th frame starting at the first (200 -> 50 fps with the default
4), subtract the root joint's position (joint 21, ``Root``, by default) from every joint's
position per frame (orientations unchanged), and store (C=6, T, V=22, M=1) float32, the
6 channels in file order (RX, RY, RZ, TX, TY, TZ). A frame whose 8 class columns are all 0
gets the label ``None`` (the reference's fallback).

Our choices where the reference is silent or lax (it reads with pandas and checks nothing):
the header rows are the leading lines that are not data rows (the export has 5; the
reference assumes exactly 5); every data row must have exactly 2 + 22 x 6 = 134 values and
every labels row at least 8, all finite numbers; class cells must be 0 or 1 and at most one
class may be set per frame; the labels file must name the 8 classes in its header (spaces,
underscores and case aside) and have exactly as many rows as the recording. A recording
without its labels file, or with a frame-count mismatch, is an error (nothing is written):
silently dropping recordings would change the benchmark. A labels file without a recording
is skipped with a note.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from histvq.data.sources import (
    Discovery,
    RawSequence,
    Skipped,
    Source,
    parse_numeric_rows,
    split_inputs,
)
from histvq.errors import ConfigError, RawFormatError

CLASSES: dict[int, str] = {
    1: "Standing",
    2: "Walking",
    3: "Cart",
    4: "Handling(upwards)",
    5: "Handling(centred)",
    6: "Handling(downwards)",
    7: "Synchronization",
    8: "None",
}
NO_CLASS_LABEL = "None"

# Segment order of the OMoCap export (its third header line), i.e. the joint axis V.
JOINTS: tuple[str, ...] = (
    "Head", "Head_End", "L_Collar", "L_Elbow", "L_Femur", "L_Foot", "L_Humerus", "L_Tibia",
    "L_Toe", "L_Wrist", "L_Wrist_End", "LowerBack", "R_Collar", "R_Elbow", "R_Femur",
    "R_Foot", "R_Humerus", "R_Tibia", "R_Toe", "R_Wrist", "R_Wrist_End", "Root",
)  # fmt: skip
CHANNELS: tuple[str, ...] = ("RX", "RY", "RZ", "TX", "TY", "TZ")
ROOT_JOINT = JOINTS.index("Root")  # 21, the "hip" index of SMQ's reference
FRAME_COLUMNS = 2  # Frame, Sub Frame
NUM_COLUMNS = FRAME_COLUMNS + len(JOINTS) * len(CHANNELS)  # 134
LABELS_SUFFIX = "_labels.csv"

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class LaraOptions:
    """Options of ``prepare lara``: keep every ``sample_rate``-th frame; centre on ``root_joint``.

    The default root is SMQ's choice (21, ``Root``); LARa's own tools centre on ``LowerBack``
    (11) instead. ``require_labels=False`` (prediction) reads a recording without its labels
    file as unlabelled instead of stopping.
    """

    sample_rate: int = 4
    root_joint: int = ROOT_JOINT
    require_labels: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise ConfigError(f"lara sample_rate must be an integer, got {self.sample_rate!r}")
        if self.sample_rate < 1:
            raise ConfigError(f"lara sample_rate must be >= 1, got {self.sample_rate}")
        if isinstance(self.root_joint, bool) or not isinstance(self.root_joint, int):
            raise ConfigError(f"lara root_joint must be an integer, got {self.root_joint!r}")
        if not 0 <= self.root_joint < len(JOINTS):
            raise ConfigError(
                f"lara root_joint must be a joint index 0..{len(JOINTS) - 1}, got {self.root_joint}"
            )


def labels_path_for(recording: Path) -> Path:
    """``dir/L01_S01_R01.csv`` -> ``dir/L01_S01_R01_labels.csv``."""
    return recording.with_name(recording.stem + LABELS_SUFFIX)


def read_lara_recording(
    recording: Path,
    labels_file: Path | None = None,
    sample_rate: int = 4,
    root_joint: int = ROOT_JOINT,
) -> RawSequence:
    """Parse one recording and its labels into (6, T, 22, 1) float32 features and T labels."""
    labels_file = labels_file or labels_path_for(recording)
    motion = read_motion(recording)
    classes = read_class_labels(labels_file)
    if len(classes) != motion.shape[0]:
        raise RawFormatError(
            f"{recording}: {motion.shape[0]} frames but {labels_file.name} has "
            f"{len(classes)} label rows"
        )
    features = motion_to_features(motion, sample_rate, root_joint)
    return RawSequence(name=recording.stem, features=features, labels=classes[::sample_rate])


def motion_to_features(
    motion: np.ndarray, sample_rate: int = 4, root_joint: int = ROOT_JOINT
) -> np.ndarray:
    """A recording's motion rows as prepared features: every ``sample_rate``-th frame, the
    positions centred on ``root_joint`` per frame, shaped (6, T, 22, 1) float32."""
    motion = motion[::sample_rate]
    joints = motion[:, FRAME_COLUMNS:].reshape(len(motion), len(JOINTS), len(CHANNELS))
    centred = joints.copy()
    centred[:, :, 3:] -= joints[:, root_joint : root_joint + 1, 3:]
    return np.ascontiguousarray(centred.transpose(2, 0, 1)[..., np.newaxis], dtype=np.float32)


def read_motion(path: Path) -> np.ndarray:
    """The data rows of a recording CSV as a (frames, 134) float64 array."""
    lines = _read_text(path).splitlines()
    start = 0
    while start < len(lines) and not _is_data_row(lines[start].split(",")):
        start += 1
    rows: list[str] = []
    for line in lines[start:]:
        row = line.strip()
        if row:
            rows.append(row[:-1] if row.endswith(",") else row)
    values = parse_numeric_rows(rows, ",", NUM_COLUMNS) if rows else None
    if values is not None:
        return values
    return _read_motion_slowly(path)


def _read_motion_slowly(path: Path) -> np.ndarray:
    """CSV-module reading with a precise error for the first bad row (or quoted numbers)."""
    rows = _read_csv(path)
    start = 0
    while start < len(rows) and not _is_data_row(rows[start][1]):
        start += 1
    data = rows[start:]
    if not data:
        raise RawFormatError(f"{path}: no data rows (found {len(rows)} header lines only)")
    for number, fields in data:
        if len(fields) != NUM_COLUMNS:
            raise RawFormatError(
                f"{path}:{number}: expected {NUM_COLUMNS} comma-separated values (frame, "
                f"sub-frame, {len(JOINTS)} joints x {len(CHANNELS)}), found {len(fields)}"
            )
    return _to_array(path, data)


def read_class_labels(path: Path) -> list[str]:
    """Per-frame class names from a ``*_labels.csv`` (first 8 columns one-hot)."""
    if not path.is_file():
        raise RawFormatError(f"{path}: labels file is missing")
    rows = _read_csv(path)
    if not rows:
        raise RawFormatError(f"{path}: empty labels file")
    number, header = rows[0]
    if _is_data_row(header):
        raise RawFormatError(f"{path}:{number}: expected a header line naming the classes")
    expected = list(CLASSES.values())
    if len(header) < len(expected):
        raise RawFormatError(
            f"{path}:{number}: expected at least {len(expected)} columns (the one-hot classes "
            f"{', '.join(expected)}), found {len(header)}"
        )
    for index, (found, wanted) in enumerate(zip(header, expected, strict=False), start=1):
        if _normalise(found) != _normalise(wanted):
            raise RawFormatError(
                f"{path}:{number}: column {index} is named {found.strip()!r}, expected "
                f"{wanted!r} (class columns: {', '.join(expected)})"
            )
    data = rows[1:]
    if not data:
        raise RawFormatError(f"{path}: no label rows after the header")
    for line, fields in data:
        if len(fields) < len(expected):
            raise RawFormatError(
                f"{path}:{line}: expected at least {len(expected)} class columns, found "
                f"{len(fields)}"
            )
    onehot = _to_array(path, [(line, fields[: len(expected)]) for line, fields in data])
    not_binary = ~np.isin(onehot, (0.0, 1.0))
    if not_binary.any():
        row, col = np.argwhere(not_binary)[0]
        raise RawFormatError(
            f"{path}:{data[row][0]}: class column {col + 1} ({expected[col]}) must be 0 or 1, "
            f"got {data[row][1][col].strip()!r}"
        )
    counts = onehot.sum(axis=1)
    if (counts > 1).any():
        row = int(np.argmax(counts > 1))
        set_classes = [expected[c] for c in np.flatnonzero(onehot[row])]
        raise RawFormatError(
            f"{path}:{data[row][0]}: more than one class set ({', '.join(set_classes)})"
        )
    names = np.array([NO_CLASS_LABEL, *expected], dtype=object)
    index = np.where(counts == 0, 0, onehot.argmax(axis=1) + 1)
    return names[index].tolist()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise RawFormatError(f"{path}: not a UTF-8 text file ({error.reason})") from None


def _read_csv(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank rows with their 1-based line numbers (a trailing empty field is dropped)."""
    text = _read_text(path)
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > 1 and not fields[-1].strip():
                fields = fields[:-1]
            rows.append((reader.line_num, fields))
    except csv.Error as error:
        raise RawFormatError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    return rows


def _is_data_row(fields: list[str]) -> bool:
    return len(fields) > 1 and bool(_NUMBER.match(fields[0]))


def _to_array(path: Path, rows: list[tuple[int, list[str]]]) -> np.ndarray:
    try:
        array = np.array([fields for _, fields in rows], dtype=np.float64)
    except ValueError:
        array = None
    if array is not None and np.isfinite(array).all():
        return array
    for line, fields in rows:
        for index, token in enumerate(fields):
            if not _NUMBER.match(token):
                raise RawFormatError(
                    f"{path}:{line}: column {index + 1} is not a finite number: {token!r}"
                )
    raise RawFormatError(f"{path}: could not parse the rows as numbers")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def discover(inputs: list[Path], options: LaraOptions) -> Discovery:
    """Every recording CSV under the inputs (recursively), each with its labels file.

    Non-CSV files are skipped with a note, and so are labels files whose recording is not
    among the inputs; a recording without its labels file is an error.
    """
    csvs, others = split_inputs(inputs, "*.csv", recursive=True)
    discovery = Discovery()
    discovery.skipped.extend(Skipped(p.name, "not a LARa CSV file") for p in others)
    recordings = [p for p in csvs if not p.name.endswith(LABELS_SUFFIX)]
    paired = {labels_path_for(p).resolve() for p in recordings}
    for path in csvs:
        if path.name.endswith(LABELS_SUFFIX) and path.resolve() not in paired:
            discovery.skipped.append(Skipped(path.name, "labels file without its recording"))
    for path in recordings:
        if options.require_labels and not labels_path_for(path).is_file():
            raise RawFormatError(
                f"{path}: recording has no labels file {labels_path_for(path).name} beside it"
            )
        discovery.files.append(path)
    return discovery


def read(path: Path, options: LaraOptions) -> Iterator[RawSequence | Skipped]:
    if options.require_labels or labels_path_for(path).is_file():
        yield read_lara_recording(
            path, sample_rate=options.sample_rate, root_joint=options.root_joint
        )
        return
    features = motion_to_features(read_motion(path), options.sample_rate, options.root_joint)
    yield RawSequence(name=path.stem, features=features, labels=None)


SOURCE = Source(
    kind="lara",
    description="LARa v3 OMoCap annotated recordings (22 joints, 8 classes)",
    options_type=LaraOptions,
    default_name=lambda options: "lara",
    mapping=lambda options: dict(CLASSES),
    discover=discover,
    read=read,
    predict_options={"require_labels": False},
)
