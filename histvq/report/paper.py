"""Runs laid out like the paper's tables (``--paper table5``, ``--paper alpha``).

:data:`PAPER_TABLES` is the registry: for each of the paper's Tables 1-10, which setting
makes the rows (and how a run's value is named there, e.g. ``smq`` -> ``SMQ``), the rows in
the paper's order and the datasets as column groups. :func:`paper_summary` fills such a
layout with mean ± std over seeds, so a reproduced sweep can be read next to the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from histvq.errors import ConfigError, HistvqError
from histvq.metrics.names import MATCHINGS, METRIC_KEYS, METRIC_NAMES, SCORE_KEYS
from histvq.report.published import published_scores
from histvq.report.render import csv_text, markdown_table, number_text
from histvq.report.runs import MISSING, Run, sort_key
from histvq.report.summary import SEED_KEY, Cell, differing_keys, usable_runs

DATASET_NAMES: dict[str, str] = {
    "hugadb": "HuGaDB",
    "lara": "LARa",
    "babel1": "BABEL Subset-1",
    "babel2": "BABEL Subset-2",
    "babel3": "BABEL Subset-3",
    "synthetic": "Synthetic",
    "pku_mmd": "PKU-MMD",
}

ABLATION_DATASETS = ("hugadb", "babel3")
INPUT_ROWS = {"first": "Q^Z", "top": "Q^A", "both": "Both"}
METHOD_ROWS = {"smq": "SMQ", "histvq": "HiST-VQ"}
COMPONENT_ROWS = {
    None: "All",
    "model.lambda_spat": "w/o Spatial Recon. Loss",
    "model.lambda_commit": "w/o Commitment Loss",
    "model.lambda_temp": "w/o Temporal Recon. Loss",
}


@dataclass(frozen=True)
class PaperTable:
    """How one of the paper's tables is laid out.

    ``row_of(run)`` names the run's row (None: the run fits no row); ``keys`` are the
    settings that define the rows, allowed to differ between runs of one row's cells only
    through them; ``rows`` are the paper's rows in its order; ``datasets`` its column groups.
    """

    number: int
    title: str
    header: str
    keys: tuple[str, ...]
    rows: tuple[str, ...]
    datasets: tuple[str, ...]
    row_of: Callable[[Run], str | None]
    jsd: bool = False


def _numeric_row(key: str) -> Callable[[Run], str | None]:
    return lambda run: run.value(key)


def _named_row(key: str, names: dict[str, str]) -> Callable[[Run], str | None]:
    def row(run: Run) -> str | None:
        value = run.value(key)
        return None if value is None else names.get(value, value)

    return row


def _method(run: Run) -> str | None:
    value = run.value("model.name") or run.value("model")
    return None if value is None else METHOD_ROWS.get(value, value)


def _component(run: Run) -> str | None:
    zero = []
    for key in ("model.lambda_spat", "model.lambda_commit", "model.lambda_temp"):
        value = run.value(key)
        if value is None:
            return None
        try:
            if float(value) == 0.0:
                zero.append(key)
        except ValueError:
            return None
    if len(zero) > 1:
        return None
    return COMPONENT_ROWS[zero[0] if zero else None]


PAPER_TABLES: dict[int, PaperTable] = {
    t.number: t
    for t in (
        PaperTable(
            1, "HuGaDB and LARa", "Method", ("model", "model.name"),
            ("SMQ", "HiST-VQ"), ("hugadb", "lara"), _method,
        ),
        PaperTable(
            2, "BABEL subsets", "Method", ("model", "model.name"),
            ("SMQ", "HiST-VQ"), ("babel1", "babel2", "babel3"), _method,
        ),
        PaperTable(
            3, "segment length bias (JSD, lower is better)", "Method", ("model", "model.name"),
            ("SMQ", "HiST-VQ"), ("hugadb", "lara", "babel1", "babel2", "babel3"), _method,
            jsd=True,
        ),
        PaperTable(
            4, "impact of model components", "Method",
            ("model.lambda_spat", "model.lambda_commit", "model.lambda_temp"),
            tuple(COMPONENT_ROWS.values()), ABLATION_DATASETS, _component,
        ),
        PaperTable(
            5, "impact of α", "α", ("model.alpha",), ("1", "2", "3"), ABLATION_DATASETS,
            _numeric_row("model.alpha"),
        ),
        PaperTable(
            6, "impact of the number of hierarchy levels", "Hierarchy Levels",
            ("model.levels", "model.dead_code_thresholds"), ("1", "2", "3"), ABLATION_DATASETS,
            _numeric_row("model.levels"),
        ),
        PaperTable(
            7, "impact of λ_spat", "λ_spat", ("model.lambda_spat",),
            ("0.0005", "0.001", "0.002", "0.005"), ABLATION_DATASETS,
            _numeric_row("model.lambda_spat"),
        ),
        PaperTable(
            8, "impact of λ_temp", "λ_temp", ("model.lambda_temp",), ("0.02", "0.2", "2", "20"),
            ABLATION_DATASETS, _numeric_row("model.lambda_temp"),
        ),
        PaperTable(
            9, "impact of the input to the spatial decoder", "Input", ("model.spatial_input",),
            tuple(INPUT_ROWS.values()), ABLATION_DATASETS,
            _named_row("model.spatial_input", INPUT_ROWS),
        ),
        PaperTable(
            10, "impact of the input to the temporal decoder", "Input",
            ("model.temporal_input",), tuple(INPUT_ROWS.values()), ABLATION_DATASETS,
            _named_row("model.temporal_input", INPUT_ROWS),
        ),
    )
}  # fmt: skip

PAPER_ALIASES: dict[str, int] = {
    "hugadb_lara": 1,
    "babel": 2,
    "jsd": 3,
    "components": 4,
    "alpha": 5,
    "levels": 6,
    "lambda_spat": 7,
    "lambda_temp": 8,
    "spatial_input": 9,
    "temporal_input": 10,
}


def paper_table_spec(name: str | int) -> PaperTable:
    """``table5``, ``5`` or ``alpha`` -> the layout of the paper's Table 5."""
    text = str(name).strip().lower().replace("-", "_")
    number = PAPER_ALIASES.get(text)
    if number is None:
        digits = text.removeprefix("table").strip("_ ")
        number = int(digits) if digits.isdigit() else None
    if number not in PAPER_TABLES:
        names = ", ".join(["table1..table10", *PAPER_ALIASES])
        raise ConfigError(f"--paper: unknown table {name!r} (one of {names})")
    return PAPER_TABLES[number]


