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
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from histvq.data.layout import LayoutWriter
from histvq.data.sources import KINDS, RawSequence, Skipped, get_source
from histvq.errors import ConfigError, RawFormatError, run_reporting_errors

_MAX_LISTED = 3


@dataclass
class PrepareSummary:
    """What a preparation wrote: ``labels`` counts the label names that occur in the data."""

    name: str
    path: Path
    sequences: int
    frames: int
    labels: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    mapping_size: int = 0

    def line(self) -> str:
        """One line for humans: counts, destination and the skipped items grouped by reason."""
        text = (
            f"prepared {self.name}: {_count(self.sequences, 'sequence')}, "
            f"{_count(self.frames, 'frame')}, {_count(self.labels, 'label')} "
            f"(of {self.mapping_size} in mapping) -> {self.path}"
        )
        if self.skipped:
            text += f"; skipped {len(self.skipped):,}: " + describe_skipped(self.skipped)
        return text


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def describe_skipped(skipped: Sequence[tuple[str, str]]) -> str:
    """``"2 not a recording (a.txt, b.m); 1 duplicate (c)"``: grouped by reason, in order."""
    groups: dict[str, list[str]] = {}
    for item, reason in skipped:
        groups.setdefault(reason, []).append(item)
    parts = []
    for reason, items in groups.items():
        listed = ", ".join(items[:_MAX_LISTED])
        if len(items) > _MAX_LISTED:
            listed += f", ... {len(items) - _MAX_LISTED} more"
        parts.append(f"{len(items):,} {reason} ({listed})")
    return "; ".join(parts)


def prepare_dataset(
    kind: str,
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_root: str | os.PathLike[str],
    name: str | None = None,
    *,
    progress: bool | None = None,
    **options: Any,
) -> PrepareSummary:
    """Prepare raw ``inputs`` of dataset ``kind`` as ``output_root/<name>``.

    ``kind``: ``hugadb``, ``lara``, ``babel``, ``pkummd`` or ``ntu``. ``inputs``: folders
    and/or files (BABEL: the pickles; PKU-MMD: the skeleton files; NTU: the ``.skeleton``
    clips). ``name`` defaults to the kind's name (``babel<subset>`` for BABEL).
    ``options`` are the kind's options: hugadb ``exclude_corrupted``, ``pattern``; lara
    ``sample_rate``, ``root_joint``; babel ``subset`` (required), ``none_threshold``; pkummd
    ``labels`` (required), ``split``, ``split_file``, ``bodies``, ``actions``; ntu ``concat``
    (required), ``seed``, ``bodies``, ``sequences``. ``progress``: show a progress bar (None:
    only on a terminal).

    Raises :class:`~histvq.errors.RawFormatError` for bad raw files and
    :class:`~histvq.errors.ConfigError` for bad options or missing inputs; in both cases an
    existing ``output_root/<name>`` is left exactly as it was.
    """
    source = get_source(kind)
    opts = source.make_options(**options)
    paths = _as_paths(inputs)
    if not paths:
        raise ConfigError(f"prepare {kind}: no inputs given")
    name = name or source.default_name(opts)

    discovery = source.discover(paths, opts)
    skipped: list[Skipped] = list(discovery.skipped)
    if not discovery.files:
        where = ", ".join(str(p) for p in paths)
        detail = f" (skipped {len(skipped)}: {describe_skipped(skipped)})" if skipped else ""
        raise ConfigError(f"prepare {kind}: no input files to read in {where}{detail}")
    mapping = discovery.mapping if discovery.mapping is not None else source.mapping(opts)

    seen: dict[str, tuple[str, str]] = {}
    present: set[str] = set()
    bar = tqdm(
        discovery.files,
        desc=f"prepare {name}",
        unit="file",
        file=sys.stderr,
        disable=None if progress is None else not progress,
        leave=False,
        dynamic_ncols=True,
    )
    with LayoutWriter(output_root, name, mapping) as writer:
        for origin in bar:  # a file, or a group of files making one sequence
            for item in source.read(origin, opts):
                if isinstance(item, Skipped):
                    skipped.append(item)
                    continue
                digest = _digest(item)
                if item.name in seen:
                    first_digest, first_origin = seen[item.name]
                    if digest != first_digest:
                        raise RawFormatError(
                            f"{origin}: sequence {item.name!r} also comes from {first_origin} "
                            f"with different content; rename or remove one of them"
                        )
                    skipped.append(
                        Skipped(item.name, f"duplicate of an identical sequence in {first_origin}")
                    )
                    continue
                seen[item.name] = (digest, str(origin))
                writer.add(item.name, item.features, item.labels)
                present.update(item.labels)
        bar.close()
        if not writer.names:
            raise RawFormatError(
                f"prepare {kind}: no sequences left to write; skipped {len(skipped)}: "
                f"{describe_skipped(skipped)}; nothing was changed"
            )
    return PrepareSummary(
        name=name,
        path=writer.destination,
        sequences=len(writer.names),
        frames=writer.num_frames,
        labels=len(present),
        skipped=[(s.item, s.reason) for s in skipped],
        mapping_size=len(mapping),
    )


def _as_paths(inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(inputs, str | os.PathLike):
        return [Path(inputs).expanduser()]
    return [Path(p).expanduser() for p in inputs]


def _digest(sequence: RawSequence) -> str:
    """Content hash used to tell identical duplicates from conflicting ones."""
    h = hashlib.sha256()
    h.update(repr((sequence.features.shape, str(sequence.features.dtype))).encode())
    h.update(sequence.features.tobytes())
    h.update("\n".join(sequence.labels).encode())
    return h.hexdigest()


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
