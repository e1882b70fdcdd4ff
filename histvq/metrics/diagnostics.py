"""Diagnostics of segmentations beyond the protocol's scores: where the scores' losses come
from, and what bounds them.

The patch grid's ceiling (:func:`patch_majority`), how much a patch's activity says about the
temporal loss's target (:func:`timestamp_predictability`), where predicted boundaries fall
against the true ones (:func:`boundary_agreement`, :func:`stray_boundaries_by_label`) and
what short segments cost (:func:`absorb_short_segments`). None of them changes how a run is
scored; ``python -m histvq.figures`` writes their tables beside the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from histvq.metrics.segments import MetricInputError, _as_label_arrays, segment_bounds


def patch_majority(labels: np.ndarray, patch_size: int) -> np.ndarray:
    """The labelling that gets the most frames right among those constant on fixed
    ``patch_size``-frame patches (from frame 0, the last one possibly shorter): each patch
    takes its most frequent label, the smallest on ties.

    A model that labels whole patches (HiST-VQ, SMQ) can do no better on MoF; scored like a
    prediction, it shows how much the patch grid alone costs each metric.
    """
    (array,) = _as_label_arrays("labels", [labels])
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)):
        raise MetricInputError(f"patch_size must be an integer, got {patch_size!r}")
    if patch_size < 1:
        raise MetricInputError(f"patch_size must be at least 1, got {patch_size}")
    if array.min() < 0:
        raise MetricInputError(f"labels must be non-negative, got {array.min()}")
    patch = np.arange(array.size) // int(patch_size)
    counts = np.zeros((int(patch[-1]) + 1, int(array.max()) + 1), dtype=np.int64)
    np.add.at(counts, (patch, array), 1)
    return counts.argmax(axis=1).astype(array.dtype)[patch]


def absorb_short_segments(labels: np.ndarray, max_length: int) -> np.ndarray:
    """``labels`` with every segment of at most ``max_length`` frames merged into a neighbour:
    repeatedly the shortest such segment (the earliest among equals) takes the label of its
    longer neighbour (the left one on a tie, the only one at either end), until none is
    left or the sequence is one segment.

    Not part of any protocol: scoring a prediction before and after shows how much of its
    Edit and F1 the short segments (e.g. single patches inside an activity) cost. Returns a
    new array; ``labels`` is left as it is.
    """
    (array,) = _as_label_arrays("labels", [labels])
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
        raise MetricInputError(f"max_length must be an integer, got {max_length!r}")
    if max_length < 0:
        raise MetricInputError(f"max_length must be non-negative, got {max_length}")
    result = array.copy()
    while True:
        values, starts, ends = segment_bounds(result)
        lengths = ends - starts
        short = np.flatnonzero(lengths <= max_length)
        if short.size == 0 or values.size == 1:
            return result
        index = int(short[np.argmin(lengths[short])])
        left = lengths[index - 1] if index > 0 else -1
        right = lengths[index + 1] if index + 1 < values.size else -1
        result[starts[index] : ends[index]] = values[index - 1 if left >= right else index + 1]


def timestamp_predictability(targets: Sequence[np.ndarray], patch_size: int) -> dict[str, float]:
    """How much a patch's true activity says about where in its sequence the patch lies.

    Every patch's timestamp is the temporal loss's target (its position among the
    sequence's patches, normalised to [0, 1]; 0 for a one-patch sequence). Returns that
    target's mean squared error under the best constant prediction (``constant``: its
    variance), under the mean timestamp of the patch's majority label (``per_label``: the
    floor of a decoder that reads one patch whose code names its activity exactly), and the
    share of the variance the label explains (``explained``, 0 to 1). A share near 0 means
    the activities come in no typical order, so predicting timestamps from patch codes
    teaches the encoder little about the actions.
    """
    arrays = _as_label_arrays("targets", targets)
    if not arrays:
        raise MetricInputError("targets: no sequences")
    labels, times = [], []
    for array in arrays:
        per_patch = patch_majority(array, patch_size)[:: int(patch_size)]
        labels.append(per_patch)
        times.append(np.arange(per_patch.size) / max(per_patch.size - 1, 1))
    label, time = np.concatenate(labels), np.concatenate(times)
    constant = float(np.mean((time - time.mean()) ** 2))
    counts = np.bincount(label).astype(np.float64)
    label_mean = np.bincount(label, weights=time) / np.maximum(counts, 1.0)
    per_label = float(np.mean((time - label_mean[label]) ** 2))
    explained = 1.0 - per_label / constant if constant > 0 else 0.0
    return {"constant": constant, "per_label": per_label, "explained": explained}


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Frames where a new segment starts (the first frame excluded)."""
    return segment_bounds(labels)[1][1:]


