"""``python -m histvq.figures``: the command line of :mod:`histvq.figures`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from histvq.errors import ConfigError, run_reporting_errors
from histvq.figures import __doc__ as FIGURES_DOC
from histvq.figures.draw import draw
from histvq.figures.run_labels import load_run_labels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m histvq.figures", description=FIGURES_DOC)
    parser.add_argument(
        "--run", action="append", required=True, metavar="NAME=DIR",
        help="a training or evaluate.py run folder and the name it is shown under (repeatable)",
    )  # fmt: skip
    parser.add_argument("--sequence", action="append", default=[], help="a sequence to draw")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    parser.add_argument("--prefix", default="runs", help="file name prefix")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = []
    for item in args.run:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"--run {item!r}: expected NAME=DIR")
        runs.append(load_run_labels(name, Path(folder).expanduser()))
    for path in draw(runs, args.sequence, args.out, args.prefix):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(main))
