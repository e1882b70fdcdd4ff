"""Comparison figures of trained runs: ``python -m histvq.figures``.

::

    python -m histvq.figures --run SMQ=<run dir> --run HiST-VQ=<run dir> \\
        --sequence HuGaDB_v1_various_01_00 [--sequence ...] --out docs/figures [--prefix hugadb]

writes ``<prefix>_segment_lengths.png`` (the segment-length distributions of the ground
truth and of every run over all sequences, on a log length axis, as the paper's Fig. 3),
``<prefix>_segments.csv`` (the same as numbers: segments per sequence, their ratio to the
ground truth's, median and 10th/90th percentile lengths in frames, and the shares of
predicted boundaries within one patch of a true boundary and of true boundaries within one
patch of a predicted one), ``<prefix>_stray_boundaries.csv`` (per run and true label, the
predicted boundaries farther than one patch from any true boundary: which activities a
model cuts into pieces),
``<prefix>_patch_oracle.csv`` (the scores of the ground truth's majority label per patch of
the runs' patch size: what the patch grid alone costs, the ceiling of a model that labels
whole patches) and ``<prefix>_<sequence>.png`` per ``--sequence`` (the ground truth with every run's
segmentation stacked under it, as the paper's Fig. 4). Runs are training run folders: their
``predictions/<sequence>.txt`` (labels after the global matching) are compared with the
ground truth of the prepared dataset named in their ``.hydra/config.yaml``.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from histvq.data.layout import LABELS_DIR, MAPPING_DIR, MAPPING_FILE, read_labels, read_mapping
from histvq.errors import ConfigError, run_reporting_errors
from histvq.evaluation.plotting import plot_length_distributions, plot_segmentations
from histvq.metrics import (
    boundary_agreement,
    patch_majority,
    segment_lengths,
    segment_statistics,
    segmentation_scores,
    stray_boundaries_by_label,
)
from histvq.metrics.names import METRIC_KEYS, unmatched_id

PREDICTIONS_DIR = "predictions"


@dataclass
class RunLabels:
    """A run's per-frame predictions (label ids after matching; unmatched clusters negative)
    and the ground truth of its dataset, by sequence name, with the patch size it labels."""

    name: str
    label_names: dict[int, str]
    predictions: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    patch_size: int | None = None


def _dataset_folder(run: Path) -> tuple[Path, int | None]:
    """The prepared dataset of a run and its patch size, from its saved config (relative
    paths resolve against the project root, as in training)."""
    config = run / ".hydra" / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"--run {run}: not a training run folder (no .hydra/config.yaml)")
    os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
    saved = OmegaConf.load(config)
    try:
        data_dir = OmegaConf.select(saved, "dataset.data_dir")
        name = OmegaConf.select(saved, "dataset.name")
        patch_size = OmegaConf.select(saved, "dataset.patch_size")
    except OmegaConfBaseException as error:
        raise ConfigError(f"{config}: cannot resolve the dataset folder ({error})") from None
    if not data_dir or not name:
        raise ConfigError(f"{config}: no dataset.data_dir / dataset.name")
    if patch_size is not None and (not isinstance(patch_size, int) or patch_size < 1):
        raise ConfigError(f"{config}: dataset.patch_size must be a positive integer")
    return Path(str(data_dir)).expanduser() / str(name), patch_size


def load_run_labels(name: str, run: Path) -> RunLabels:
    """Read a run's predictions and its dataset's ground truth as label ids."""
    folder, patch_size = _dataset_folder(run)
    label_names = read_mapping(folder / MAPPING_DIR / MAPPING_FILE)
    ids = {label: i for i, label in label_names.items()}
    files = sorted((run / PREDICTIONS_DIR).glob("*.txt"))
    if not files:
        raise ConfigError(f"--run {run}: no {PREDICTIONS_DIR}/*.txt (eval.write_predictions?)")
    predictions, targets = {}, {}
    for file in files:
        names = read_labels(file)
        predictions[file.stem] = np.array([_label_id(n, ids, file) for n in names], np.int64)
        target = read_labels(folder / LABELS_DIR / file.name)
        targets[file.stem] = np.array([ids[n] for n in target], dtype=np.int64)
        if targets[file.stem].size != predictions[file.stem].size:
            raise ConfigError(f"{file}: {len(names)} frames but the ground truth has {len(target)}")
    return RunLabels(name, label_names, predictions, targets, patch_size)


def _label_id(name: str, ids: dict[str, int], file: Path) -> int:
    if name in ids:
        return ids[name]
    if name.startswith("cluster_") and name[len("cluster_") :].isdigit():
        return unmatched_id(int(name[len("cluster_") :]))
    raise ConfigError(f"{file}: {name!r} is neither a label of the dataset nor cluster_<id>")


SEGMENT_COLUMNS = (
    "source", "sequences", "segments", "segments_per_sequence", "ratio_to_ground_truth",
    "median", "p10", "p90", "boundary_tolerance", "boundary_precision", "boundary_recall",
)  # fmt: skip


def segment_table(runs: Sequence[RunLabels]) -> list[dict[str, str | float]]:
    """One row per source (the ground truth of the first run's sequences, then every run):
    how finely it segments, with its segments per sequence relative to the ground truth's,
    and how many of its boundaries lie within one patch of a true one and the reverse
    (:func:`boundary_agreement`; tolerance the first run's patch size, 0 when unknown):
    extra segments at true transitions or inside an activity."""
    reference = runs[0]
    tolerance = reference.patch_size or 0
    sources = [("ground truth", reference.targets, reference.targets)]
    sources += [(run.name, run.predictions, run.targets) for run in runs]
    rows: list[dict[str, str | float]] = []
    for name, labels, targets in sources:
        names = list(labels)
        agreement = boundary_agreement(
            [labels[k] for k in names], [targets[k] for k in names], tolerance
        )
        row: dict[str, str | float] = {
            "source": name,
            **segment_statistics([labels[k] for k in names]),
            "boundary_tolerance": tolerance,
            "boundary_precision": agreement["precision"],
            "boundary_recall": agreement["recall"],
        }
        rows.append(row)
    truth = float(rows[0]["segments_per_sequence"])
    for row in rows:
        row["ratio_to_ground_truth"] = float(row["segments_per_sequence"]) / truth
    return rows


STRAY_COLUMNS = (
    "source", "label", "frames", "boundary_tolerance", "stray_boundaries", "per_1000_frames",
)  # fmt: skip


def stray_boundary_table(runs: Sequence[RunLabels]) -> list[dict[str, str | float]]:
    """One row per run and true label: the run's predicted boundaries inside that label's
    segments, farther than one patch (the first run's patch size, 0 when unknown) from any
    true boundary (:func:`stray_boundaries_by_label`), and their rate per 1,000 frames of
    the label: which activities a model cuts into pieces."""
    tolerance = runs[0].patch_size or 0
    rows: list[dict[str, str | float]] = []
    for run in runs:
        names = list(run.predictions)
        counts = stray_boundaries_by_label(
            [run.predictions[k] for k in names], [run.targets[k] for k in names], tolerance
        )
        for label, (stray, frames) in counts.items():
            rows.append({
                "source": run.name,
                "label": run.label_names.get(label, str(label)),
                "frames": frames,
                "boundary_tolerance": tolerance,
                "stray_boundaries": stray,
                "per_1000_frames": 1000.0 * stray / frames,
            })  # fmt: skip
    return rows


PATCH_ORACLE_COLUMNS = ("source", "patch_size", "segments_per_sequence", *METRIC_KEYS)


def patch_oracle_table(
    targets: Sequence[np.ndarray], patch_sizes: Sequence[int]
) -> list[dict[str, str | float]]:
    """One row per patch size: the scores (global matching) and segments per sequence of the
    ground truth relabelled with its majority label per patch (:func:`patch_majority`), the
    best MoF any model that labels whole patches can reach; the other scores show what the
    patch grid alone costs them."""
    rows: list[dict[str, str | float]] = []
    for size in patch_sizes:
        relabelled = [patch_majority(labels, size) for labels in targets]
        stats = segment_statistics(relabelled)
        rows.append({
            "source": f"ground truth, majority label per {size}-frame patch",
            "patch_size": size,
            "segments_per_sequence": stats["segments_per_sequence"],
            **segmentation_scores(relabelled, list(targets)),
        })  # fmt: skip
    return rows


def write_segment_table(
    rows: Sequence[dict[str, str | float]], path: Path, columns: Sequence[str] = SEGMENT_COLUMNS
) -> Path:
    """The rows of :func:`segment_table` (or any rows with ``columns``) as CSV (numbers
    rounded to 0.01)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
            )
    return path


def draw(runs: Sequence[RunLabels], sequences: Sequence[str], out: Path, prefix: str) -> list[Path]:
    """The length distributions, their numbers (CSV) and the stacked segmentations; returns
    the files written."""
    reference = runs[0]
    lengths = {"ground truth": segment_lengths(list(reference.targets.values()))}
    for run in runs:
        lengths[run.name] = segment_lengths(list(run.predictions.values()))
    written = [
        plot_length_distributions(
            lengths, out / f"{prefix}_segment_lengths.png", title="Segment lengths"
        ),
        write_segment_table(segment_table(runs), out / f"{prefix}_segments.csv"),
        write_segment_table(
            stray_boundary_table(runs), out / f"{prefix}_stray_boundaries.csv", STRAY_COLUMNS
        ),
    ]
    if reference.patch_size is not None:
        oracle = patch_oracle_table(list(reference.targets.values()), [reference.patch_size])
        path = out / f"{prefix}_patch_oracle.csv"
        written.append(write_segment_table(oracle, path, PATCH_ORACLE_COLUMNS))
    for sequence in sequences:
        missing = [run.name for run in runs if sequence not in run.predictions]
        if missing:
            raise ConfigError(f"--sequence {sequence}: not among the predictions of {missing}")
        written.append(
            plot_segmentations(
                reference.targets[sequence],
                {run.name: run.predictions[sequence] for run in runs},
                reference.label_names,
                out / f"{prefix}_{sequence}.png",
                title=sequence,
            )
        )
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m histvq.figures", description=__doc__)
    parser.add_argument(
        "--run", action="append", required=True, metavar="NAME=DIR",
        help="a training run folder and the name it is shown under (repeatable)",
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
