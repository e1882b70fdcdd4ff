"""The numbers behind the comparison figures, one CSV each: how finely runs segment
against the ground truth, where their boundaries fall, what the patch grid alone costs, and
what the runs' short segments cost their scores."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from histvq.figures.run_labels import RunLabels
from histvq.metrics import (
    absorb_short_segments,
    boundary_agreement,
    patch_majority,
    segment_statistics,
    segmentation_scores,
    stray_boundaries_by_label,
    timestamp_predictability,
)
from histvq.metrics.names import METRIC_KEYS, SCORE_KEYS

SEGMENT_COLUMNS = (
    "source", "sequences", "segments", "segments_per_sequence", "ratio_to_ground_truth",
    "median", "p10", "p90", "boundary_tolerance", "boundary_precision", "boundary_recall",
)  # fmt: skip


def _boundary_tolerance(runs: Sequence[RunLabels]) -> int:
    """How far (frames) a boundary may sit from a true one and still count as at it: one
    patch of the first run, 0 when its patch size is unknown."""
    return runs[0].patch_size or 0


def _aligned(
    labels: dict[str, np.ndarray], targets: dict[str, np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The label arrays of ``labels`` and the targets of the same sequences, in one order."""
    return list(labels.values()), [targets[name] for name in labels]


def _sources(
    runs: Sequence[RunLabels],
) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(name, labels, targets) of the ground truth of the first run's sequences (scored
    against itself), then of every run."""
    reference = runs[0]
    sources = [("ground truth", reference.targets, reference.targets)]
    return sources + [(run.name, run.predictions, run.targets) for run in runs]


def segment_table(runs: Sequence[RunLabels]) -> list[dict[str, str | float]]:
    """One row per source (the ground truth of the first run's sequences, then every run):
    how finely it segments, with its segments per sequence relative to the ground truth's,
    and how many of its boundaries lie within one patch of a true one and the reverse
    (:func:`boundary_agreement`; tolerance the first run's patch size, 0 when unknown):
    extra segments at true transitions or inside an activity."""
    tolerance = _boundary_tolerance(runs)
    rows: list[dict[str, str | float]] = []
    for name, labels, targets in _sources(runs):
        predicted, true = _aligned(labels, targets)
        agreement = boundary_agreement(predicted, true, tolerance)
        row: dict[str, str | float] = {
            "source": name,
            **segment_statistics(predicted),
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
    tolerance = _boundary_tolerance(runs)
    rows: list[dict[str, str | float]] = []
    for run in runs:
        counts = stray_boundaries_by_label(*_aligned(run.predictions, run.targets), tolerance)
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


PATCH_ORACLE_COLUMNS = (
    "source", "patch_size", "segments_per_sequence", *METRIC_KEYS,
    "timestamp_mse_constant", "timestamp_mse_per_label", "timestamp_variance_explained",
)  # fmt: skip


def patch_oracle_table(
    targets: Sequence[np.ndarray], patch_sizes: Sequence[int]
) -> list[dict[str, str | float]]:
    """One row per patch size: the scores (global matching) and segments per sequence of the
    ground truth relabelled with its majority label per patch (:func:`patch_majority`), the
    best MoF any model that labels whole patches can reach; the other scores show what the
    patch grid alone costs them. The ``timestamp_*`` columns say how well the patches'
    labels predict the temporal loss's target (:func:`timestamp_predictability`)."""
    rows: list[dict[str, str | float]] = []
    for size in patch_sizes:
        relabelled = [patch_majority(labels, size) for labels in targets]
        stats = segment_statistics(relabelled)
        timestamps = timestamp_predictability(targets, size)
        rows.append({
            "source": f"ground truth, majority label per {size}-frame patch",
            "patch_size": size,
            "segments_per_sequence": stats["segments_per_sequence"],
            **segmentation_scores(relabelled, list(targets)),
            "timestamp_mse_constant": timestamps["constant"],
            "timestamp_mse_per_label": timestamps["per_label"],
            "timestamp_variance_explained": timestamps["explained"],
        })  # fmt: skip
    return rows


SHORT_SEGMENT_COLUMNS = (
    "source", "max_length", "segments_per_sequence", "absorbed_segments_per_sequence",
    *SCORE_KEYS, *(f"absorbed_{key}" for key in SCORE_KEYS),
)  # fmt: skip


def short_segment_table(runs: Sequence[RunLabels], max_length: int) -> list[dict[str, str | float]]:
    """One row per source (the ground truth of the first run's sequences, then every run):
    its scores (global matching) as it is and after every segment of at most ``max_length``
    frames is merged into a neighbour (:func:`absorb_short_segments`), with its segments per
    sequence before and after. A run's rise in Edit is what its short segments cost it;
    the ground truth's fall is what merging costs a perfect segmentation (true short
    segments lost)."""
    rows: list[dict[str, str | float]] = []
    for name, labels, targets in _sources(runs):
        predicted, true = _aligned(labels, targets)
        absorbed = [absorb_short_segments(sequence, max_length) for sequence in predicted]
        scores = segmentation_scores(predicted, true)
        merged = segmentation_scores(absorbed, true)
        rows.append({
            "source": name,
            "max_length": max_length,
            "segments_per_sequence": segment_statistics(predicted)["segments_per_sequence"],
            "absorbed_segments_per_sequence": segment_statistics(absorbed)["segments_per_sequence"],
            **{key: scores[key] for key in SCORE_KEYS},
            **{f"absorbed_{key}": merged[key] for key in SCORE_KEYS},
        })  # fmt: skip
    return rows


def write_table(
    rows: Sequence[dict[str, str | float]], path: Path, columns: Sequence[str] = SEGMENT_COLUMNS
) -> Path:
    """Rows of one of the tables above as CSV with ``columns`` (numbers rounded to 4 decimals,
    enough for the timestamp errors of about 0.08)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
            )
    return path
