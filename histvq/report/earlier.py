"""Rows of a paper table kept from runs that are gone: ``--paper TABLE --merge FILE``.

The runs of one of the paper's ablation tables are often made at different times or on
different machines, and what survives of the earlier ones is the CSV that ``--paper TABLE
--csv`` wrote then (the run folders, with their checkpoints, rarely do). Merging such a file
completes a table from new runs without re-running the old rows: every cell the new runs do
not fill is taken from the file as it was written there (mean, std and n; the per-seed values
are not in the file, so the plot draws those rows' mean ± std without their seeds).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from histvq.errors import ConfigError
from histvq.metrics.names import METRIC_NAMES
from histvq.report.paper import DATASET_NAMES, PaperSummary, PaperTable, table_layout
from histvq.report.summary import Cell

Cells = dict[str, dict[str, dict[str, Cell]]]

_DATASET_KEYS = {name: key for key, name in DATASET_NAMES.items()}
_METRIC_KEYS = {name: key for key, name in METRIC_NAMES.items()}


def _column_role(column: str) -> tuple[str, str, str] | None:
    """``HuGaDB MoF_std`` -> (dataset key, metric key, ``std``); the kinds are ``mean``,
    ``std``, ``n`` (metric key empty) and ``paper``; None for a column no cell reads
    (``Avg.``)."""
    if column == "Avg.":
        return None
    if column.endswith(" n"):
        name = column[: -len(" n")]
        return _DATASET_KEYS.get(name, name), "", "n"
    text, kind = column, "mean"
    for suffix, suffix_kind in ((" paper", "paper"), ("_std", "std")):
        if text.endswith(suffix):
            text, kind = text[: -len(suffix)], suffix_kind
            break
    for metric_name, metric in _METRIC_KEYS.items():
        if text.endswith(" " + metric_name):
            name = text[: -len(metric_name) - 1]
            return _DATASET_KEYS.get(name, name), metric, kind
    raise ValueError(column)


def _number(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None


def read_paper_csv(path: str | os.PathLike[str], table: PaperTable) -> Cells:
    """The cells of a CSV written by ``--paper TABLE --csv`` for ``table``:
    ``cells[row][dataset][metric]`` (dataset and metric keys as in the runs), every cell
    with a mean; a clear :class:`ConfigError` naming the file for anything else."""
    path = Path(path)
    source = f"--merge {path}"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except OSError as error:
        raise ConfigError(f"{source}: cannot read it ({error.strerror or error})") from None
    if not lines or not lines[0]:
        raise ConfigError(f"{source}: the file is empty")
    header, *body = lines
    if header[0] != table.header:
        raise ConfigError(
            f"{source}: its first column is {header[0]!r}, not {table.header!r}: not a CSV of "
            f"Table {table.number} (written by --paper table{table.number} --csv)"
        )
    roles = []
    for column in header[1:]:
        try:
            roles.append(_column_role(column))
        except ValueError:
            raise ConfigError(
                f"{source}: column {column!r} is no '<dataset> <metric>[_std| paper]' or "
                f"'<dataset> n' column of a --paper CSV"
            ) from None
    cells: Cells = {}
    for number, line in enumerate(body, start=2):
        if not line:
            continue
        if len(line) != len(header):
            raise ConfigError(f"{source}, line {number}: {len(line)} fields, the header has "
                              f"{len(header)}")  # fmt: skip
        row = line[0]
        means: dict[tuple[str, str], float] = {}
        stds: dict[tuple[str, str], float | None] = {}
        counts: dict[str, float | None] = {}
        for role, text, column in zip(roles, line[1:], header[1:], strict=True):
            if role is None or role[2] == "paper":
                continue
            dataset, metric, kind = role
            value = _number(text, f"{source}, row {row!r}, column {column!r}")
            if kind == "n":
                counts[dataset] = value
            elif kind == "std":
                stds[(dataset, metric)] = value
            elif value is not None:
                means[(dataset, metric)] = value
        for (dataset, metric), mean in means.items():
            n = counts.get(dataset)
            if n is None or n < 1 or not float(n).is_integer():
                raise ConfigError(f"{source}, row {row!r}: {DATASET_NAMES.get(dataset, dataset)} "
                                  f"has scores but no run count n")  # fmt: skip
            std = stds.get((dataset, metric))
            cells.setdefault(row, {}).setdefault(dataset, {})[metric] = Cell(mean, std, int(n))
    return cells


def merge_earlier(summary: PaperSummary, path: str | os.PathLike[str]) -> None:
    """Fill the cells of ``summary`` that its runs leave empty from the ``--paper`` CSV at
    ``path`` (same table); the notes say which rows came from the file and which of its rows
    the runs replaced."""
    earlier = read_paper_csv(path, summary.table)
    kept, replaced = [], []
    for row, datasets in earlier.items():
        for dataset, metrics in datasets.items():
            label = f"{row} on {DATASET_NAMES.get(dataset, dataset)}"
            if dataset in summary.cells.get(row, {}):
                replaced.append(label)
                continue
            summary.cells.setdefault(row, {})[dataset] = metrics
            kept.append(label)
    summary.rows, summary.datasets = table_layout(summary.table, summary.cells)
    if kept:
        summary.notes.append(f"from {path} (mean, std and n as written there): {', '.join(kept)}")
    if replaced:
        summary.notes.append(f"rows of {path} the runs replace: {', '.join(replaced)}")
