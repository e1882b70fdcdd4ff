"""The recordings ``histvq.predict`` segments: raw files of any registered format, a
prepared layout folder, or ``.npy`` arrays.

Raw formats go through the same :mod:`histvq.data.sources` registry as preparation, with
each source's ``predict_options`` (every recording taken as it is, labels optional where
the format allows) on top of the run's own preparation options.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histvq.data.layout import FEATURES_DIR, LABELS_DIR, load_features, read_labels
from histvq.data.sources import KINDS, RawSequence, Skipped, get_source, split_inputs
from histvq.errors import ConfigError, HistvqError, LayoutError
from histvq.spec import DataSpec

INPUT_KINDS: tuple[str, ...] = (*KINDS, "layout", "npy")


class PredictInputError(HistvqError):
    """The recordings handed to ``predict`` cannot be read or do not fit the checkpoint."""


@dataclass(frozen=True)
class InputSequence:
    """One recording to segment: (C, T, V, M) float32 features, ground-truth names or None."""

    name: str
    features: np.ndarray
    labels: list[str] | None = None
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[1])


def detect_kind(path: Path, trained_kind: str | None) -> str:
    """Prepared data is recognised by its shape on disk; raw files take the training format."""
    if path.is_file() and path.suffix == ".npy":
        return "npy"
    if path.is_dir() and (path / FEATURES_DIR).is_dir():
        return "layout"
    if trained_kind in KINDS:
        return trained_kind
    if path.is_dir() and any(path.glob("*.npy")):
        return "npy"
    raise PredictInputError(
        f"input={path}: not a prepared layout folder (features/) or .npy, and the checkpoint "
        f"was not trained on a raw format; give kind= (one of {', '.join(INPUT_KINDS)})"
    )


def reader_options(
    kind: str, run_config: dict[str, Any], trained_kind: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Options of a raw source: the run's preparation options when the kind matches the
    training data, then the source's ``predict_options``, then the user's ``options.*``."""
    if kind not in KINDS:
        if overrides:
            raise ConfigError(f"options: kind {kind} takes no options, got {sorted(overrides)}")
        return {}
    source = get_source(kind)
    options: dict[str, Any] = {}
    if trained_kind == kind:
        dataset = run_config.get("dataset") or {}
        options.update(dataset.get("prepare_options") or {})
        if dataset.get("subset") is not None:
            options["subset"] = dataset["subset"]
    options = {k: v for k, v in options.items() if k in source.option_names}
    options.update(source.predict_options)
    unknown = sorted(set(overrides) - source.option_names)
    if unknown:
        raise ConfigError(
            f"options: {unknown} are not options of kind {kind} "
            f"(valid: {sorted(source.option_names)})"
        )
    options.update(overrides)
    return options


def load_inputs(
    path: Path, kind: str, options: dict[str, Any] | None = None, pattern: str | None = None
) -> tuple[list[InputSequence], list[tuple[str, str]]]:
    """Read every sequence of ``path`` as ``kind``: (sequences sorted by name, skipped items
    with the reason). ``pattern`` keeps only the files whose name matches it."""
    if not path.exists():
        raise PredictInputError(f"input={path}: does not exist")
    if kind not in INPUT_KINDS:
        raise ConfigError(f"kind: unknown value {kind!r} ({' | '.join(INPUT_KINDS)})")
    skipped: list[tuple[str, str]] = []
    if kind == "layout":
        sequences = _read_layout_folder(path)
    elif kind == "npy":
        files, _ = split_inputs([path], pattern or "*.npy", recursive=False)
        sequences = [InputSequence(f.stem, load_features(f), None, str(f)) for f in files]
    else:
        sequences, skipped = _read_raw(path, kind, dict(options or {}), pattern)
    if not sequences:
        shown = f" (pattern {pattern!r})" if pattern else ""
        raise PredictInputError(f"input={path}: no {kind} sequences found{shown}")
    names = Counter(s.name for s in sequences)
    twice = sorted(n for n, count in names.items() if count > 1)
    if twice:
        sources = [s.source for s in sequences if s.name == twice[0]]
        raise PredictInputError(
            f"input={path}: sequence name {twice[0]!r} occurs more than once ({', '.join(sources)})"
        )
    return sorted(sequences, key=lambda s: s.name), skipped


def _read_raw(
    path: Path, kind: str, options: dict[str, Any], pattern: str | None
) -> tuple[list[InputSequence], list[tuple[str, str]]]:
    source = get_source(kind)
    parsed = source.make_options(**options)
    discovery = source.discover([path], parsed)
    items = list(discovery.files)
    if pattern:
        items = [i for i in items if fnmatch.fnmatch(Path(str(_path_of(i))).name, pattern)]
    sequences, skipped = [], [(s.item, s.reason) for s in discovery.skipped]
    for item in items:
        for read in source.read(item, parsed):
            if isinstance(read, Skipped):
                skipped.append((read.item, read.reason))
            else:
                sequences.append(_input(read, _path_of(item)))
    return sequences, skipped


def _path_of(item: Any) -> Any:
    files = getattr(item, "files", None)
    return files[0] if files else item


def _input(raw: RawSequence, source: Any) -> InputSequence:
    return InputSequence(raw.name, raw.features, raw.labels, str(source))


def _read_layout_folder(root: Path) -> list[InputSequence]:
    files = sorted((root / FEATURES_DIR).glob("*.npy"))
    if not files:
        raise LayoutError(f"{root / FEATURES_DIR}: no .npy feature files")
    sequences = []
    for file in files:
        features = load_features(file)
        labels = None
        label_file = root / LABELS_DIR / f"{file.stem}.txt"
        if label_file.is_file():
            labels = read_labels(label_file)
            if len(labels) != features.shape[1]:
                raise LayoutError(
                    f"{label_file}: {len(labels)} labels but {file.name} has "
                    f"{features.shape[1]} frames"
                )
        sequences.append(InputSequence(file.stem, features, labels, str(file)))
    return sequences


def check_against_spec(sequences: Iterable[InputSequence], spec: DataSpec, ckpt: Path) -> None:
    """Every sequence must have the (C, V, M) the checkpoint was trained on."""
    expected = (spec.num_channels, spec.num_joints, spec.num_persons)
    for seq in sequences:
        c, _, v, m = seq.features.shape
        if (c, v, m) != expected:
            raise PredictInputError(
                f"{seq.source or seq.name}: (C, V, M) = {(c, v, m)} but the checkpoint {ckpt} "
                f"was trained on (C, V, M) = {expected}"
            )
