"""The on-disk dataset layout shared with SMQ, and its validation.

A prepared dataset is a folder::

    <root>/<name>/features/<seq>.npy      (C, T, V, M) array: channels, frames, joints, persons
    <root>/<name>/groundTruth/<seq>.txt   one label name per line, exactly T lines
    <root>/<name>/mapping/mapping.txt     "<int id> <label name>" per line

Keeping this layout means folders prepared for the SMQ reference code work here unchanged.
Reading validates every file and raises :class:`~histvq.errors.LayoutError` with the file
and the problem; writing goes through :class:`LayoutWriter`, which builds the folder next to
its destination and swaps it in only when complete, so a failed preparation never damages a
dataset that was already there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from histvq.errors import LayoutError

FEATURES_DIR = "features"
LABELS_DIR = "groundTruth"
MAPPING_DIR = "mapping"
MAPPING_FILE = "mapping.txt"

_MAPPING_LINE = re.compile(r"^\s*(-?\d+)\s+(\S.*?)\s*$")
_SAFE_NAME = re.compile(r"^[^/\\\x00]+$")


@dataclass(frozen=True)
class SequenceRecord:
    """One prepared sequence: its name, (C, T, V, M) float32 features and per-frame label ids."""

    name: str
    features: np.ndarray
    labels: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[1])


@dataclass
class LayoutDataset:
    """A validated prepared dataset, sequences sorted by name (never by listing order)."""

    root: Path
    mapping: dict[int, str]
    sequences: list[SequenceRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, V, M): channels, joints and persons shared by every sequence."""
        c, _, v, m = self.sequences[0].features.shape
        return int(c), int(v), int(m)

    @property
    def num_frames(self) -> int:
        return sum(seq.num_frames for seq in self.sequences)

    def present_label_ids(self) -> list[int]:
        """Sorted ids of the labels that occur in at least one frame."""
        present = np.unique(np.concatenate([seq.labels for seq in self.sequences]))
        return [int(x) for x in present]


def dataset_dir(root: str | os.PathLike[str], name: str) -> Path:
    return Path(root).expanduser() / name


def read_mapping(path: Path) -> dict[int, str]:
    """Parse ``mapping.txt`` into ``{id: label name}``, rejecting malformed or duplicate lines."""
    if not path.is_file():
        raise LayoutError(f"{path}: mapping file is missing")
    mapping: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _MAPPING_LINE.match(line)
        if match is None:
            raise LayoutError(f"{path}:{number}: expected '<int id> <label name>', got {line!r}")
        label_id, label = int(match.group(1)), match.group(2)
        if label_id in mapping:
            raise LayoutError(f"{path}:{number}: id {label_id} appears twice")
        if label in mapping.values():
            raise LayoutError(f"{path}:{number}: label {label!r} appears twice")
        mapping[label_id] = label
    if not mapping:
        raise LayoutError(f"{path}: mapping file has no entries")
    return dict(sorted(mapping.items()))


def read_labels(path: Path) -> list[str]:
    """Label names of ``groundTruth/<seq>.txt``, one per frame (a final newline is optional)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    labels = [line.strip() for line in lines]
    for number, label in enumerate(labels, start=1):
        if not label:
            raise LayoutError(f"{path}:{number}: empty label line")
    return labels


def load_features(path: Path) -> np.ndarray:
    """Load one ``features/<seq>.npy`` as float32 (C, T, V, M), checking shape and values."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise LayoutError(f"{path}: not a readable .npy array ({error})") from None
    if array.ndim != 4:
        raise LayoutError(
            f"{path}: expected a 4-d array (C, T, V, M), got shape {tuple(array.shape)}"
        )
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise LayoutError(f"{path}: expected a real numeric array, got dtype {array.dtype}")
    if array.shape[1] == 0:
        raise LayoutError(f"{path}: sequence has no frames")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise LayoutError(
            f"{path}: contains NaN or inf (first at channel {bad[0]}, frame {bad[1]}, "
            f"joint {bad[2]}, person {bad[3]})"
        )
    return array


