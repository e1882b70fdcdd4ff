"""Segments of label sequences, and the dataset preparation every metric shares.

Input validation (one-line :class:`MetricInputError`s naming the bad sequence), segment
boundaries and lengths, and :func:`_prepare`, which reduces all sequences at once to
segments and *pieces* (maximal runs where neither prediction nor target changes). It is
kept apart from matching and scoring because it is the only part that touches frames: the
matchings (:mod:`.matching`) and the scores (:mod:`.functional`) work on its
:class:`_Dataset` alone, so one preparation serves both matchings and every score. The
diagnostics built on segments (patch grid, boundaries, short segments) are in
:mod:`.diagnostics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from histvq.errors import HistvqError


class MetricInputError(HistvqError):
    """Predictions or targets handed to a metric are malformed (shape, dtype, values)."""


# ----------------------------------------------------------------------------- validation


def _as_label_arrays(name: str, sequences: Iterable[np.ndarray]) -> list[np.ndarray]:
    if isinstance(sequences, np.ndarray):
        raise MetricInputError(
            f"{name} must be a list of 1-D label arrays (one per sequence), got a single array"
        )
    arrays = []
    for index, sequence in enumerate(sequences):
        array = np.asarray(sequence)
        if array.ndim != 1:
            raise MetricInputError(
                f"{name}[{index}] must be 1-D (one label per frame), got shape {array.shape}"
            )
        if array.dtype.kind not in "iu":
            raise MetricInputError(f"{name}[{index}] must hold integers, got dtype {array.dtype}")
        if array.size == 0:
            raise MetricInputError(f"{name}[{index}] is empty; every sequence needs frames")
        arrays.append(array)
    return arrays


def _validate_ignore(ignore_labels: Iterable[int]) -> np.ndarray:
    try:
        ignore = np.asarray(sorted({int(label) for label in ignore_labels}), dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise MetricInputError(f"ignore_labels must be integers: {error}") from None
    return ignore


# ----------------------------------------------------------------------------- segments


def segment_bounds(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal labels in one sequence: (segment labels, starts, exclusive ends)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise MetricInputError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return labels[:0].copy(), empty, empty.copy()
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    return labels[starts], starts, ends


def segment_lengths(
    sequences: Sequence[np.ndarray], ignore_labels: Iterable[int] = ()
) -> np.ndarray:
    """Lengths (frames) of every segment of every sequence, ignored-label segments left out.

    Used for dataset-level length histograms (see :func:`histvq.plotting.plot_length_histograms`).
    """
    ignore = _validate_ignore(ignore_labels)
    lengths = []
    for labels in sequences:
        seg_labels, starts, ends = segment_bounds(np.asarray(labels))
        keep = ~np.isin(seg_labels, ignore) if ignore.size else slice(None)
        lengths.append((ends - starts)[keep])
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)


def segment_statistics(
    sequences: Sequence[np.ndarray], ignore_labels: Iterable[int] = ()
) -> dict[str, float]:
    """How finely a set of segmentations cuts its sequences: the numbers behind a
    segment-length histogram, to compare a model's segmentation with the ground truth's
    (over-segmentation shows as more segments per sequence and shorter lengths).

    Returns ``sequences``, ``segments``, ``segments_per_sequence`` and the ``median``,
    ``p10`` and ``p90`` segment lengths in frames (ignored-label segments left out;
    lengths NaN when no segment is left).
    """
    arrays = _as_label_arrays("sequences", sequences)
    lengths = segment_lengths(arrays, ignore_labels)
    has_lengths = lengths.size > 0
    p10, median, p90 = (
        np.percentile(lengths, [10, 50, 90]) if has_lengths else (np.nan, np.nan, np.nan)
    )
    return {
        "sequences": len(arrays),
        "segments": int(lengths.size),
        "segments_per_sequence": lengths.size / len(arrays) if arrays else np.nan,
        "median": float(median),
        "p10": float(p10),
        "p90": float(p90),
    }


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    if all(a.dtype == arrays[0].dtype for a in arrays):
        return np.concatenate(arrays)
    return np.concatenate([a.astype(np.int64) for a in arrays])


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of both arrays (``np.union1d`` without its slow hashing path)."""
    merged = np.concatenate([a, b])
    merged.sort()
    return merged[np.r_[True, merged[1:] != merged[:-1]]]


