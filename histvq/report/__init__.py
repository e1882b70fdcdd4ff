"""Tables of finished runs: ``python -m histvq.report DIR``.

::

    python -m histvq.report outputs/multirun/train/<sweep>            # markdown table
    python -m histvq.report outputs/multirun --csv                      # CSV (mean, std, n)
    python -m histvq.report outputs/multirun --paper alpha              # laid out as Table 5
    python -m histvq.report outputs/multirun --paper alpha --published --plot alpha.png
    python -m histvq.report outputs/multirun --matching local
    python -m histvq.report outputs/multirun --history codebook        # logged while training

A run is a folder holding ``.hydra/`` (written by Hydra) and ``metrics.json`` (written by the
evaluation). One row per configuration: the first columns are the overrides whose values
differ between the runs (``hydra.*`` and ``paths.*`` left out), then MoF, Edit, F1@{10,25,50}
and JSD. Runs that differ only by ``seed`` share a row showing mean ± sample standard deviation
and the number of runs ``n``. A tree of ``python evaluate.py`` folders and no training runs
(a sweep's checkpoints evaluated on other data) is tabulated the same way, each evaluation
under the overrides of the training run its checkpoint came from. ``--paper`` arranges the
runs like one of the paper's tables: the ablated setting as rows in the paper's order and
naming, the datasets as column groups; ``--published`` adds the paper's own values beside
ours and ``--plot`` draws every seed's score beside them.

The modules, each depending only on those before it: :mod:`.render` (markdown and CSV
text), :mod:`.runs` (finding and reading run folders), :mod:`.summary` (aggregation over
seeds), :mod:`.history` (what runs logged while training), :mod:`.published` (the paper's
values), :mod:`.paper` (the paper's table layouts), :mod:`.study` (Optuna sweeps) and :mod:`.cli` (the command). The functions
(:func:`collect_runs`, :func:`summarize`, :func:`summary_table`, :func:`paper_table`,
:func:`history`) are the API for other reporters, e.g. posting the table to W&B. Nothing
here imports torch or lightning.
"""

from __future__ import annotations

from histvq.metrics.names import MATCHINGS, METRIC_KEYS, METRIC_NAMES
from histvq.report.cli import build_parser, main, report
from histvq.report.history import History, history, plot_history
from histvq.report.paper import (
    ABLATION_DATASETS,
    COMPONENT_ROWS,
    DATASET_NAMES,
    INPUT_ROWS,
    METHOD_ROWS,
    PAPER_ALIASES,
    PAPER_TABLES,
    PaperSummary,
    PaperTable,
    dataset_of,
    paper_summary,
    paper_table,
    paper_table_spec,
)
from histvq.report.published import PUBLISHED, published_scores
from histvq.report.render import csv_text, markdown_table
from histvq.report.runs import (
    MISSING,
    TRAINING_TASK,
    Run,
    canonical,
    collect_runs,
    find_run_dirs,
    is_run_dir,
    load_run,
    sort_key,
)
from histvq.report.study import STUDY_FILE, Study, find_studies, load_study
from histvq.report.summary import (
    IGNORED_KEYS,
    IGNORED_PREFIXES,
    SEED_KEY,
    Cell,
    Row,
    Summary,
    differing_keys,
    summarize,
    summary_table,
    usable_runs,
)

__all__ = [
    "ABLATION_DATASETS",
    "COMPONENT_ROWS",
    "DATASET_NAMES",
    "IGNORED_KEYS",
    "IGNORED_PREFIXES",
    "INPUT_ROWS",
    "MATCHINGS",
    "METHOD_ROWS",
    "METRIC_KEYS",
    "METRIC_NAMES",
    "MISSING",
    "PAPER_ALIASES",
    "PAPER_TABLES",
    "PUBLISHED",
    "SEED_KEY",
    "STUDY_FILE",
    "TRAINING_TASK",
    "Cell",
    "History",
    "PaperSummary",
    "PaperTable",
    "Row",
    "Run",
    "Study",
    "Summary",
    "build_parser",
    "canonical",
    "collect_runs",
    "csv_text",
    "dataset_of",
    "differing_keys",
    "find_run_dirs",
    "find_studies",
    "history",
    "is_run_dir",
    "load_run",
    "load_study",
    "main",
    "markdown_table",
    "paper_summary",
    "paper_table",
    "paper_table_spec",
    "plot_history",
    "published_scores",
    "report",
    "sort_key",
    "summarize",
    "summary_table",
    "usable_runs",
]
