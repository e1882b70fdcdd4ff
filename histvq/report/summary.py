"""Runs aggregated over seeds: one :class:`Row` per configuration, mean ± std per metric.

The columns of a summary are the overrides whose values differ between the runs
(``hydra.*`` and ``paths.*`` left out, ``seed`` too when aggregating), so a sweep's table
shows exactly what the sweep varied. Runs without usable metrics are left out with a note,
not an error, because a sweep with one crashed job still deserves a table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from histvq.errors import ConfigError, HistvqError
from histvq.metrics.names import MATCHINGS, METRIC_KEYS, METRIC_NAMES
from histvq.report.render import csv_text, markdown_table, number_text
from histvq.report.runs import MISSING, Run, sort_key

IGNORED_PREFIXES = ("hydra.", "paths.")
IGNORED_KEYS = frozenset({"hydra", "paths"})
SEED_KEY = "seed"


@dataclass(frozen=True)
class Cell:
    """Mean, sample standard deviation (None for a single run) and number of runs, with the
    runs' own values (for plots that show every seed)."""

    mean: float
    std: float | None
    n: int
    values: tuple[float, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, values: Sequence[float]) -> Cell:
        n = len(values)
        mean = math.fsum(values) / n
        if n < 2:
            return cls(mean, None, n, tuple(values))
        variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        return cls(mean, math.sqrt(variance), n, tuple(values))

    def text(self, digits: int = 1) -> str:
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class Row:
    """One configuration: its values of the differing keys, the runs and their metrics."""

    values: dict[str, str]
    runs: list[Run]
    cells: dict[str, Cell]

    @property
    def n(self) -> int:
        return len(self.runs)


@dataclass
class Summary:
    """The rows of a report (sorted), the override columns and notes about left-out runs."""

    columns: list[str]
    rows: list[Row]
    matching: str
    notes: list[str] = field(default_factory=list)

    @property
    def aggregated(self) -> bool:
        return any(r.n > 1 for r in self.rows)

    def to_markdown(self) -> str:
        header = [*self.columns, *(METRIC_NAMES[k] for k in METRIC_KEYS)]
        right = [False] * len(self.columns) + [True] * len(METRIC_KEYS)
        if self.aggregated:
            header.append("n")
            right.append(True)
        body = []
        for row in self.rows:
            cells = [row.values[c] for c in self.columns]
            cells += [row.cells[k].text() for k in METRIC_KEYS]
            if self.aggregated:
                cells.append(str(row.n))
            body.append(cells)
        return markdown_table(header, body, right)

    def to_csv(self) -> str:
        header = [*self.columns]
        for key in METRIC_KEYS:
            header += [METRIC_NAMES[key], f"{METRIC_NAMES[key]}_std"]
        header += ["n", "runs"]
        body = []
        for row in self.rows:
            cells = [row.values[c] for c in self.columns]
            for key in METRIC_KEYS:
                cells += [number_text(row.cells[key].mean), number_text(row.cells[key].std)]
            cells += [str(row.n), ";".join(str(r.path) for r in row.runs)]
            body.append(cells)
        return csv_text(header, body)

    def records(self) -> list[dict[str, Any]]:
        """Flat dicts (override values, metric means/stds, n), e.g. for ``wandb.Table``."""
        out = []
        for row in self.rows:
            record: dict[str, Any] = dict(row.values)
            for key in METRIC_KEYS:
                record[METRIC_NAMES[key]] = row.cells[key].mean
                record[f"{METRIC_NAMES[key]}_std"] = row.cells[key].std
            record["n"] = row.n
            out.append(record)
        return out


def _ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def usable_runs(runs: Iterable[Run], matching: str) -> tuple[list[tuple[Run, dict]], list[str]]:
    """(run, scores) of the runs with metrics for ``matching``, and notes on the others."""
    good, bad = [], []
    for run in runs:
        try:
            good.append((run, run.scores(matching)))
        except HistvqError as error:
            bad.append(f"{run.path} ({error})")
    notes = []
    if bad:
        notes.append(f"{len(bad)} run(s) without usable metrics, left out: " + "; ".join(bad))
    return good, notes


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """Override keys (hydra.* and paths.* aside) whose value is not the same in every run,
    in order of first appearance on the command lines."""
    keys: dict[str, None] = {}
    for run in runs:
        for key in run.overrides:
            if not _ignored(key):
                keys.setdefault(key, None)
    return [k for k in keys if len({run.value(k) for run in runs}) > 1]


def summarize(runs: Sequence[Run], matching: str = "global", aggregate: bool = True) -> Summary:
    """Group runs into rows (over seeds when ``aggregate``) and compute mean/std per metric.

    Raises :class:`HistvqError` when no run has usable metrics.
    """
    if matching not in MATCHINGS:
        raise ConfigError(f"matching: unknown value {matching!r} (global | local)")
    scored, notes = usable_runs(runs, matching)
    if not scored:
        raise HistvqError(
            f"none of the {len(runs)} run(s) has usable {matching} metrics ("
            + "; ".join(f"{r.path}: {r.problem or 'no ' + matching + ' metrics'}" for r in runs[:3])
            + (" ..." if len(runs) > 3 else "")
            + ")"
        )
    good = [run for run, _ in scored]
    columns = differing_keys(good)
    if aggregate:
        columns = [c for c in columns if c != SEED_KEY]
    groups: dict[tuple[str, ...], list[tuple[Run, dict]]] = {}
    for run, scores in scored:
        key = tuple(run.value(c) or MISSING for c in columns)
        groups.setdefault(key if aggregate else (*key, str(run.path)), []).append((run, scores))
    rows = []
    for key, members in groups.items():
        cells = {m: Cell.of([scores[m] for _, scores in members]) for m in METRIC_KEYS}
        rows.append(Row(dict(zip(columns, key, strict=False)), [r for r, _ in members], cells))
    rows.sort(key=lambda r: (tuple(sort_key(r.values[c]) for c in columns), str(r.runs[0].path)))
    return Summary(columns, rows, matching, notes)


def summary_table(
    runs: Sequence[Run], matching: str = "global", as_csv: bool = False, aggregate: bool = True
) -> str:
    """The report of ``runs`` as a markdown (default) or CSV table, without notes."""
    summary = summarize(runs, matching, aggregate)
    return summary.to_csv() if as_csv else summary.to_markdown()