def _runs(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Start frame of every run of equal values, sequence starts always breaking a run."""
    change = np.empty(values.size, dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    change[offsets[:-1]] = True
    return np.flatnonzero(change)


def _check_non_negative(
    name: str, values: np.ndarray, starts: np.ndarray, offsets: np.ndarray
) -> None:
    """Every frame value is some run's value, so checking the runs checks every frame."""
    negative = np.flatnonzero(values < 0)
    if negative.size:
        frame = int(starts[negative[0]])
        index = int(np.searchsorted(offsets, frame, side="right") - 1)
        raise MetricInputError(
            f"{name}[{index}] has a negative label {int(values[negative[0]])} at frame "
            f"{frame - int(offsets[index])}; labels and cluster ids must be >= 0"
        )


@dataclass(frozen=True)
class _Segments:
    start: np.ndarray  # first frame (dataset-wide index)
    length: np.ndarray
    seq: np.ndarray  # sequence index
    value: np.ndarray  # compact cluster / label index


@dataclass(frozen=True)
class _Dataset:
    """All sequences, reduced to what the scores need and independent of the matching.

    Only segment boundaries need a pass over the frames; everything else works on
    segments and on *pieces*: maximal runs where neither prediction nor target changes.
    Each overlapping (predicted segment, ground-truth segment) pair is exactly one piece, so
    overlap matrices are sums of piece lengths.
    """

    lengths: np.ndarray
    offsets: np.ndarray  # (S + 1,)
    cluster_ids: np.ndarray  # (C,) original ids, sorted
    label_ids: np.ndarray  # (L,) original ids, sorted (ignored ones included)
    num_counted: int  # frames whose target label is not ignored
    pred_segments: _Segments
    gt_segments: _Segments  # ignored-label segments removed
    piece_pred: np.ndarray  # index into pred_segments
    piece_gt: np.ndarray  # index into gt_segments, -1 where the gt segment is ignored
    piece_length: np.ndarray
    piece_label: np.ndarray  # compact label index

    @property
    def num_sequences(self) -> int:
        return int(self.lengths.size)


def _prepare(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    ignore_labels: Iterable[int],
) -> _Dataset:
    predictions = _as_label_arrays("predictions", predictions)
    targets = _as_label_arrays("targets", targets)
    if not predictions:
        raise MetricInputError("no sequences to evaluate (predictions is empty)")
    if len(predictions) != len(targets):
        raise MetricInputError(
            f"got {len(predictions)} predicted sequences but {len(targets)} target sequences"
        )
    lengths = np.fromiter((p.size for p in predictions), dtype=np.int64, count=len(predictions))
    for index, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        if prediction.size != target.size:
            raise MetricInputError(
                f"sequence {index}: prediction has {prediction.size} frames but target has "
                f"{target.size}"
            )
    ignore = _validate_ignore(ignore_labels)
    offsets = np.r_[0, np.cumsum(lengths)]
    total = int(offsets[-1])
    seq_starts = offsets[:-1]

    pred = _concatenate(predictions)
    pred_start = _runs(pred, offsets)
    pred_raw = pred[pred_start].astype(np.int64)
    _check_non_negative("predictions", pred_raw, pred_start, offsets)
    del pred
    gt = _concatenate(targets)
    gt_start = _runs(gt, offsets)
    gt_raw = gt[gt_start].astype(np.int64)
    _check_non_negative("targets", gt_raw, gt_start, offsets)
    del gt

    cluster_ids, pred_value = np.unique(pred_raw, return_inverse=True)
    label_ids, gt_value = np.unique(gt_raw, return_inverse=True)
    pred_segments = _Segments(
        pred_start,
        np.diff(np.r_[pred_start, total]),
        np.searchsorted(seq_starts, pred_start, side="right") - 1,
        pred_value.reshape(-1),
    )
    gt_length = np.diff(np.r_[gt_start, total])
    kept = ~np.isin(label_ids, ignore)[gt_value.reshape(-1)]
    num_counted = int(gt_length[kept].sum())
    if num_counted == 0:
        raise MetricInputError(
            f"every frame has an ignored target label {ignore.tolist()}; nothing to evaluate"
        )
    gt_segments = _Segments(
        gt_start[kept],
        gt_length[kept],
        np.searchsorted(seq_starts, gt_start[kept], side="right") - 1,
        gt_value.reshape(-1)[kept],
    )

    piece_start = _sorted_union(pred_start, gt_start)
    piece_pred = np.searchsorted(pred_start, piece_start, side="right") - 1
    piece_gt_all = np.searchsorted(gt_start, piece_start, side="right") - 1
    renumber = np.cumsum(kept) - 1
    return _Dataset(
        lengths=lengths,
        offsets=offsets,
        cluster_ids=cluster_ids,
        label_ids=label_ids,
        num_counted=num_counted,
        pred_segments=pred_segments,
        gt_segments=gt_segments,
        piece_pred=piece_pred,
        piece_gt=np.where(kept[piece_gt_all], renumber[piece_gt_all], -1),
        piece_length=np.diff(np.r_[piece_start, total]),
        piece_label=gt_value.reshape(-1)[piece_gt_all],
    )
