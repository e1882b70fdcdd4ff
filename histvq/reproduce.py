"""Reproduce the paper's HuGaDB rows: ``python -m histvq.reproduce`` (``make reproduce-hugadb``).

::

    python -m histvq.reproduce [--device gpu] [--jobs 6] [--seeds 0,1,2] [--epochs 30]
                               [--data-dir data] [--out outputs/multirun/hugadb_paper]
                               [--results results] [--resume | --report-only]
                               [-- extra Hydra overrides]

runs the sweep ``conf/sweeps/hugadb_paper.yaml`` (SMQ and HiST-VQ on the paper's HuGaDB set,
the reference protocol, ``experiment=hugadb_paper[_smq]``) with ``--jobs`` jobs in parallel
(Hydra's joblib launcher; on a CPU the cores shared out between them), then writes

- ``<results>/hugadb_table1.csv``: the paper's Table 1 layout (mean ± std over seeds, the
  paper's value beside each) and ``<results>/hugadb_table3_jsd.csv`` (Table 3, JSD), with
  ``<results>/hugadb_table1.png``: every seed's scores beside the paper's values;
- ``<results>/hugadb_segment_lengths.png`` and ``<results>/hugadb_<sequence>.png`` for
  ``--sequence`` (default ``HuGaDB_v1_various_01_00``), from the first seed's runs: the
  paper's Fig. 3 and Fig. 4 layouts, and ``<results>/hugadb_segments.csv``, Fig. 3 as
  numbers (segments per sequence against the ground truth's, length percentiles), and
  ``<results>/hugadb_patch_oracle.csv``, the scores of the ground truth's majority label
  per 60-frame patch (the ceiling of a model that labels whole patches) and how much a
  patch's true activity says about the temporal loss's target, and
  ``<results>/hugadb_short_segments.csv``, each run's scores with its one-patch segments
  merged into a neighbour (what they cost it);
- ``<results>/hugadb_codebook_use.csv`` and ``.png``: codes used, dead codes and perplexity
  per quantizer level of every run over training (``python -m histvq.report --history
  codebook``), to see whether a level collapses.

``--report-only`` runs nothing and writes the same files from the runs already under
``--out`` (any run folders below it made with ``experiment=hugadb_paper[_smq]``, a sweep's or
not). ``--resume`` runs the same sweep again in ``--out`` with ``ckpt_path=last``: each job
continues from its own last checkpoint (an interrupted or preempted one where it stopped,
a finished one is only evaluated again), its CSV log continued.

The dataset must be prepared under ``<data-dir>/hugadb`` (``python -m histvq.prepare hugadb
--input <HuGaDB folder> --output <data-dir>``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from histvq.errors import ConfigError, HistvqError, run_reporting_errors

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"hugadb_paper_smq": "SMQ", "hugadb_paper": "HiST-VQ"}
DEFAULT_SEQUENCES = ("HuGaDB_v1_various_01_00",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m histvq.reproduce", description=__doc__)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    parser.add_argument("--jobs", type=int, default=6, help="sweep jobs run at once")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs/multirun/hugadb_paper")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--sequence", action="append", default=None)
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--report-only", action="store_true",
        help="run nothing: write the tables and figures of the runs already under --out "
        "(every run folder below it with experiment=hugadb_paper[_smq])",
    )  # fmt: skip
    what.add_argument(
        "--resume", action="store_true",
        help="run the sweep in --out again, every job continuing from its own last "
        "checkpoint (an interrupted job where it stopped, a finished one only re-evaluated)",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    return parser


def sweep_command(args: argparse.Namespace) -> list[str]:
    """The ``train.py -m`` command line of the sweep."""
    command = [
        sys.executable, str(ROOT / "train.py"), "-m", "+sweeps=hugadb_paper",
        f"trainer={args.device}", f"seed={args.seeds}", f"trainer.max_epochs={args.epochs}",
        f"paths.data_dir={args.data_dir}", f"hydra.sweep.dir={args.out}",
        "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    if args.resume:
        command.append("ckpt_path=last")
    if args.jobs > 1:
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"]
    return [*command, *args.overrides]


def sweep_environment(
    args: argparse.Namespace, environ: Mapping[str, str], cores: int
) -> dict[str, str]:
    """The sweep's environment. On a CPU the ``cores`` are shared out between the jobs that
    run at once (``OMP_NUM_THREADS``; a value already set is kept): each job would otherwise
    start a thread per core, and the jobs would fight over them."""
    env = {**environ, "PROJECT_ROOT": str(ROOT)}
    if args.device == "cpu" and "OMP_NUM_THREADS" not in environ:
        at_once = min(args.jobs, len(METHODS) * len(args.seeds.split(",")))
        env["OMP_NUM_THREADS"] = str(max(1, cores // at_once))
    return env


def first_seed_runs(out: Path) -> dict[str, Path]:
    """Method name -> the run folder of its lowest seed in the sweep folder ``out`` among
    the finished runs (an unfinished one has no predictions to draw)."""
    from histvq.report.runs import collect_runs

    chosen: dict[str, tuple[int, Path]] = {}
    for run in collect_runs(out):
        if run.problem is not None:
            continue
        experiment = run.overrides.get("experiment")
        seed = int(run.overrides.get("seed", run.value("seed") or 0))
        if experiment in METHODS and (experiment not in chosen or seed < chosen[experiment][0]):
            chosen[experiment] = (seed, run.path)
    return {METHODS[e]: chosen[e][1] for e in METHODS if e in chosen}


def write_results(out: Path, results: Path, sequences: Sequence[str]) -> list[Path]:
    """The tables (CSV) and figures of a finished sweep; returns the files written."""
    from histvq.figures import draw, load_run_labels
    from histvq.report.history import history, plot_history
    from histvq.report.paper import paper_summary
    from histvq.report.runs import collect_runs

    runs = collect_runs(out)  # before any folder is made: a wrong --out leaves nothing behind
    results.mkdir(parents=True, exist_ok=True)
    written = []
    for table, name in ((1, "hugadb_table1"), (3, "hugadb_table3_jsd")):
        summary = paper_summary(runs, table, published=True)
        path = results / f"{name}.csv"
        path.write_text(summary.to_csv() + "\n", encoding="utf-8")
        written.append(path)
        if table == 1:
            written.append(summary.plot(results / f"{name}.png"))
    labelled = [load_run_labels(name, folder) for name, folder in first_seed_runs(out).items()]
    if labelled:
        written += draw(labelled, sequences, results, "hugadb")
    try:
        logged = history(runs, "codebook")
    except HistvqError as error:  # e.g. fewer steps than trainer.log_every_n_steps
        print(f"note: no codebook-use table ({error})", file=sys.stderr)
    else:
        path = results / "hugadb_codebook_use.csv"
        path.write_text(logged.to_csv() + "\n", encoding="utf-8")
        written += [path, plot_history(logged, results / "hugadb_codebook_use.png")]
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.report_only:
        return _print_results(args)
    if not (args.data_dir / "hugadb" / "features").is_dir():
        raise ConfigError(
            f"{args.data_dir / 'hugadb'}: not prepared; run `python -m histvq.prepare hugadb "
            f"--input <HuGaDB folder> --output {args.data_dir}`"
        )
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None  # Linux
    cores = len(usable) if usable else os.cpu_count() or 1
    env = sweep_environment(args, os.environ, cores)
    result = subprocess.run(sweep_command(args), cwd=ROOT, env=env)
    if result.returncode != 0:
        return result.returncode
    return _print_results(args)


def _print_results(args: argparse.Namespace) -> int:
    for path in write_results(args.out, args.results, args.sequence or DEFAULT_SEQUENCES):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(main))
