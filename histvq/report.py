"""Tables of finished runs: ``python -m histvq.report DIR``.

::

    python -m histvq.report outputs/multirun/train/<sweep>            # markdown table
    python -m histvq.report outputs/multirun --csv                      # CSV (mean, std, n)
    python -m histvq.report outputs/multirun --paper alpha              # laid out as Table 5
    python -m histvq.report outputs/multirun --matching local

A run is a folder holding ``.hydra/`` (written by Hydra) and ``metrics.json`` (written by the
evaluation). One row per configuration: the first columns are the overrides whose values
differ between the runs (``hydra.*`` and ``paths.*`` left out), then MoF, Edit, F1@{10,25,50}
and JSD. Runs that differ only by ``seed`` share a row showing mean ± sample standard deviation
and the number of runs ``n``. ``--paper`` arranges the runs like one of the paper's tables:
the ablated setting as rows in the paper's order and naming, the datasets as column groups.

The functions (:func:`collect_runs`, :func:`summarize`, :func:`summary_table`,
:func:`paper_table`) are the API for other reporters, e.g. posting the table to W&B.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from histvq.errors import ConfigError, HistvqError, run_reporting_errors

METRIC_KEYS: tuple[str, ...] = ("mof", "edit", "f1@10", "f1@25", "f1@50", "jsd")
METRIC_NAMES: dict[str, str] = {
    "mof": "MoF",
    "edit": "Edit",
    "f1@10": "F1@10",
    "f1@25": "F1@25",
    "f1@50": "F1@50",
    "jsd": "JSD",
}
MATCHINGS = ("global", "local")
IGNORED_PREFIXES = ("hydra.", "paths.")
IGNORED_KEYS = frozenset({"hydra", "paths"})
SEED_KEY = "seed"
TRAINING_TASK = "train"
MISSING = "-"

DATASET_NAMES: dict[str, str] = {
    "hugadb": "HuGaDB",
    "lara": "LARa",
    "babel1": "BABEL Subset-1",
    "babel2": "BABEL Subset-2",
    "babel3": "BABEL Subset-3",
    "synthetic": "Synthetic",
    "pku_mmd": "PKU-MMD",
}


# ----------------------------------------------------------------------------- runs


def canonical(value: Any) -> str:
    """One spelling per value, so ``1e-3`` (an override) equals ``0.001`` (a config value)
    and ``2.0`` equals ``2``; anything that is not a number or a boolean is kept as text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in {"true", "false"}:
            return text.lower()
        if text.lower() in {"null", "none", "~"}:
            return "null"
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number) or "_" in text:
            return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def sort_key(value: str | None) -> tuple[int, float, str]:
    """Numbers in numeric order first, then text in lexical order, missing values last."""
    if value is None or value == MISSING:
        return (2, 0.0, "")
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _override_key(text: str) -> tuple[str, str]:
    """``+model.x=3`` -> (``model.x``, ``3``); ``~key`` -> (``key``, ``<deleted>``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if key.startswith("~"):
        return key.lstrip("~"), "<deleted>"
    return key.lstrip("+"), value if sep else ""


@dataclass
class Run:
    """One run folder: its command-line overrides, composed config and metrics.

    ``problem`` says why the run has no usable metrics (None when it has them).
    """

    path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    config: Any = None
    choices: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def task(self) -> str | None:
        value = self._config_value("task_name")
        return None if value is None else str(value)

    def value(self, key: str) -> str | None:
        """The run's value of ``key`` (an override key such as ``model.alpha`` or a config
        group such as ``dataset``), canonical text; None when the run does not have it."""
        if key in self.overrides:
            return canonical(self.overrides[key])
        if key in self.choices:
            return canonical(self.choices[key])
        found = self._config_value(key)
        if found is _ABSENT:
            return None
        if isinstance(found, dict | list):
            return json.dumps(found, sort_keys=True)
        return canonical(found)

    def _config_value(self, key: str) -> Any:
        if self.config is None:
            return _ABSENT
        from omegaconf import DictConfig, ListConfig, OmegaConf

        try:
            found = OmegaConf.select(
                self.config, key, default=_ABSENT, throw_on_resolution_failure=False
            )
        except Exception:
            return _ABSENT
        if isinstance(found, DictConfig | ListConfig):
            try:
                return OmegaConf.to_container(found, resolve=True)
            except Exception:
                return OmegaConf.to_container(found, resolve=False)
        return found

    def scores(self, matching: str = "global") -> dict[str, float]:
        """``{metric: value}`` of the chosen matching; raises :class:`HistvqError` with the
        reason when metrics.json does not hold them."""
        if self.metrics is None:
            raise HistvqError(self.problem or "no metrics.json")
        block = self.metrics.get(matching)
        if not isinstance(block, dict):
            raise HistvqError(f"metrics.json has no {matching!r} block")
        out = {}
        for key in METRIC_KEYS:
            value = block.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HistvqError(f"metrics.json has no number {matching}.{key}")
            out[key] = float(value)
        return out


_ABSENT: Any = object()


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "metrics.json").is_file()


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders under ``root`` (``root`` itself included), sorted by path; the inside of a
    run folder and hidden folders are not searched."""
    found = []
    for current, dirs, _ in os.walk(root):
        here = Path(current)
        if is_run_dir(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "wandb")
    return sorted(found)