def read_layout(root: str | os.PathLike[str]) -> LayoutDataset:
    """Read and validate the prepared dataset folder ``root``.

    Every problem is reported as a :class:`LayoutError` naming the offending file: missing
    folders, an empty feature folder, unreadable or non-4-d arrays, NaN/inf values, shapes that
    disagree between sequences, label files whose line count differs from the frame count,
    and labels that are not in the mapping.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(f"{root}: prepared dataset folder does not exist")
    features_dir, labels_dir = root / FEATURES_DIR, root / LABELS_DIR
    for folder in (features_dir, labels_dir):
        if not folder.is_dir():
            raise LayoutError(
                f"{folder}: folder is missing (expected features/, groundTruth/, mapping/)"
            )
    mapping = read_mapping(root / MAPPING_DIR / MAPPING_FILE)
    label_to_id = {label: label_id for label_id, label in mapping.items()}

    feature_files = sorted(features_dir.glob("*.npy"))
    if not feature_files:
        raise LayoutError(f"{features_dir}: no .npy feature files")

    sequences: list[SequenceRecord] = []
    reference: tuple[Path, tuple[int, ...]] | None = None
    for feature_file in feature_files:
        name = feature_file.stem
        features = load_features(feature_file)
        c, t, v, m = features.shape
        if reference is None:
            reference = (feature_file, (c, v, m))
        elif (c, v, m) != reference[1]:
            raise LayoutError(
                f"{feature_file}: (C, V, M) = {(c, v, m)} differs from {reference[0].name}'s "
                f"{reference[1]}"
            )
        label_file = labels_dir / f"{name}.txt"
        if not label_file.is_file():
            raise LayoutError(f"{label_file}: label file for {feature_file.name} is missing")
        names = read_labels(label_file)
        if len(names) != t:
            raise LayoutError(
                f"{label_file}: {len(names)} labels but {feature_file.name} has {t} frames"
            )
        unknown = sorted(set(names) - label_to_id.keys())
        if unknown:
            line = names.index(unknown[0]) + 1
            raise LayoutError(
                f"{label_file}:{line}: label {unknown[0]!r} is not in mapping/{MAPPING_FILE}"
                + (f" (nor are {unknown[1:]})" if len(unknown) > 1 else "")
            )
        ids = np.fromiter((label_to_id[n] for n in names), dtype=np.int64, count=t)
        sequences.append(SequenceRecord(name=name, features=features, labels=ids))
    return LayoutDataset(root=root, mapping=mapping, sequences=sequences)


class LayoutWriter:
    """Write a prepared dataset atomically: all or nothing.

    Use as a context manager. Sequences are written into a hidden temporary folder beside the
    destination; on a clean exit the finished folder replaces ``<root>/<name>`` (an existing
    one is swapped out and removed only after the new one is in place); on an exception the
    temporary folder is deleted and the destination is left exactly as it was.
    """

    def __init__(self, root: str | os.PathLike[str], name: str, mapping: dict[int, str]):
        if not _SAFE_NAME.match(name):
            raise LayoutError(f"invalid dataset name {name!r}")
        self.root = Path(root).expanduser()
        self.name = name
        self.mapping = dict(sorted(mapping.items()))
        self._label_set = set(self.mapping.values())
        self._tmp: Path | None = None
        self.names: list[str] = []
        self.num_frames = 0

    @property
    def destination(self) -> Path:
        return self.root / self.name

    def __enter__(self) -> LayoutWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.tmp-", dir=self.root))
        for sub in (FEATURES_DIR, LABELS_DIR, MAPPING_DIR):
            (self._tmp / sub).mkdir()
        text = "\n".join(f"{k} {v}" for k, v in self.mapping.items())
        (self._tmp / MAPPING_DIR / MAPPING_FILE).write_text(text, encoding="utf-8")
        return self

    def add(self, name: str, features: np.ndarray, labels: Sequence[str]) -> None:
        """Add one sequence: ``features`` (C, T, V, M) and one label name per frame."""
        if self._tmp is None:
            raise RuntimeError("LayoutWriter.add() called outside its `with` block")
        if not _SAFE_NAME.match(name) or name in {".", ".."}:
            raise LayoutError(f"invalid sequence name {name!r}")
        if name in self.names:
            raise LayoutError(f"sequence {name!r} was added twice")
        features = np.asarray(features)
        if features.ndim != 4:
            raise LayoutError(f"{name}: features must be (C, T, V, M), got {features.shape}")
        if len(labels) != features.shape[1]:
            raise LayoutError(f"{name}: {len(labels)} labels for {features.shape[1]} frames")
        unknown = sorted(set(labels) - self._label_set)
        if unknown:
            raise LayoutError(f"{name}: labels {unknown} are not in the mapping")
        features = np.ascontiguousarray(features, dtype=np.float32)
        if not np.isfinite(features).all():
            raise LayoutError(f"{name}: features contain NaN or inf")
        np.save(self._tmp / FEATURES_DIR / f"{name}.npy", features)
        (self._tmp / LABELS_DIR / f"{name}.txt").write_text("\n".join(labels), encoding="utf-8")
        self.names.append(name)
        self.num_frames += int(features.shape[1])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tmp, self._tmp = self._tmp, None
        assert tmp is not None
        if exc_type is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        if not self.names:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LayoutError(f"{self.destination}: no sequences to write; nothing was changed")
        self._swap_in(tmp)

    def _swap_in(self, tmp: Path) -> None:
        dest = self.destination
        old: Path | None = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.name}.old-", dir=self.root))
            old.rmdir()
            dest.rename(old)
        try:
            tmp.rename(dest)
        except OSError:
            if old is not None:
                old.rename(dest)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_layout(
    root: str | os.PathLike[str],
    name: str,
    mapping: dict[int, str],
    sequences: Iterable[tuple[str, np.ndarray, Sequence[str]]],
) -> Path:
    """Write ``(name, features, label names)`` triples as ``<root>/<name>``, atomically."""
    with LayoutWriter(root, name, mapping) as writer:
        for seq_name, features, labels in sequences:
            writer.add(seq_name, features, labels)
    return writer.destination
