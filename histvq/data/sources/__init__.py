"""Raw dataset formats: one module per format, and the registry that names them.

Each format module (``hugadb``, ``lara``, ``babel``, ``pkummd``, ``ntu``) turns its raw
files into :class:`RawSequence` objects — a name, (C, T, V, M) float32 features and one label
name per frame — plus the dataset's label mapping ``{id: name}``. It exports a module-level
``SOURCE`` (a :class:`Source`) that :mod:`histvq.prepare` drives: ``discover`` lists what to
read (and the files it leaves out, with the reason), ``read`` streams the sequences of one
listed item.

A listed item is usually one file. A source whose sequences are built from several files
(NTU clips concatenated into one long sequence) lists a :class:`FileGroup` per sequence
instead. A source whose label set depends on the files found (PKU-MMD without an actions
table) puts the mapping on its :class:`Discovery`, where it replaces ``Source.mapping``.

The registry imports a format module only when its kind is asked for, so this package's
base types can be imported by the format modules without an import cycle.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from histvq.errors import ConfigError


@dataclass(frozen=True)
class RawSequence:
    """One sequence parsed from raw files: features (C, T, V, M) float32, T label names (None
    only for an unlabelled recording read for prediction, see ``Source.predict_options``)."""

    name: str
    features: np.ndarray
    labels: list[str] | None

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[1])


class Skipped(NamedTuple):
    """A file or sequence left out of the prepared dataset, and why (a short reason)."""

    item: str
    reason: str


@dataclass(frozen=True)
class FileGroup:
    """Several raw files that together make one sequence named ``name`` (in this order)."""

    name: str
    files: tuple[Path, ...]

    def __str__(self) -> str:
        first = self.files[0].name if self.files else "no files"
        more = f" + {len(self.files) - 1} more" if len(self.files) > 1 else ""
        return f"{self.name} ({first}{more})"


@dataclass
class Discovery:
    """What a source will read, in order, and the files it deliberately leaves out.

    ``files`` holds paths, or :class:`FileGroup` objects for sources that build one sequence
    from several files. ``mapping``, when set, is the label mapping to write instead of
    ``Source.mapping(options)`` (for sources whose labels are only known from the files).
    """

    files: list[Path | FileGroup] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    mapping: dict[int, str] | None = None


@dataclass(frozen=True)
class Source:
    """How to prepare one dataset kind.

    ``options_type`` is a dataclass whose fields are the kind's options (with defaults);
    ``default_name(options)`` names the output folder; ``mapping(options)`` gives the label
    mapping written to ``mapping.txt`` (unless discovery gives one); ``discover(inputs,
    options)`` expands the user's inputs into files (or file groups); ``read(item, options)``
    yields the sequences and skips of one discovered item. ``predict_options`` are the
    options that make ``discover``/``read`` take every recording as it is, for segmenting
    new recordings: no file filter, no sequence dropped for its labels, labels optional
    where the format allows.
    """

    kind: str
    description: str
    options_type: type
    default_name: Callable[[Any], str]
    mapping: Callable[[Any], dict[int, str]]
    discover: Callable[[list[Path], Any], Discovery]
    read: Callable[[Any, Any], Iterator[RawSequence | Skipped]]
    predict_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def option_names(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.options_type)}

    def make_options(self, **options: Any) -> Any:
        """Build this kind's options object, rejecting unknown option names."""
        known = {f.name for f in dataclasses.fields(self.options_type)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {unknown} for dataset kind {self.kind!r}; "
                f"valid options: {sorted(known) or 'none'}"
            )
        return self.options_type(**options)


_MODULES = {
    "hugadb": "histvq.data.sources.hugadb",
    "lara": "histvq.data.sources.lara",
    "babel": "histvq.data.sources.babel",
    "pkummd": "histvq.data.sources.pkummd",
    "ntu": "histvq.data.sources.ntu",
}

KINDS: tuple[str, ...] = tuple(_MODULES)


def get_source(kind: str) -> Source:
    """The :class:`Source` registered for ``kind`` (one of :data:`KINDS`)."""
    try:
        module_name = _MODULES[kind]
    except KeyError:
        raise ConfigError(
            f"unknown dataset kind {kind!r}; known kinds: {', '.join(KINDS)}"
        ) from None
    source = importlib.import_module(module_name).SOURCE
    assert isinstance(source, Source)
    return source


def split_inputs(
    inputs: list[Path], pattern: str, recursive: bool
) -> tuple[list[Path], list[Path]]:
    """Expand folders into their files: ``(files matching pattern, other files)``.

    A path given as a file is taken as is (it counts as matching); a folder contributes its
    files (recursively when asked), sorted by path so the order never depends on the file
    system. Missing inputs raise :class:`~histvq.errors.ConfigError`.
    """
    matching: list[Path] = []
    others: list[Path] = []
    for path in inputs:
        if path.is_file():
            matching.append(path)
        elif path.is_dir():
            children = path.rglob("*") if recursive else path.iterdir()
            for child in sorted(children):
                if not child.is_file():
                    continue
                (matching if child.match(pattern) else others).append(child)
        else:
            raise ConfigError(f"{path}: input does not exist")
    return _unique(matching), _unique(others)


def parse_numeric_rows(rows: Sequence[str], sep: str, num_columns: int) -> np.ndarray | None:
    """Fast path for numeric text tables: (rows, num_columns) float64, or None.

    Each row must hold exactly ``num_columns`` finite numbers separated by the single
    character ``sep``, with no empty field. Anything else returns None, and the caller then
    scans row by row to report the first problem with its line and column — so the fast
    path never has to produce error messages and can never accept a malformed row.
    """
    if not rows:
        return np.zeros((0, num_columns))
    body = "\n".join(rows)
    if (
        sep * 2 in body
        or "\n" + sep in body
        or sep + "\n" in body
        or body.startswith(sep)
        or body.endswith(sep)
    ):
        return None
    if [row.count(sep) for row in rows].count(num_columns - 1) != len(rows):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            flat = np.fromstring(body.replace("\n", sep), dtype=np.float64, sep=sep)
        except (ValueError, DeprecationWarning):
            return None
    if flat.size != len(rows) * num_columns or not np.isfinite(flat).all():
        return None
    return flat.reshape(len(rows), num_columns)


def read_text_lines(path: Path) -> list[str]:
    """A UTF-8 text file's lines (a byte-order mark and trailing blank lines dropped); a
    file that is not UTF-8 is a :class:`~histvq.errors.RawFormatError` naming it."""
    from histvq.errors import RawFormatError

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise RawFormatError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


__all__ = [
    "KINDS",
    "Discovery",
    "FileGroup",
    "RawSequence",
    "Skipped",
    "Source",
    "get_source",
    "parse_numeric_rows",
    "read_text_lines",
    "split_inputs",
]