def _near(points: np.ndarray, references: np.ndarray, tolerance: int) -> np.ndarray:
    """Which of ``points`` lie within ``tolerance`` frames of a sorted reference point."""
    if points.size == 0 or references.size == 0:
        return np.zeros(points.size, dtype=bool)
    right = np.searchsorted(references, points).clip(max=references.size - 1)
    left = (right - 1).clip(min=0)
    distance = np.minimum(np.abs(references[right] - points), np.abs(references[left] - points))
    return distance <= tolerance


def _paired_boundaries(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray], tolerance: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validated (prediction, target) pairs of equal length, and a valid tolerance."""
    preds = _as_label_arrays("predictions", predictions)
    gts = _as_label_arrays("targets", targets)
    if len(preds) != len(gts):
        raise MetricInputError(f"{len(preds)} predictions but {len(gts)} targets")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)):
        raise MetricInputError(f"tolerance must be an integer, got {tolerance!r}")
    if tolerance < 0:
        raise MetricInputError(f"tolerance must be non-negative, got {tolerance}")
    for index, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        if pred.shape != gt.shape:
            raise MetricInputError(
                f"predictions[{index}] has {pred.size} frames but targets[{index}] {gt.size}"
            )
    return list(zip(preds, gts, strict=True))


def boundary_agreement(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray], tolerance: int
) -> dict[str, float]:
    """Where predicted segment boundaries fall against the true ones, over all sequences:
    whether extra segments sit at true transitions or cut through an activity.

    Returns ``precision`` (share of predicted boundaries within ``tolerance`` frames of a
    true boundary; NaN without predicted boundaries), ``recall`` (share of true boundaries
    within ``tolerance`` frames of a predicted one; NaN without true boundaries) and both
    counts. Labels are compared as they are (no matching): a boundary is any change of value.
    """
    counts = np.zeros(4, dtype=np.int64)  # predicted, near truth, true, found
    for pred, gt in _paired_boundaries(predictions, targets, tolerance):
        predicted, true = _boundaries(pred), _boundaries(gt)
        counts += (
            predicted.size,
            np.count_nonzero(_near(predicted, true, tolerance)),
            true.size,
            np.count_nonzero(_near(true, predicted, tolerance)),
        )
    predicted, near, true, found = (int(c) for c in counts)
    return {
        "predicted_boundaries": predicted,
        "true_boundaries": true,
        "precision": near / predicted if predicted else np.nan,
        "recall": found / true if true else np.nan,
    }


def stray_boundaries_by_label(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray], tolerance: int
) -> dict[int, tuple[int, int]]:
    """Per true label: how many predicted boundaries lie inside its segments farther than
    ``tolerance`` frames from every true boundary, and how many frames it has; which
    activities a model cuts into pieces. Labels without frames are absent."""
    stray: dict[int, int] = {}
    frames: dict[int, int] = {}
    for pred, gt in _paired_boundaries(predictions, targets, tolerance):
        predicted = _boundaries(pred)
        inside = gt[predicted[~_near(predicted, _boundaries(gt), tolerance)]]
        for label, count in zip(*np.unique(inside, return_counts=True), strict=True):
            stray[int(label)] = stray.get(int(label), 0) + int(count)
        for label, count in zip(*np.unique(gt, return_counts=True), strict=True):
            frames[int(label)] = frames.get(int(label), 0) + int(count)
    return {label: (stray.get(label, 0), frames[label]) for label in sorted(frames)}