def load_run(path: Path) -> Run:
    """Read one run folder; unreadable parts become ``problem`` instead of exceptions."""
    run = Run(path=path)
    hydra_dir = path / ".hydra"
    problems = []
    overrides_file = hydra_dir / "overrides.yaml"
    if overrides_file.is_file():
        try:
            items = yaml.safe_load(overrides_file.read_text(encoding="utf-8")) or []
            if not isinstance(items, list):
                raise ValueError("not a list")
            run.overrides = dict(_override_key(str(item)) for item in items)
        except (yaml.YAMLError, ValueError) as error:
            problems.append(f".hydra/overrides.yaml unreadable ({error})".replace("\n", " "))
    config_file = hydra_dir / "config.yaml"
    if config_file.is_file():
        from omegaconf import OmegaConf

        try:
            run.config = OmegaConf.load(config_file)
        except Exception as error:
            problems.append(f".hydra/config.yaml unreadable ({type(error).__name__})")
    hydra_file = hydra_dir / "hydra.yaml"
    if hydra_file.is_file():
        try:
            data = yaml.safe_load(hydra_file.read_text(encoding="utf-8")) or {}
            choices = data.get("hydra", {}).get("runtime", {}).get("choices", {}) or {}
            run.choices = {str(k): str(v) for k, v in choices.items() if v is not None}
        except (yaml.YAMLError, AttributeError):
            pass
    metrics_file = path / "metrics.json"
    if not metrics_file.is_file():
        problems.append("metrics.json missing")
    else:
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            if not isinstance(metrics, dict):
                raise ValueError("not a JSON object")
            run.metrics = metrics
        except (ValueError, UnicodeDecodeError) as error:
            problems.append(f"metrics.json unreadable ({error})".replace("\n", " "))
    if problems:
        run.problem = "; ".join(problems)
        if run.metrics is not None and "metrics.json" not in run.problem:
            run.problem = None  # config trouble only: the metrics are still usable
    return run