def dataset_of(run: Run) -> str:
    """The dataset config chosen for the run (``dataset=...``), or its folder name."""
    choice = run.value("dataset")
    if choice in (None, "folder", "null"):
        return run.value("dataset.name") or MISSING
    return choice


def _cell_keys(runs: Sequence[Run], table: PaperTable) -> list[str]:
    allowed = {SEED_KEY, "dataset", "dataset.raw_dir", "dataset.data_dir", *table.keys}
    return [k for k in differing_keys(runs) if k not in allowed]


@dataclass
class PaperSummary:
    """Cells of a paper-style table: ``cells[row][dataset][metric]``; with ``published`` the
    tables carry the paper's value beside ours (``published_scores``)."""

    table: PaperTable
    rows: list[str]
    datasets: list[str]
    cells: dict[str, dict[str, dict[str, Cell]]]
    matching: str
    notes: list[str] = field(default_factory=list)
    published: bool = False

    def published_value(self, row: str, dataset: str, metric: str) -> float | None:
        """The paper's value of ``metric`` for ``row`` on ``dataset`` (None: not printed)."""
        return published_scores(self.table.number, row, dataset).get(metric)

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("jsd",) if self.table.jsd else SCORE_KEYS

    @property
    def aggregated(self) -> bool:
        return any(
            cell.n > 1 for row in self.cells.values() for ds in row.values() for cell in ds.values()
        )

    def _cell(self, row: str, dataset: str, metric: str) -> Cell | None:
        return self.cells.get(row, {}).get(dataset, {}).get(metric)

    def _average(self, row: str) -> float | None:
        means = [self._cell(row, d, "jsd") for d in self.datasets]
        if any(c is None for c in means):
            return None
        return math.fsum(c.mean for c in means if c is not None) / len(means)

    def title(self) -> str:
        t = self.table
        return f"Table {t.number}: {t.title} ({self.matching} matching)"

    def to_markdown(self) -> str:
        header, right = [self.table.header], [False]
        for dataset in self.datasets:
            name = DATASET_NAMES.get(dataset, dataset)
            if self.table.jsd:
                header.append(name)
            else:
                header += [f"{name} {METRIC_NAMES[m]}" for m in self.metrics]
            right += [True] * len(self.metrics)
            if self.aggregated:
                header.append(f"{name} n")
                right.append(True)
            if self.published:
                header.append(f"{name} paper")
                right.append(True)
        if self.table.jsd:
            header.append("Avg.")
            right.append(True)
        body = []
        for row in self.rows:
            cells = [row]
            for dataset in self.datasets:
                found = [self._cell(row, dataset, m) for m in self.metrics]
                cells += [MISSING if c is None else c.text() for c in found]
                if self.aggregated:
                    n = next((c.n for c in found if c is not None), None)
                    cells.append(MISSING if n is None else str(n))
                if self.published:
                    cells.append(self._published_text(row, dataset))
            if self.table.jsd:
                average = self._average(row)
                cells.append(MISSING if average is None else f"{average:.1f}")
            body.append(cells)
        return self.title() + "\n\n" + markdown_table(header, body, right)

    def _published_text(self, row: str, dataset: str) -> str:
        values = [self.published_value(row, dataset, m) for m in self.metrics]
        if all(v is None for v in values):
            return MISSING
        return " / ".join(MISSING if v is None else f"{v:.1f}" for v in values)

    def to_csv(self) -> str:
        header = [self.table.header]
        for dataset in self.datasets:
            name = DATASET_NAMES.get(dataset, dataset)
            for m in self.metrics:
                header += [f"{name} {METRIC_NAMES[m]}", f"{name} {METRIC_NAMES[m]}_std"]
                if self.published:
                    header.append(f"{name} {METRIC_NAMES[m]} paper")
            header.append(f"{name} n")
        if self.table.jsd:
            header.append("Avg.")
        body = []
        for row in self.rows:
            cells = [row]
            for dataset in self.datasets:
                found = [self._cell(row, dataset, m) for m in self.metrics]
                for m, c in zip(self.metrics, found, strict=True):
                    cells += ["", ""] if c is None else [number_text(c.mean), number_text(c.std)]
                    if self.published:
                        cells.append(number_text(self.published_value(row, dataset, m)))
                n = next((c.n for c in found if c is not None), None)
                cells.append("" if n is None else str(n))
            if self.table.jsd:
                cells.append(number_text(self._average(row)))
            body.append(cells)
        return csv_text(header, body)

    def plot(self, path: str | Path) -> Path:
        """Every run's score beside the paper's value as a PNG at ``path``: one panel per
        dataset and metric, one column per row of the table (seeds as dots, their mean ± std
        as a bar, the paper's value as a marker), so seed noise and the distance to the
        paper can be read at a glance."""
        from histvq.evaluation.plotting import ScoreColumn, plot_score_columns

        panels: dict[str, list[ScoreColumn]] = {}
        for dataset in self.datasets:
            name = DATASET_NAMES.get(dataset, dataset)
            for m in self.metrics:
                columns = []
                for row in self.rows:
                    cell = self._cell(row, dataset, m)
                    paper = self.published_value(row, dataset, m)
                    if cell is not None or paper is not None:
                        values = () if cell is None else cell.values
                        summary = None if cell is None else (cell.mean, cell.std)
                        columns.append(ScoreColumn(row, values, paper, summary))
                panels[f"{name} {METRIC_NAMES[m]}"] = columns
        return plot_score_columns(panels, path, title=self.title(), reference_label="paper")


