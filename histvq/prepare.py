"""Prepare a raw dataset (HuGaDB, LARa, BABEL, PKU-MMD, NTU) into the SMQ-compatible layout.

Command line::

    python -m histvq.prepare hugadb --input RAW_DIR --output ROOT [--exclude-corrupted]
    python -m histvq.prepare lara   --input RAW_DIR --output ROOT [--sample-rate 4] [--root-joint 21]
    python -m histvq.prepare babel  --subset 1 --input train_split1.pkl val_split1.pkl --output ROOT
    python -m histvq.prepare pkummd --input SKELETON_DIR --labels LABEL_DIR --output ROOT
                                    [--split all|cross-subject|cross-view] [--split-file FILE]
                                    [--bodies 2] [--actions FILE]
    python -m histvq.prepare ntu    --input SKELETON_DIR --output ROOT --concat N [--seed 0]
                                    [--bodies 2] [--sequences K]

writes ``ROOT/<name>/{features,groundTruth,mapping}`` (name: ``hugadb``, ``lara``,
``babel<N>``, ``pkummd``, ``ntu``, or ``--name``), shows a progress bar over the input files
(over the sequences for ``ntu``, whose sequences are N concatenated clips each) and ends with
one summary line (sequences, frames, labels, skipped files and why). From Python,
:func:`prepare_dataset` does the same and returns a :class:`PrepareSummary` (it prints
nothing; ``summary.line()`` is the CLI's summary line).

Writing goes through :class:`~histvq.data.layout.LayoutWriter`: a failed run (bad raw
file, interrupt) leaves an existing prepared dataset untouched, and preparing the same
inputs twice gives byte-identical files. Bad raw input raises
:class:`~histvq.errors.RawFormatError` naming the file and the problem; the CLI prints it as
one line and exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from histvq.data.preparation import PrepareSummary, describe_skipped, prepare_dataset
from histvq.data.sources import KINDS, get_source
from histvq.errors import run_reporting_errors

__all__ = ["PrepareSummary", "build_parser", "describe_skipped", "main", "prepare_dataset"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m histvq.prepare",
        description="Prepare a raw dataset into ROOT/<name>/{features,groundTruth,mapping}.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(KINDS) + "}")
    for kind in KINDS:
        sub = kinds.add_parser(kind, help=get_source(kind).description)
        sub.add_argument(
            "--input", "-i", nargs="+", required=True, type=Path, metavar="PATH",
            help="raw input folder(s) or file(s)" + _INPUT_HELP.get(kind, ""),
        )  # fmt: skip
        sub.add_argument(
            "--output", "-o", type=Path, default=Path("data"), metavar="ROOT",
            help="root folder of prepared datasets (default: data)",
        )  # fmt: skip
        sub.add_argument("--name", help="output dataset name (default: the kind's name)")
        sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        if kind == "hugadb":
            sub.add_argument(
                "--exclude-corrupted", action="store_true",
                help="skip the recordings the HuGaDB README lists with corrupted gyro data",
            )  # fmt: skip
            sub.add_argument(
                "--pattern", default="various",
                help="recordings to read from the input folders: various (default; "
                "HuGaDB_v*_various_*.txt, the paper's 364 multi-activity recordings), all "
                "(HuGaDB_v*_*.txt, 635 files) or a glob pattern",
            )  # fmt: skip
        elif kind == "lara":
            sub.add_argument(
                "--sample-rate", type=int, default=4,
                help="keep every Nth frame, starting at the first (default 4: 200 -> 50 fps)",
            )  # fmt: skip
            sub.add_argument(
                "--root-joint", type=int, default=21,
                help="joint whose position is subtracted per frame (default 21, Root)",
            )  # fmt: skip
        elif kind == "babel":
            sub.add_argument("--subset", type=int, required=True, choices=(1, 2, 3))
            sub.add_argument(
                "--none-threshold", type=float, default=50.0, metavar="PERCENT",
                help="drop sequences whose share of 'none' frames exceeds this (default 50)",
            )  # fmt: skip
        elif kind == "pkummd":
            _add_pkummd_arguments(sub)
        elif kind == "ntu":
            _add_ntu_arguments(sub)
    return parser


_INPUT_HELP = {
    "babel": " (the pickles)",
    "pkummd": " (the skeleton .txt files, one per video)",
    "ntu": " (the .skeleton clips)",
}


def _add_pkummd_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--labels", required=True, metavar="DIR",
        help="folder of the label files (<video>.txt: class,start,end,confidence per line)",
    )  # fmt: skip
    sub.add_argument(
        "--split", default="all", choices=("all", "cross-subject", "cross-view"),
        help="all (default: every recording, the transductive protocol) or the videos an "
        "official split lists (needs --split-file)",
    )  # fmt: skip
    sub.add_argument(
        "--split-file", metavar="FILE",
        help="video names of the split, separated by commas/whitespace ('Title:' prefixes "
        "and # lines ignored)",
    )  # fmt: skip
    sub.add_argument(
        "--bodies", type=int, default=2, choices=(1, 2),
        help="bodies kept per frame: 2 (default, M=2) or 1 (the main body)",
    )  # fmt: skip
    sub.add_argument(
        "--actions", metavar="FILE",
        help="class names: '<id>,<name>' (or tab/space separated) per line; default class_<id>",
    )  # fmt: skip


def _add_ntu_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--concat", type=int, required=True, metavar="N",
        help="clips concatenated into one sequence (each clip used at most once)",
    )  # fmt: skip
    sub.add_argument(
        "--seed", type=int, default=0, help="seed of the random draw of clips (default 0)"
    )
    sub.add_argument(
        "--bodies", type=int, default=2, choices=(1, 2),
        help="bodies kept per frame: 2 (default, M=2) or 1 (the first listed)",
    )  # fmt: skip
    sub.add_argument(
        "--sequences", type=int, metavar="K",
        help="number of sequences (default: as many as the clips fill)",
    )  # fmt: skip


_OPTION_ARGS = {
    "hugadb": ("exclude_corrupted", "pattern"),
    "lara": ("sample_rate", "root_joint"),
    "babel": ("subset", "none_threshold"),
    "pkummd": ("labels", "split", "split_file", "bodies", "actions"),
    "ntu": ("concat", "seed", "bodies", "sequences"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {key: getattr(args, key) for key in _OPTION_ARGS[args.kind]}
    summary = prepare_dataset(
        args.kind,
        args.input,
        args.output,
        name=args.name,
        progress=False if args.no_progress else None,
        **options,
    )
    print(summary.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(main))