def collect_runs(directory: str | os.PathLike[str]) -> list[Run]:
    """Every run under ``directory`` (a run folder, a sweep folder or any tree of them),
    sorted by path; runs without usable metrics are included with ``problem`` set.

    Folders of other tasks (``python evaluate.py``, ``python -m histvq.predict``) are left
    out. Raises :class:`HistvqError` when there is no training run at all.
    """
    root = Path(directory).expanduser()
    if not root.exists():
        raise HistvqError(f"{root}: does not exist")
    if not root.is_dir():
        raise HistvqError(f"{root}: not a folder")
    runs = [load_run(p) for p in find_run_dirs(root)]
    runs = [r for r in runs if r.task in (None, TRAINING_TASK)]
    if not runs:
        raise HistvqError(
            f"{root}: no runs found (a run is a folder with .hydra/ and metrics.json, "
            f"as written by train.py)"
        )
    return runs


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Cell:
    """Mean, sample standard deviation (None for a single run) and number of runs."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Cell:
        n = len(values)
        mean = math.fsum(values) / n
        if n < 2:
            return cls(mean, None, n)
        variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        return cls(mean, math.sqrt(variance), n)

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
                cells += [_number(row.cells[key].mean), _number(row.cells[key].std)]
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


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


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


# ----------------------------------------------------------------------------- rendering


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """A GitHub-flavoured pipe table with padded columns (``right``: right-aligned ones)."""
    right = list(right) if right is not None else [False] * len(header)
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(
        ("-" * (w - 1) + ":") if r else "-" * w for w, r in zip(widths, right, strict=True)
    )
    return "\n".join([line(header), rule + " |", *(line(r) for r in rows)])


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


# ----------------------------------------------------------------------------- paper tables


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
    """Cells of a paper-style table: ``cells[row][dataset][metric]``."""

    table: PaperTable
    rows: list[str]
    datasets: list[str]
    cells: dict[str, dict[str, dict[str, Cell]]]
    matching: str
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("jsd",) if self.table.jsd else METRIC_KEYS[:5]

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
            if self.table.jsd:
                average = self._average(row)
                cells.append(MISSING if average is None else f"{average:.1f}")
            body.append(cells)
        return self.title() + "\n\n" + markdown_table(header, body, right)

    def to_csv(self) -> str:
        header = [self.table.header]
        for dataset in self.datasets:
            name = DATASET_NAMES.get(dataset, dataset)
            for m in self.metrics:
                header += [f"{name} {METRIC_NAMES[m]}", f"{name} {METRIC_NAMES[m]}_std"]
            header.append(f"{name} n")
        if self.table.jsd:
            header.append("Avg.")
        body = []
        for row in self.rows:
            cells = [row]
            for dataset in self.datasets:
                found = [self._cell(row, dataset, m) for m in self.metrics]
                for c in found:
                    cells += ["", ""] if c is None else [_number(c.mean), _number(c.std)]
                n = next((c.n for c in found if c is not None), None)
                cells.append("" if n is None else str(n))
            if self.table.jsd:
                cells.append(_number(self._average(row)))
            body.append(cells)
        return csv_text(header, body)


def paper_summary(
    runs: Sequence[Run], table: str | int | PaperTable, matching: str = "global"
) -> PaperSummary:
    """Arrange ``runs`` like the paper's table (rows: the ablated setting in the paper's order,
    then values the paper does not have; columns: the paper's datasets that have runs, then
    other datasets). Runs in one cell may differ only by seed; otherwise this raises
    :class:`HistvqError` naming the setting that differs."""
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
    extra_rows = sorted({r for r, _ in members} - set(spec.rows), key=sort_key)
    present = {d for _, d in members}
    datasets = [d for d in spec.datasets if d in present]
    datasets += sorted(present - set(spec.datasets), key=sort_key)
    return PaperSummary(spec, [*spec.rows, *extra_rows], datasets, cells, matching, notes)


def paper_table(
    runs: Sequence[Run], table: str | int, matching: str = "global", as_csv: bool = False
) -> str:
    """The runs laid out like the paper's ``table`` (markdown with a title line, or CSV)."""
    summary = paper_summary(runs, table, matching)
    return summary.to_csv() if as_csv else summary.to_markdown()


# ----------------------------------------------------------------------------- studies

STUDY_FILE = "optimization_results.yaml"