def paper_summary(
    runs: Sequence[Run],
    table: str | int | PaperTable,
    matching: str = "global",
    published: bool = False,
) -> PaperSummary:
    """Arrange ``runs`` like the paper's table (rows: the ablated setting in the paper's order,
    then values the paper does not have; columns: the paper's datasets that have runs, then
    other datasets); ``published`` adds the paper's values beside ours. Runs in one cell may
    differ only by seed; otherwise this raises :class:`HistvqError` naming the setting that
    differs."""
    spec = table if isinstance(table, PaperTable) else paper_table_spec(table)
    if matching not in MATCHINGS:
        raise ConfigError(f"matching: unknown value {matching!r} (global | local)")
    scored, notes = usable_runs(runs, matching)
    if not scored:
        raise HistvqError(f"none of the {len(runs)} run(s) has usable {matching} metrics")
    members: dict[tuple[str, str], list[tuple[Run, dict]]] = {}
    unplaced = []
    for run, scores in scored:
        row = spec.row_of(run)
        if row is None:
            unplaced.append(str(run.path))
            continue
        members.setdefault((row, dataset_of(run)), []).append((run, scores))
    if unplaced:
        notes.append(
            f"{len(unplaced)} run(s) fit no row of Table {spec.number} ({spec.header}), left "
            f"out: " + "; ".join(unplaced)
        )
    if not members:
        raise HistvqError(f"no run fits a row of Table {spec.number} ({spec.header})")
    cells: dict[str, dict[str, dict[str, Cell]]] = {}
    for (row, dataset), group in members.items():
        differing = _cell_keys([r for r, _ in group], spec)
        if differing:
            key = differing[0]
            values = sorted({r.value(key) or MISSING for r, _ in group}, key=sort_key)
            raise HistvqError(
                f"Table {spec.number}: the runs for {spec.header} = {row} on "
                f"{DATASET_NAMES.get(dataset, dataset)} differ in {key} ({', '.join(values)}), "
                f"not only in seed; point DIR at one sweep"
            )
        cells.setdefault(row, {})[dataset] = {
            m: Cell.of([scores[m] for _, scores in group]) for m in METRIC_KEYS
        }
    rows, datasets = table_layout(spec, cells)
    return PaperSummary(spec, rows, datasets, cells, matching, notes, published)


def table_layout(
    spec: PaperTable, cells: dict[str, dict[str, dict[str, Cell]]]
) -> tuple[list[str], list[str]]:
    """(rows, datasets) of a table holding ``cells``: the paper's rows in its order, then
    rows the paper does not have; the paper's datasets that have cells, then other ones."""
    extra_rows = sorted(set(cells) - set(spec.rows), key=sort_key)
    present = {dataset for row in cells.values() for dataset in row}
    datasets = [d for d in spec.datasets if d in present]
    datasets += sorted(present - set(spec.datasets), key=sort_key)
    return [*spec.rows, *extra_rows], datasets


def paper_table(
    runs: Sequence[Run],
    table: str | int,
    matching: str = "global",
    as_csv: bool = False,
    published: bool = False,
) -> str:
    """The runs laid out like the paper's ``table`` (markdown with a title line, or CSV),
    with the paper's values beside ours when ``published``."""
    summary = paper_summary(runs, table, matching, published)
    return summary.to_csv() if as_csv else summary.to_markdown()
