"""HuGaDB raw text files -> (6, T, 6, 1) sequences of per-frame activity names.

A HuGaDB recording (``HuGaDB_v<version>_<activity>_<participant>_<counter>.txt``, v1 or v2)
is tab separated: three header lines beginning with ``#`` (``#Activity``, ``#ActivityID``,
``#Date``), one column-name line, then one row per sample (~60 Hz) of 39 integers: 36
inertial columns (sensors right foot, right shin, right thigh, left foot, left shin, left
thigh; each acc x, y, z then gyro x, y, z), EMG right, EMG left, and the activity id.

Preparation matches SMQ's reference preprocessing value for value: each row's 36 inertial
values become (1 person, 6 sensors, 6 values), transposed to (C=6 values, T, V=6 sensors,
M=1); EMG is dropped; the label of a frame is the name of its activity id. One difference
in storage: the reference saves the integer array as read, we store float32. The readings
are int16, which float32 holds exactly, so the arrays are identical — except for glitches
beyond 2**24 in the raw data: the v1 archive has 7 values outside the int16 range, and 2 of
them (4312046944 and 546342596, line 7283 of HuGaDB_v1_bicycling_01_08) become 4312046848
and 546342592 (relative change < 1e-8), as they would in any float32 model input.

Stricter than the reference, which would write ``unknown`` labels or crash deep inside
pandas: unknown activity ids, rows without exactly 39 columns, non-numeric or non-finite
values, and empty or header-less files raise :class:`~histvq.errors.RawFormatError` with
the file and line. Blank lines are skipped (as the reference does); trailing whitespace
(including a trailing tab or CR of CRLF files) is ignored. The real v1 release has none of
these irregularities (checked on all 635 files).
"""

from __future__ import annotations

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
from histvq.errors import RawFormatError

ACTIVITIES: dict[int, str] = {
    1: "walking",
    2: "running",
    3: "going_up",
    4: "going_down",
    5: "sitting",
    6: "sitting_down",
    7: "standing_up",
    8: "standing",
    9: "bicycling",
    10: "up_by_elevator",
    11: "down_by_elevator",
    12: "sitting_in_car",
}

SENSORS: tuple[str, ...] = ("rf", "rs", "rt", "lf", "ls", "lt")
"""Right foot, right shin, right thigh, left foot, left shin, left thigh (the joint axis V)."""

CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""The channel axis C, in file order within each sensor."""

COLUMNS: tuple[str, ...] = (
    *(
        f"{kind}_{sensor}_{axis}"
        for sensor in SENSORS
        for kind in ("acc", "gyro")
        for axis in "xyz"
    ),
    "EMG_r",
    "EMG_l",
    "act",
)
NUM_COLUMNS = len(COLUMNS)  # 39
NUM_INERTIAL = 36
HEADER_LINES = 3  # '#Activity', '#ActivityID', '#Date'
FILE_PATTERN = "HuGaDB_v*_*.txt"
PATTERN_ALIASES = {"all": FILE_PATTERN, "various": "HuGaDB_v*_various_*.txt"}

_VERSION_PREFIX = re.compile(r"^HuGaDB_v\d+_")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _expand(spec: dict[str, dict[int, str]]) -> frozenset[str]:
    """``{"walking": {3: "00-01,05"}}`` -> {"walking_03_00", "walking_03_01", "walking_03_05"}."""
    names: set[str] = set()
    for activity, participants in spec.items():
        for participant, counters in participants.items():
            for part in counters.split(","):
                first, _, last = part.partition("-")
                for counter in range(int(first), int(last or first) + 1):
                    names.add(f"{activity}_{participant:02d}_{counter:02d}")
    return frozenset(names)


# Recordings whose gyroscope data is corrupted (amplified 10x and clipped), transcribed from
# the table "Corrupted gyroscope data" in the dataset's README
# (https://github.com/romanchereshnev/HuGaDB, README.md; the v1 archive's ReadMe.txt does not
# list them). The README names v1 files; v2 is the same recordings relabelled, so the key
# leaves out the version: "<activity>_<participant>_<counter>". Ranges are inclusive; gaps
# (e.g. various_15_10, various_17_03, walking_09_04) are files the README does not list.
# 465 keys, all present in the v1 archive (of its 635 files; 255 of the 364 `various`).
CORRUPTED_GYRO_RECORDINGS: frozenset[str] = _expand(
    {
        "various": {
            3: "00-24", 4: "00-19", 5: "00-20", 7: "00-24", 9: "00-08,13-20", 11: "04-20",
            12: "00-18", 13: "07-24", 14: "00-21", 15: "00-09,11", 16: "00-19",
            17: "00-02,04-23", 18: "00-16",
        },
        "running": {3: "00-01", 7: "00-02", 9: "00-02"},
        "sitting": {
            3: "00-03", 4: "00-02", 5: "00-01", 6: "04", 7: "01-04", 8: "00", 9: "00-03",
            10: "00,04", 11: "00-03", 12: "00-03", 13: "00-06", 14: "00-03", 15: "00-03",
            16: "00-05", 17: "00-06", 18: "00-03",
        },
        "sitting_in_car": {1: "00-06,08-14"},
        "standing": {
            1: "00,03", 3: "00", 4: "00-03", 5: "00-01", 6: "00", 7: "00-01,03", 8: "00-03",
            9: "00-04", 10: "01,03", 11: "00-04", 12: "00-04", 13: "00-03", 15: "00-04",
            16: "00-04", 17: "00-03", 18: "00-04",
        },
        "walking": {
            3: "00-01", 4: "00-05", 5: "00-03", 6: "03,05", 7: "00-04", 9: "00-03",
            11: "00-03", 12: "00-06", 13: "00-03", 14: "00-04", 15: "00-10", 16: "00-04",
            17: "00-06", 18: "00-03",
        },
    }
)  # fmt: skip


def recording_key(filename: str) -> str:
    """``HuGaDB_v2_various_03_00.txt`` -> ``various_03_00`` (the version-free recording id)."""
    return _VERSION_PREFIX.sub("", Path(filename).stem)


def has_corrupted_gyro(filename: str) -> bool:
    """Whether the HuGaDB README lists this recording (any version) as gyro-corrupted."""
    return recording_key(filename) in CORRUPTED_GYRO_RECORDINGS


@dataclass(frozen=True)
class HugadbOptions:
    """Options of ``prepare hugadb``.

    exclude_corrupted: leave out the recordings the HuGaDB README lists with corrupted
    (clipped) gyroscope data. Off by default, as SMQ used all files.
    pattern: which file names in the input folders are recordings. Default ``various``
    (``HuGaDB_v*_various_*.txt``: the multi-activity sequences, the paper's HuGaDB set);
    ``all`` (``HuGaDB_v*_*.txt``) adds the single-activity recordings; any other value is a
    glob pattern.
    """

    exclude_corrupted: bool = False
    pattern: str = "various"

    @property
    def glob(self) -> str:
        return PATTERN_ALIASES.get(self.pattern, self.pattern)


def read_hugadb_file(path: Path) -> RawSequence:
    """Parse one HuGaDB recording into (6, T, 6, 1) float32 features and T activity names."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RawFormatError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise RawFormatError(f"{path}: empty file")
    for number in range(1, HEADER_LINES + 1):
        line = lines[number - 1] if number <= len(lines) else ""
        if not line.startswith("#"):
            raise RawFormatError(
                f"{path}:{number}: expected header line {number} of 3 starting with '#' "
                f"(#Activity, #ActivityID, #Date), got {line[:40]!r}"
            )
    _check_column_names(path, lines)

    numbers: list[int] = []
    rows: list[str] = []
    for number, line in enumerate(lines[HEADER_LINES + 1 :], start=HEADER_LINES + 2):
        row = line.rstrip()
        if row:
            numbers.append(number)
            rows.append(row)
    if not rows:
        raise RawFormatError(f"{path}: no data rows after the header")
    values = _parse_rows(path, rows, numbers)

    activity = values[:, -1]
    valid = np.isin(activity, list(ACTIVITIES))
    if not valid.all():
        bad = int(np.argmin(valid))
        raise RawFormatError(
            f"{path}:{numbers[bad]}: unknown activity id {rows[bad].split()[-1]!r} "
            f"(expected an integer 1..12)"
        )
    names = np.array([""] + [ACTIVITIES[i] for i in range(1, 13)], dtype=object)
    labels = names[activity.astype(np.int64)].tolist()

    num_frames = values.shape[0]
    inertial = values[:, :NUM_INERTIAL].reshape(num_frames, 1, len(SENSORS), len(CHANNELS))
    features = np.ascontiguousarray(inertial.transpose(3, 0, 2, 1), dtype=np.float32)
    return RawSequence(name=path.stem, features=features, labels=labels)


def _check_column_names(path: Path, lines: list[str]) -> None:
    number = HEADER_LINES + 1
    if len(lines) < number:
        raise RawFormatError(f"{path}:{number}: missing the column-name line after the header")
    fields = lines[number - 1].rstrip().split("\t")
    if len(fields) != NUM_COLUMNS:
        raise RawFormatError(
            f"{path}:{number}: expected {NUM_COLUMNS} tab-separated column names "
            f"(acc_rf_x ... act), found {len(fields)}"
        )
    for index, (found, expected) in enumerate(zip(fields, COLUMNS, strict=True), start=1):
        if found.strip().lower() != expected.lower():
            raise RawFormatError(
                f"{path}:{number}: column {index} is named {found!r}, expected {expected!r} "
                f"(the HuGaDB column order)"
            )


def _parse_rows(path: Path, rows: list[str], numbers: list[int]) -> np.ndarray:
    """(T, 39) float64 values; any malformed row is reported with its line and column."""
    values = parse_numeric_rows(rows, "\t", NUM_COLUMNS)
    if values is not None:
        return values
    _diagnose_rows(path, rows, numbers)
    raise RawFormatError(f"{path}: could not parse the data rows as numbers")


def _diagnose_rows(path: Path, rows: list[str], numbers: list[int]) -> None:
    """Slow scan that raises for the first malformed row (column count, value)."""
    for number, row in zip(numbers, rows, strict=True):
        fields = row.split("\t")
        if len(fields) != NUM_COLUMNS:
            raise RawFormatError(
                f"{path}:{number}: expected {NUM_COLUMNS} tab-separated columns, found "
                f"{len(fields)}"
            )
        for index, token in enumerate(fields):
            if not _NUMBER.match(token):
                raise RawFormatError(
                    f"{path}:{number}: column {index + 1} ({COLUMNS[index]}) is not a finite "
                    f"number: {token!r}"
                )


def discover(inputs: list[Path], options: HugadbOptions) -> Discovery:
    """Every recording matching ``options.pattern`` (default: the ``various`` recordings) in
    the input folders (files given directly are taken as is).

    Other files (the release's ReadMe.txt, the .m loader, ...) are listed as skipped, and so
    are the gyro-corrupted recordings when ``options.exclude_corrupted`` is set.
    """
    recordings, others = split_inputs(inputs, options.glob, recursive=False)
    discovery = Discovery()
    discovery.skipped.extend(Skipped(p.name, f"not a {options.glob} recording") for p in others)
    for path in recordings:
        if options.exclude_corrupted and has_corrupted_gyro(path.name):
            discovery.skipped.append(Skipped(path.name, "corrupted gyroscope data (HuGaDB README)"))
        else:
            discovery.files.append(path)
    return discovery


def read(path: Path, options: HugadbOptions) -> Iterator[RawSequence | Skipped]:
    yield read_hugadb_file(path)


SOURCE = Source(
    kind="hugadb",
    description="HuGaDB v1/v2 raw text recordings (6 IMUs on the legs, 12 activities)",
    options_type=HugadbOptions,
    default_name=lambda options: "hugadb",
    mapping=lambda options: dict(ACTIVITIES),
    discover=discover,
    read=read,
    predict_options={"pattern": "all", "exclude_corrupted": False},
)