@dataclass
class Study:
    """An optimisation sweep (``hydra/sweeper=optuna``): the sweep folder holds
    ``optimization_results.yaml`` with the best parameters and value (or, for several
    objectives, the Pareto front) beside one run folder per trial."""

    path: Path
    trials: list[Run]
    best_params: dict[str, str] = field(default_factory=dict)
    best_value: float | None = None
    solutions: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    direction: str | None = None
    objective: str | None = None
    problem: str | None = None

    @property
    def best_run(self) -> Run | None:
        """The trial whose overrides are the best parameters (the first one, on repeats)."""
        if not self.best_params:
            return None
        for run in self.trials:
            if all(run.value(k) == canonical(v) for k, v in self.best_params.items()):
                return run
        return None

    def text(self) -> str:
        if self.problem:
            return f"Study {self.path}: {self.problem}"
        name = self.name or self.path.name
        what = f"{self.direction or 'optimise'} {self.objective or 'the objective'}"
        head = f"Study {name} ({self.path}): {len(self.trials)} trials, {what}"
        if self.solutions:
            lines = [f"{head}; Pareto front of {len(self.solutions)}:"]
            for solution in self.solutions:
                values = ", ".join(f"{float(v):.2f}" for v in solution.get("values") or [])
                lines.append(f"  [{values}] {_params_text(solution.get('params') or {})}")
            return "\n".join(lines)
        value = MISSING if self.best_value is None else f"{self.best_value:.2f}"
        best = self.best_run
        where = f" (trial {best.path.name})" if best is not None else ""
        return f"{head}\n  best {value}{where}: {_params_text(self.best_params)}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={canonical(v)}" for k, v in params.items())


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _sweeper_settings(runs: Sequence[Run]) -> tuple[str | None, str | None]:
    """(study name, direction) from a trial's ``.hydra/hydra.yaml``."""
    for run in runs:
        try:
            data = yaml.safe_load((run.path / ".hydra" / "hydra.yaml").read_text("utf-8"))
            sweeper = data["hydra"]["sweeper"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        direction = sweeper.get("direction")
        if isinstance(direction, list):
            direction = ", ".join(map(str, direction))
        name = sweeper.get("study_name")
        return _text_or_none(name), _text_or_none(direction)
    return None, None


def load_study(path: Path, runs: Sequence[Run]) -> Study:
    """The study of the sweep folder ``path``; ``runs``: all runs found by the report (its
    trials are those under ``path``)."""
    trials = [r for r in runs if path in r.path.parents]
    study = Study(path=path, trials=trials)
    try:
        data = yaml.safe_load((path / STUDY_FILE).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        study.best_params = {str(k): str(v) for k, v in (data.get("best_params") or {}).items()}
        if data.get("best_value") is not None:
            study.best_value = float(data["best_value"])
        study.solutions = list(data.get("solutions") or [])
    except (OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as error:
        study.problem = f"{STUDY_FILE} unreadable ({error})".replace("\n", " ")
        return study
    study.name, study.direction = _sweeper_settings(trials)
    objectives = {r.value("objective") for r in trials} - {None}
    if len(objectives) == 1:
        study.objective = objectives.pop()
    return study


def find_studies(root: str | os.PathLike[str], runs: Sequence[Run]) -> list[Study]:
    """Every optimisation sweep under ``root`` (``root`` itself included), sorted by path."""
    found = []
    for current, dirs, files in os.walk(Path(root).expanduser()):
        here = Path(current)
        if STUDY_FILE in files:
            found.append(load_study(here, runs))
        if is_run_dir(here):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "wandb")
    return sorted(found, key=lambda study: study.path)


# ----------------------------------------------------------------------------- CLI


def report(
    directory: str | os.PathLike[str],
    *,
    matching: str = "global",
    as_csv: bool = False,
    paper: str | None = None,
    aggregate: bool = True,
) -> tuple[str, list[str]]:
    """(table text, notes) for every run under ``directory``; what the CLI prints.

    Optimisation sweeps (Optuna) under ``directory`` add their best parameters and value:
    after the table, or to the notes with ``as_csv``."""
    runs = collect_runs(directory)
    summary: Summary | PaperSummary
    if paper:
        summary = paper_summary(runs, paper, matching)
    else:
        summary = summarize(runs, matching, aggregate)
    studies = [study.text() for study in find_studies(directory, runs)]
    if as_csv:
        return summary.to_csv(), [*summary.notes, *studies]
    text = summary.to_markdown()
    if studies:
        text += "\n\n" + "\n\n".join(studies)
    return text, summary.notes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m histvq.report",
        description="Summarise finished runs (a run folder, a sweep folder or any tree of them) "
        "as a markdown or CSV table; runs differing only by seed are averaged (mean ± std, n).",
    )
    parser.add_argument("directory", metavar="DIR", help="run, sweep or outputs folder")
    parser.add_argument("--csv", action="store_true", help="CSV (mean and std columns, n, runs)")
    parser.add_argument(
        "--paper",
        metavar="TABLE",
        help="lay out like the paper's table: table1..table10 or " + ", ".join(PAPER_ALIASES),
    )
    parser.add_argument("--matching", choices=MATCHINGS, default="global")
    parser.add_argument(
        "--no-aggregate", action="store_true", help="one row per run, seed as a column"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    args = build_parser().parse_args(argv)

    def run() -> int:
        text, notes = report(
            args.directory,
            matching=args.matching,
            as_csv=args.csv,
            paper=args.paper,
            aggregate=not args.no_aggregate,
        )
        print(text)
        for note in notes:
            # CSV stays machine-readable: notes go to stderr there.
            print(f"\nNote: {note}" if not args.csv else f"note: {note}",
                  file=sys.stderr if args.csv else sys.stdout)  # fmt: skip
        return 0

    return run_reporting_errors(run) or 0


if __name__ == "__main__":
    raise SystemExit(main())
