"""Preparation of a raw dataset into the SMQ-compatible layout (the library side of
``python -m histvq.prepare``).

Writing goes through :class:`~histvq.data.layout.LayoutWriter`: a failed run (bad raw
file, interrupt) leaves an existing prepared dataset untouched, and preparing the same
inputs twice gives byte-identical files. Bad raw input raises
:class:`~histvq.errors.RawFormatError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from histvq.data.layout import LayoutWriter
from histvq.data.sources import RawSequence, Skipped, get_source
from histvq.errors import ConfigError, RawFormatError

_MAX_LISTED = 3


@dataclass
class PrepareSummary:
    """What a preparation wrote: ``labels`` counts the label names that occur in the data."""

    name: str
    path: Path
    sequences: int
    frames: int
    labels: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    mapping_size: int = 0

    def line(self) -> str:
        """One line for humans: counts, destination and the skipped items grouped by reason."""
        text = (
            f"prepared {self.name}: {_count(self.sequences, 'sequence')}, "
            f"{_count(self.frames, 'frame')}, {_count(self.labels, 'label')} "
            f"(of {self.mapping_size} in mapping) -> {self.path}"
        )
        if self.skipped:
            text += f"; skipped {len(self.skipped):,}: " + describe_skipped(self.skipped)
        return text


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def describe_skipped(skipped: Sequence[tuple[str, str]]) -> str:
    """``"2 not a recording (a.txt, b.m); 1 duplicate (c)"``: grouped by reason, in order."""
    groups: dict[str, list[str]] = {}
    for item, reason in skipped:
        groups.setdefault(reason, []).append(item)
    parts = []
    for reason, items in groups.items():
        listed = ", ".join(items[:_MAX_LISTED])
        if len(items) > _MAX_LISTED:
            listed += f", ... {len(items) - _MAX_LISTED} more"
        parts.append(f"{len(items):,} {reason} ({listed})")
    return "; ".join(parts)


def prepare_dataset(
    kind: str,
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_root: str | os.PathLike[str],
    name: str | None = None,
    *,
    progress: bool | None = None,
    **options: Any,
) -> PrepareSummary:
    """Prepare raw ``inputs`` of dataset ``kind`` as ``output_root/<name>``.

    ``kind``: ``hugadb``, ``lara``, ``babel``, ``pkummd`` or ``ntu``. ``inputs``: folders
    and/or files (BABEL: the pickles; PKU-MMD: the skeleton files; NTU: the ``.skeleton``
    clips). ``name`` defaults to the kind's name (``babel<subset>`` for BABEL).
    ``options`` are the kind's options: hugadb ``exclude_corrupted``, ``pattern``; lara
    ``sample_rate``, ``root_joint``; babel ``subset`` (required), ``none_threshold``; pkummd
    ``labels`` (required), ``split``, ``split_file``, ``bodies``, ``actions``; ntu ``concat``
    (required), ``seed``, ``bodies``, ``sequences``. ``progress``: show a progress bar (None:
    only on a terminal).

    Raises :class:`~histvq.errors.RawFormatError` for bad raw files and
    :class:`~histvq.errors.ConfigError` for bad options or missing inputs; in both cases an
    existing ``output_root/<name>`` is left exactly as it was.
    """
    source = get_source(kind)
    opts = source.make_options(**options)
    paths = _as_paths(inputs)
    if not paths:
        raise ConfigError(f"prepare {kind}: no inputs given")
    name = name or source.default_name(opts)

    discovery = source.discover(paths, opts)
    skipped: list[Skipped] = list(discovery.skipped)
    if not discovery.files:
        where = ", ".join(str(p) for p in paths)
        detail = f" (skipped {len(skipped)}: {describe_skipped(skipped)})" if skipped else ""
        raise ConfigError(f"prepare {kind}: no input files to read in {where}{detail}")
    mapping = discovery.mapping if discovery.mapping is not None else source.mapping(opts)

    seen: dict[str, tuple[str, str]] = {}
    present: set[str] = set()
    bar = tqdm(
        discovery.files,
        desc=f"prepare {name}",
        unit="file",
        file=sys.stderr,
        disable=None if progress is None else not progress,
        leave=False,
        dynamic_ncols=True,
    )
    with LayoutWriter(output_root, name, mapping) as writer:
        for origin in bar:  # a file, or a group of files making one sequence
            for item in source.read(origin, opts):
                if isinstance(item, Skipped):
                    skipped.append(item)
                    continue
                digest = _digest(item)
                if item.name in seen:
                    first_digest, first_origin = seen[item.name]
                    if digest != first_digest:
                        raise RawFormatError(
                            f"{origin}: sequence {item.name!r} also comes from {first_origin} "
                            f"with different content; rename or remove one of them"
                        )
                    skipped.append(
                        Skipped(item.name, f"duplicate of an identical sequence in {first_origin}")
                    )
                    continue
                seen[item.name] = (digest, str(origin))
                if item.labels is None:
                    raise RawFormatError(f"{origin}: sequence {item.name!r} has no labels")
                writer.add(item.name, item.features, item.labels)
                present.update(item.labels)
        bar.close()
        if not writer.names:
            raise RawFormatError(
                f"prepare {kind}: no sequences left to write; skipped {len(skipped)}: "
                f"{describe_skipped(skipped)}; nothing was changed"
            )
    return PrepareSummary(
        name=name,
        path=writer.destination,
        sequences=len(writer.names),
        frames=writer.num_frames,
        labels=len(present),
        skipped=[(s.item, s.reason) for s in skipped],
        mapping_size=len(mapping),
    )


def _as_paths(inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(inputs, str | os.PathLike):
        return [Path(inputs).expanduser()]
    return [Path(p).expanduser() for p in inputs]


def _digest(sequence: RawSequence) -> str:
    """Content hash used to tell identical duplicates from conflicting ones."""
    h = hashlib.sha256()
    h.update(repr((sequence.features.shape, str(sequence.features.dtype))).encode())
    h.update(sequence.features.tobytes())
    h.update("\n".join(sequence.labels or []).encode())
    return h.hexdigest()
