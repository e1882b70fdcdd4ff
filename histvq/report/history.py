"""What runs logged while they trained: one group of metrics from each run's ``csv/metrics.csv``.

``python -m histvq.report DIR --history codebook`` lists, per run and logged step, the codebook
health (codes used, dead codes and perplexity per level); ``--history eval/global`` the
evaluations made during training (``callbacks.segmentation_evaluation.every_n_epochs``). This
is how one sees whether a level collapses, or how much a single evaluation wanders, without
opening every log. Runs still training are included: only the CSV log is read.

Lightning's CSV logger writes the values of one step over several lines (the step's own
metrics, then the epoch-end ones); lines of the same (epoch, step) are merged, and a row is
kept when it holds a value of the group. ``epoch`` is Lightning's epoch index (from 0) and
``step`` its global step, as in the log. ``--plot FILE`` draws the same rows as curves
against the step, one panel per metric and one line per run (:func:`plot_history`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from histvq.errors import HistvqError
from histvq.metrics.names import METRIC_KEYS, METRIC_NAMES
from histvq.report.render import csv_text, markdown_table
from histvq.report.runs import MISSING, Run, sort_key
from histvq.report.summary import differing_keys

LOG_FILE = Path("csv") / "metrics.csv"
POSITION_COLUMNS = ("epoch", "step")


@dataclass
class History:
    """The logged rows of one metric group: override columns, metric columns, rows, notes."""

    group: str
    columns: list[str]
    metrics: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        return [*self.columns, *POSITION_COLUMNS, *self.metrics]

    def to_markdown(self) -> str:
        right = [False] * len(self.columns) + [True] * (len(POSITION_COLUMNS) + len(self.metrics))
        return markdown_table(self.header, [row[:-1] for row in self.rows], right)

    def to_csv(self) -> str:
        return csv_text([*self.header, "run"], self.rows)

    def run_names(self) -> dict[str, str]:
        """``{run path: legend name}``: the run's values of the override columns
        (``model=smq seed=1``), or its path when no override differs."""
        names = {}
        for row in self.rows:
            values = row[: len(self.columns)]
            label = " ".join(f"{c}={v}" for c, v in zip(self.columns, values, strict=True))
            names.setdefault(row[-1], label or row[-1])
        return names


def value_text(text: str) -> str:
    """A logged number as table text: whole numbers without decimals, others to 4 places."""
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    if number.is_integer():
        return str(int(number))
    return f"{number:.4f}".rstrip("0")


def read_log(path: Path) -> list[dict[str, str]]:
    """The lines of one run's CSV log merged per (epoch, step), in logged order; each a
    ``{column: text}`` of the non-empty cells. Raises :class:`HistvqError` naming the file
    when it cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise HistvqError(f"{path}: unreadable ({error})") from error
    merged: dict[tuple[str, str], dict[str, str]] = {}
    for line in lines:
        if None in line:
            raise HistvqError(f"{path}: a line has more cells than the header")
        key = (line.get("epoch") or "", line.get("step") or "")
        cells = merged.setdefault(key, {})
        cells.update({k: v for k, v in line.items() if v not in (None, "")})
    return list(merged.values())


def group_metrics(log: Sequence[dict[str, str]], group: str) -> list[str]:
    """The metric columns of ``group`` in ``log``, in sorted order."""
    prefix = group.rstrip("/") + "/"
    return sorted({key for line in log for key in line if key.startswith(prefix)})


def metric_order(metric: str) -> tuple[int, str]:
    """Segmentation scores in the reports' order (MoF, Edit, F1@10/25/50, JSD), then the
    other metrics by name."""
    last = metric.rpartition("/")[2]
    if last in METRIC_KEYS:
        return METRIC_KEYS.index(last), metric
    return len(METRIC_KEYS), metric


def column_name(metric: str, group: str) -> str:
    """``codebook/level1/used_codes`` under ``codebook`` -> ``level1_used_codes``;
    ``eval/global/mof`` under ``eval/global`` -> ``MoF``."""
    rest = metric[len(group) + 1 :]
    return METRIC_NAMES.get(rest, rest.replace("/", "_"))


def metric_groups(log: Sequence[dict[str, str]]) -> list[str]:
    """Every group a log holds (a metric's name up to its last ``/``)."""
    return sorted({key.rpartition("/")[0] for line in log for key in line if "/" in key})


def history(runs: Sequence[Run], group: str) -> History:
    """The rows of ``group`` logged by ``runs``, run by run (in the order of their override
    values) and step by step. Runs without a CSV log, or without the group, are left out
    with a note; raises :class:`HistvqError` when no run logged the group."""
    group = group.strip().rstrip("/")
    if not group:
        raise HistvqError("--history: name a metric group, e.g. codebook or eval/global")
    logs: list[tuple[Run, list[dict[str, str]]]] = []
    notes: list[str] = []
    groups_seen: set[str] = set()
    for run in runs:
        path = run.path / LOG_FILE
        if not path.is_file():
            notes.append(f"{run.path}: no {LOG_FILE}, left out")
            continue
        log = read_log(path)
        groups_seen.update(metric_groups(log))
        if group_metrics(log, group):
            logs.append((run, log))
        else:
            notes.append(f"{run.path}: logged nothing under {group}/, left out")
    if not logs:
        found = ", ".join(sorted(groups_seen)) if groups_seen else "none"
        raise HistvqError(
            f"--history {group}: no run under the folder logged it (groups logged: {found})"
        )
    columns = differing_keys([run for run, _ in logs])
    metrics = sorted({m for _, log in logs for m in group_metrics(log, group)}, key=metric_order)
    logs.sort(
        key=lambda item: (
            tuple(sort_key(item[0].value(c) or MISSING) for c in columns),
            str(item[0].path),
        )
    )
    rows = []
    for run, log in logs:
        values = [run.value(c) or MISSING for c in columns]
        for line in log:
            if not any(m in line for m in metrics):
                continue
            position = [value_text(line.get(c, "")) for c in POSITION_COLUMNS]
            cells = [value_text(line.get(m, "")) for m in metrics]
            rows.append([*values, *position, *cells, str(run.path)])
    names = [column_name(m, group) for m in metrics]
    return History(group, columns, names, rows, notes)


def plot_history(logged: History, path: Path) -> Path:
    """``logged`` as curves against the training step: one panel per metric, one line per
    run (empty cells skipped), written as PNG to ``path``."""
    from histvq.evaluation.plotting import plot_metric_curves

    names = logged.run_names()
    step_index = len(logged.columns) + POSITION_COLUMNS.index("step")
    first_metric = len(logged.columns) + len(POSITION_COLUMNS)
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for row in logged.rows:
        for offset, metric in enumerate(logged.metrics):
            cell = row[first_metric + offset]
            if cell == "" or row[step_index] == "":
                continue
            xs, ys = panels.setdefault(metric, {}).setdefault(names[row[-1]], ([], []))
            xs.append(float(row[step_index]))
            ys.append(float(cell))
    title = f"{logged.group} during training"
    return plot_metric_curves(panels, path, x_label="training step", title=title)
