"""PKU-MMD skeleton recordings + per-video label files -> (3, T, 25, M) root-centred sequences.

PKU-MMD (v1 and v2) is a set of long untrimmed Kinect v2 recordings at 30 fps. A recording's
skeleton file ``<video>.txt`` (e.g. ``0002-L.txt`` in v1, ``A01N01-L.txt`` in v2) has one line
per frame of 150 whitespace-separated numbers: 2 bodies x 25 joints x (x, y, z) in metres, the
joints in NTU RGB+D / Kinect v2 order; the second body is all zeros when only one person is
seen. Its label file has the same name in a separate labels folder, one
``class,start,end,confidence`` line of integers per action instance (class ids from 1).

Preparation (command ``python -m histvq.prepare pkummd``):

- features: each body is centred on its own spine base (joint 0) per frame, then scaled from
  metres to millimetres (x1000, in float64, stored as float32) like the BABEL subsets, so the
  NTU-style datasets share one scale and the spatial loss weight means the same on them. An
  absent (all-zero) body stays all zero. ``bodies=2`` (default) keeps both bodies, M = 2;
  ``bodies=1`` keeps only the first (main) body of every line, M = 1. Shape (C=3, T, V=25, M).
- labels: a frame covered by no instance is ``background`` (id 0 in ``mapping.txt``); class
  ``c`` has id ``c``. ``start`` and ``end`` are 1-based, inclusive frame numbers: the first
  line of the skeleton file is frame 1, so an instance covers lines ``start..end`` and must
  satisfy ``1 <= start <= end <= T``. Where instances overlap, the one listed later in the label
  file wins for the shared frames (a deliberate, deterministic choice; PKU-MMD's own protocol
  scores detections per instance and says nothing about per-frame overlaps). The confidence
  column (1 or 2 in the release) must be an integer and is otherwise ignored.
- class names: from an optional actions table (``actions=FILE``); without it ``class_<id>``
  for every class id found in the label files being prepared. The table has one ``<id> <name>``
  pair per line: the id and the name are separated by the first comma if the line has one,
  else by the first tab, else by the first run of spaces (so CSV exports of the release's
  ``Actions.xlsx`` and whitespace tables both work); the name may be double-quoted; runs of
  whitespace inside a name become ``_`` (label names are single tokens in the layout, as SMQ's
  reader expects). Blank lines and lines starting with ``#`` are ignored, and so is a first
  line whose first field is not an integer (a header). Ids start at 1; ``background`` is
  reserved. A class id in a label file that the table does not list is an error.
- split: the protocol is transductive, so the default ``split="all"`` prepares every recording
  given. ``split="cross-subject"`` or ``"cross-view"`` with ``split_file=FILE`` keeps only the
  videos that file lists (its training and validation videos together). The split file is
  text: blank lines and ``#`` lines are ignored; on every line, text up to the last ``:`` is a
  title and ignored (``Training videos: 0002-L, 0002-M``); the rest is a list of video names
  (skeleton file stems) separated by commas and/or whitespace. A listed video with no
  skeleton file among the inputs is an error, as silently dropping it would change the
  benchmark; recordings it does not list are skipped with a note.

Errors (:class:`~histvq.errors.RawFormatError`, one line naming the file and line): a
recording without its label file, a skeleton line that is not 150 finite numbers, an empty
skeleton file, a label line that is not 4 comma-separated integers (a trailing comma is
tolerated), a class id below 1 or missing from the actions table, and an instance with
``start > end`` or outside the recording's frames. Malformed actions tables and split files
raise :class:`~histvq.errors.ConfigError` with their file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from histvq.data.sources import (
    read_text_lines,
    Discovery,
    RawSequence,
    Skipped,
    Source,
    parse_numeric_rows,
    split_inputs,
)
from histvq.data.sources.pkummd_tables import (
    BACKGROUND,
    Instance,
    read_actions_table,
    read_label_file,
    read_split_file,
)
from histvq.errors import ConfigError, RawFormatError

BACKGROUND_ID = 0
BODIES = 2
JOINTS = 25
CHANNELS = 3  # x, y, z
VALUES_PER_LINE = BODIES * JOINTS * CHANNELS  # 150
ROOT_JOINT = 0  # spine base (NTU RGB+D / Kinect v2 joint order)
METRES_TO_MM = 1000.0
FRAME_BASE = 1  # label files count frames from 1
SPLITS = ("all", "cross-subject", "cross-view")
SKELETON_PATTERN = "*.txt"

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class PkummdOptions:
    """Options of ``prepare pkummd``.

    labels: folder of the label files (``<video>.txt``, same stem as the skeleton file).
    split: ``all`` (default), ``cross-subject`` or ``cross-view``; the latter two need
    ``split_file``, the list of videos to keep. bodies: 2 (both, M=2) or 1 (the main body).
    actions: optional table of class ids and names (see the module docstring).
    """

    labels: str | os.PathLike[str] | None = None
    split: str = "all"
    split_file: str | os.PathLike[str] | None = None
    bodies: int = BODIES
    actions: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.labels is None or str(self.labels) == "":
            raise ConfigError(
                "pkummd needs labels: the folder of the per-video label .txt files (--labels)"
            )
        if self.split not in SPLITS:
            raise ConfigError(
                f"pkummd split must be one of {', '.join(SPLITS)}, got {self.split!r}"
            )
        if self.split != "all" and self.split_file is None:
            raise ConfigError(
                f"pkummd split {self.split!r} needs split_file, the list of its video names "
                f"(--split-file FILE); use split 'all' to prepare every recording"
            )
        if self.split == "all" and self.split_file is not None:
            raise ConfigError(
                "pkummd split_file is only used with split 'cross-subject' or 'cross-view'"
            )
        if isinstance(self.bodies, bool) or self.bodies not in (1, 2):
            raise ConfigError(f"pkummd bodies must be 1 or 2, got {self.bodies!r}")


# ----------------------------------------------------------------------------- side files


# ----------------------------------------------------------------------------- recordings


def read_skeleton_file(path: Path) -> np.ndarray:
    """The frames of a skeleton file as a (T, 150) float64 array (T >= 1)."""
    lines = read_text_lines(path)
    if not lines:
        raise RawFormatError(f"{path}: skeleton file has no frames")
    rows = [" ".join(line.split()) for line in lines]
    values = parse_numeric_rows(rows, " ", VALUES_PER_LINE)
    if values is not None:
        return values
    for number, row in enumerate(rows, start=1):
        tokens = row.split()
        if len(tokens) != VALUES_PER_LINE:
            raise RawFormatError(
                f"{path}:{number}: expected {VALUES_PER_LINE} whitespace-separated numbers "
                f"({BODIES} bodies x {JOINTS} joints x x,y,z), found {len(tokens)} values"
            )
        for index, token in enumerate(tokens, start=1):
            if not _NUMBER.match(token) or not np.isfinite(float(token)):
                raise RawFormatError(
                    f"{path}:{number}: value {index} is not a finite number: {token!r}"
                )
    raise RawFormatError(f"{path}: could not parse the frames as numbers")


def skeleton_to_features(values: np.ndarray, bodies: int = BODIES) -> np.ndarray:
    """(T, 150) skeleton rows -> (3, T, 25, bodies) float32, per body centred on its spine
    base and in millimetres (an all-zero body stays zero)."""
    joints = values.reshape(len(values), BODIES, JOINTS, CHANNELS)[:, :bodies]
    centred = (joints - joints[:, :, ROOT_JOINT : ROOT_JOINT + 1, :]) * METRES_TO_MM
    return np.ascontiguousarray(centred.transpose(3, 0, 2, 1), dtype=np.float32)


def frame_labels(
    instances: list[Instance], num_frames: int, names: dict[int, str] | None, label_file: Path
) -> list[str]:
    """One label name per frame: ``background`` outside every instance, the later instance
    where two overlap. ``names`` is the actions table (None: ``class_<id>``). Instances
    outside ``1..num_frames`` or of classes the table does not name raise."""
    ids = np.full(num_frames, BACKGROUND_ID, dtype=np.int64)
    for instance in instances:
        if instance.start < FRAME_BASE or instance.end > num_frames - 1 + FRAME_BASE:
            raise RawFormatError(
                f"{label_file}:{instance.line}: instance frames {instance.start}..{instance.end} "
                f"lie outside the recording (frames {FRAME_BASE}..{num_frames - 1 + FRAME_BASE})"
            )
        if names is not None and instance.class_id not in names:
            raise RawFormatError(_unknown_class(label_file, instance))
        ids[instance.start - FRAME_BASE : instance.end - FRAME_BASE + 1] = instance.class_id
    lookup = {BACKGROUND_ID: BACKGROUND}
    for class_id in np.unique(ids).tolist():
        if class_id != BACKGROUND_ID:
            lookup[class_id] = names[class_id] if names is not None else f"class_{class_id}"
    return [lookup[i] for i in ids.tolist()]


def _unknown_class(label_file: Path, instance: Instance) -> str:
    return f"{label_file}:{instance.line}: class id {instance.class_id} is not in the actions table"


def label_path_for(skeleton: Path, labels_dir: Path) -> Path:
    """``skeletons/0002-L.txt`` -> ``<labels_dir>/0002-L.txt``."""
    return labels_dir / f"{skeleton.stem}.txt"


def read_recording(
    skeleton: Path, label_file: Path, names: dict[int, str] | None = None, bodies: int = BODIES
) -> RawSequence:
    """One recording as (3, T, 25, bodies) float32 features and T label names.

    ``names`` maps class ids to label names (an actions table); None names them ``class_<id>``.
    """
    instances = read_label_file(label_file)
    values = read_skeleton_file(skeleton)
    labels = frame_labels(instances, len(values), names, label_file)
    return RawSequence(
        name=skeleton.stem, features=skeleton_to_features(values, bodies), labels=labels
    )


# ----------------------------------------------------------------------------- the source


def _labels_dir(options: PkummdOptions) -> Path:
    assert options.labels is not None
    folder = Path(options.labels).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: labels folder does not exist")
    return folder


def discover(inputs: list[Path], options: PkummdOptions) -> Discovery:
    """The skeleton files (``*.txt``) of the inputs, each checked to have a valid label file.

    The label files are read here (they are small), so a bad label line or an unknown class
    fails before any skeleton is parsed, and the mapping can list exactly the classes found
    when no actions table is given.
    """
    labels_dir = _labels_dir(options)
    table = read_actions_table(Path(options.actions).expanduser()) if options.actions else None
    skeletons, others = split_inputs(inputs, SKELETON_PATTERN, recursive=False)
    discovery = Discovery()
    discovery.skipped.extend(Skipped(p.name, "not a .txt skeleton file") for p in others)

    if options.split != "all":
        assert options.split_file is not None
        split_file = Path(options.split_file).expanduser()
        listed = read_split_file(split_file)
        wanted = set(listed)
        found = {p.stem for p in skeletons}
        missing = [name for name in listed if name not in found]
        if missing:
            shown = ", ".join(missing[:3]) + (
                f", ... {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            raise ConfigError(
                f"{split_file}: {len(missing)} listed video(s) have no skeleton file among the "
                f"inputs ({shown})"
            )
        discovery.skipped.extend(
            Skipped(p.name, f"not in the {options.split} split")
            for p in skeletons
            if p.stem not in wanted
        )
        skeletons = [p for p in skeletons if p.stem in wanted]

    class_ids: set[int] = set()
    for skeleton in skeletons:
        label_file = label_path_for(skeleton, labels_dir)
        if not label_file.is_file():
            raise RawFormatError(
                f"{skeleton}: recording has no label file {label_file.name} in {labels_dir}"
            )
        for instance in read_label_file(label_file):
            if table is not None and instance.class_id not in table:
                raise RawFormatError(_unknown_class(label_file, instance))
            class_ids.add(instance.class_id)
        discovery.files.append(skeleton)
    names = table if table is not None else {i: f"class_{i}" for i in sorted(class_ids)}
    discovery.mapping = {BACKGROUND_ID: BACKGROUND, **names}
    return discovery


def read(path: Path, options: PkummdOptions) -> Iterator[RawSequence | Skipped]:
    labels_dir = _labels_dir(options)
    label_file = label_path_for(path, labels_dir)
    if not label_file.is_file():
        raise RawFormatError(
            f"{path}: recording has no label file {label_file.name} in {labels_dir}"
        )
    table = read_actions_table(Path(options.actions).expanduser()) if options.actions else None
    yield read_recording(path, label_file, table, options.bodies)


def default_mapping(options: PkummdOptions) -> dict[int, str]:
    """The mapping when discovery gives none: background and the actions table, if any."""
    names = read_actions_table(Path(options.actions).expanduser()) if options.actions else {}
    return {BACKGROUND_ID: BACKGROUND, **names}


SOURCE = Source(
    kind="pkummd",
    description="PKU-MMD skeleton recordings with per-video action intervals (25 joints, 2 bodies)",
    options_type=PkummdOptions,
    default_name=lambda options: "pkummd",
    mapping=default_mapping,
    discover=discover,
    read=read,
)
