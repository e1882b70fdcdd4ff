"""The command line of the report: ``python -m histvq.report DIR [--csv] [--paper TABLE]``
(``--merge FILE`` completes a paper table from an earlier one's CSV; ``--history GROUP`` for
what the runs logged while training, ``--progress`` for where unfinished runs stand).

:func:`report` is what the command prints (table text and notes), kept separate from
:func:`main` so tests and other reporters get the same text without a subprocess; a
:class:`~histvq.errors.HistvqError` (no runs, unknown table, ...) ends the command with a
one-line message instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from histvq.errors import ConfigError, run_reporting_errors
from histvq.metrics.names import MATCHINGS
from histvq.report.earlier import merge_earlier
from histvq.report.history import history, plot_history
from histvq.report.paper import PAPER_ALIASES, PaperSummary, paper_summary
from histvq.report.progress import progress
from histvq.report.runs import collect_runs
from histvq.report.study import find_studies
from histvq.report.summary import Summary, summarize


def report(
    directory: str | os.PathLike[str],
    *,
    matching: str = "global",
    as_csv: bool = False,
    paper: str | None = None,
    aggregate: bool = True,
    history_group: str | None = None,
    plot: str | os.PathLike[str] | None = None,
    published: bool = False,
    show_progress: bool = False,
    merge: Sequence[str | os.PathLike[str]] = (),
) -> tuple[str, list[str]]:
    """(table text, notes) for every run under ``directory``; what the CLI prints.

    Optimisation sweeps (Optuna) under ``directory`` add their best parameters and value:
    after the table, or to the notes with ``as_csv``. ``paper`` lays the runs out like one
    of the paper's tables, ``published`` with the paper's values beside ours.
    ``history_group`` lists what the runs logged under that group while training instead of
    their final scores. ``plot`` draws the history as curves, or the paper table's scores
    per seed beside the paper's values, to that PNG file (named in the notes).
    ``show_progress`` lists where each run stands (finished, epochs done, time left).
    ``merge`` names CSVs that ``--paper TABLE --csv`` wrote before: their rows fill the cells
    the runs leave empty (:mod:`histvq.report.earlier`)."""
    if show_progress and (history_group is not None or paper or plot is not None):
        raise ConfigError("--progress: lists the runs' state alone (no --history, --paper, --plot)")
    if history_group is not None and paper:
        raise ConfigError("--history and --paper: choose one (a paper table holds final scores)")
    if plot is not None and history_group is None and not paper:
        raise ConfigError("--plot: draws a --history GROUP or a --paper TABLE; name one")
    if published and not paper:
        raise ConfigError("--published: the paper's values go beside a --paper TABLE; name one")
    if merge and not paper:
        raise ConfigError(
            "--merge: adds the rows of an earlier --paper TABLE --csv; name the TABLE"
        )
    runs = collect_runs(directory)
    if show_progress:
        table = progress(runs, Path(directory).expanduser())
        return (table.to_csv() if as_csv else table.to_markdown()), []
    if history_group is not None:
        logged = history(runs, history_group)
        notes = list(logged.notes)
        if plot is not None:
            notes.append(f"curves written to {plot_history(logged, Path(plot))}")
        return (logged.to_csv() if as_csv else logged.to_markdown()), notes
    summary: Summary | PaperSummary
    if paper:
        summary = paper_summary(runs, paper, matching, published)
        for earlier in merge:
            merge_earlier(summary, earlier)
        if plot is not None:
            summary.notes.append(f"scores per seed drawn to {summary.plot(Path(plot))}")
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
    parser.add_argument(
        "directory",
        metavar="DIR",
        help="run, sweep or outputs folder (training runs, or else evaluate.py runs)",
    )
    parser.add_argument("--csv", action="store_true", help="CSV (mean and std columns, n, runs)")
    parser.add_argument(
        "--paper",
        metavar="TABLE",
        help="lay out like the paper's table: table1..table10 or " + ", ".join(PAPER_ALIASES),
    )
    parser.add_argument(
        "--published",
        action="store_true",
        help="with --paper: the paper's published value beside each of ours",
    )
    parser.add_argument(
        "--merge",
        metavar="FILE",
        action="append",
        default=[],
        help="with --paper: a CSV that --paper TABLE --csv wrote for earlier runs; its rows fill "
        "the cells DIR's runs leave empty (repeatable)",
    )
    parser.add_argument(
        "--history",
        metavar="GROUP",
        help="what the runs logged while training, one row per run and logged step, from "
        "their csv/metrics.csv: codebook (codes used, dead codes, perplexity per level), "
        "eval/global or eval/local (evaluations during training), train, ...",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw a PNG: with --history the curves (one panel per metric, one line per "
        "run), with --paper every seed's score beside the paper's value (one panel per dataset "
        "and metric)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="where each run stands: finished or not, epochs done, the last epoch's duration, "
        "the time left and how long ago its last epoch ended (from its training log)",
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
            history_group=args.history,
            plot=args.plot,
            published=args.published,
            show_progress=args.progress,
            merge=args.merge,
        )
        print(text)
        for note in notes:
            # CSV stays machine-readable: notes go to stderr there.
            print(f"\nNote: {note}" if not args.csv else f"note: {note}",
                  file=sys.stderr if args.csv else sys.stdout)  # fmt: skip
        return 0

    return run_reporting_errors(run) or 0
