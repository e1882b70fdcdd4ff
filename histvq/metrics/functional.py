"""Segmentation metrics on plain numpy label arrays: MoF, Edit, F1@{10,25,50} and JSD.

Unsupervised segmentation predicts arbitrary cluster ids, so every score first maps clusters
to ground-truth labels with the Hungarian algorithm on the frame-overlap matrix, either once
for the whole dataset (``"global"``, the headline protocol) or once per sequence
(``"local"``). The definitions are spelled out in :func:`segmentation_scores`.

Everything here works on the whole dataset at once: frames are touched only to find segment
boundaries; overlap matrices, IoUs and length histograms are built from segments and from
the runs where neither side changes; Levenshtein runs as one batched row-wise DP. Evaluating
a HuGaDB-sized dataset (2.1M frames) takes about 10 ms, so training can evaluate every epoch. ``histvq.benchmark metrics`` checks the speed and the
agreement with a straightforward loop implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import jensenshannon

from histvq.errors import ConfigError, HistvqError

THRESHOLDS = (0.10, 0.25, 0.50)
METRIC_KEYS = ("mof", "edit", "f1@10", "f1@25", "f1@50", "jsd")
MATCHINGS = ("global", "local")
UNMATCHED = ("square_assignment", "own_identity")


class MetricInputError(HistvqError):
    """Predictions or targets handed to a metric are malformed (shape, dtype, values)."""


def unmatched_id(cluster: int | np.ndarray) -> int | np.ndarray:
    """The mapped value of a cluster that no label was assigned to: ``-1 - cluster``.

    It is negative, so it never equals a label id, and distinct per cluster, so two unmatched
    clusters never merge into one segment.
    """
    return -1 - cluster


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


def _validate_matching(matching: str) -> None:
    if matching not in MATCHINGS:
        raise ConfigError(f"matching must be one of {MATCHINGS}, got {matching!r}")


def _validate_unmatched(unmatched: str) -> None:
    if unmatched not in UNMATCHED:
        raise ConfigError(f"eval.unmatched must be one of {UNMATCHED}, got {unmatched!r}")


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


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class _Matching:
    """Mapped value of every compact cluster, per sequence (local) or shared (global)."""

    table: np.ndarray  # (C,) global, or (S, C) local: label id, or unmatched_id(cluster id)
    correct: int  # counted frames whose cluster is mapped to their label
    local: bool

    def of_segments(self, segments: _Segments) -> np.ndarray:
        if self.local:
            return self.table[segments.seq, segments.value]
        return self.table[segments.value]


def _assign(overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment maximising the total overlap; zero-overlap pairs discarded.

    ``overlap`` holds only clusters (rows) and labels (columns) that occur, i.e. that have
    counted frames. Discarding assigned pairs without overlap makes the result independent
    of how ties among zero entries are broken.
    """
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    keep = overlap[rows, cols] > 0
    return rows[keep], cols[keep]


def _counted_cells(data: _Dataset, group: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct (group, cluster, label) cells of counted pieces with their frame counts."""
    counted = data.piece_gt >= 0
    cluster = data.pred_segments.value[data.piece_pred[counted]]
    label = data.piece_label[counted]
    num_clusters, num_labels = data.cluster_ids.size, data.label_ids.size
    key = (group[counted] * num_clusters + cluster) * num_labels + label
    cells, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=data.piece_length[counted])
    return (
        cells // (num_clusters * num_labels),
        cells // num_labels % num_clusters,
        cells % num_labels,
        counts.astype(np.int64),
    )


def _match(data: _Dataset, matching: str, unmatched: str = "square_assignment") -> _Matching:
    if unmatched == "square_assignment":
        return _match_square(data, local=matching == "local")
    return _match_own_identity(data, matching)


def _square_pairs(overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's assignment on a (labels x clusters) overlap table: padded with zeros
    to a square, solved as a minimisation of the negated table, every returned pair inside
    the real rows and columns applied, zero-overlap pairs included."""
    num_labels, num_clusters = overlap.shape
    size = max(num_labels, num_clusters)
    square = np.zeros((size, size), dtype=np.int64)
    square[:num_labels, :num_clusters] = overlap
    rows, cols = linear_sum_assignment(-square)
    keep = (rows < num_labels) & (cols < num_clusters)
    return rows[keep], cols[keep]


def _match_square(data: _Dataset, local: bool) -> _Matching:
    """Hungarian matching as the reference code: per sequence (local) or over the dataset
    (global), a square table over every cluster that occurs and every label with counted
    frames, in increasing id order; every pair it returns maps a cluster to a label, even
    without overlap, and clusters beyond the labels keep their own identity."""
    num_clusters, num_labels = data.cluster_ids.size, data.label_ids.size
    num_groups = data.num_sequences if local else 1
    pred_group = data.pred_segments.seq if local else np.zeros_like(data.pred_segments.seq)
    gt_group = data.gt_segments.seq if local else np.zeros_like(data.gt_segments.seq)
    piece_group = pred_group[data.piece_pred]
    group, cluster, label, counts = _counted_cells(data, piece_group)
    cluster_keys = np.unique(pred_group * num_clusters + data.pred_segments.value)
    label_keys = np.unique(gt_group * num_labels + data.gt_segments.value)
    first_cluster = np.searchsorted(cluster_keys // num_clusters, np.arange(num_groups + 1))
    first_label = np.searchsorted(label_keys // num_labels, np.arange(num_groups + 1))
    cell_order = np.argsort(group, kind="stable")
    first_cell = np.searchsorted(group[cell_order], np.arange(num_groups + 1))
    table = np.broadcast_to(unmatched_id(data.cluster_ids), (num_groups, num_clusters)).copy()
    correct = 0
    for g in range(num_groups):
        clusters = cluster_keys[first_cluster[g] : first_cluster[g + 1]] % num_clusters
        labels = label_keys[first_label[g] : first_label[g + 1]] % num_labels
        if clusters.size == 0 or labels.size == 0:
            continue
        cells = cell_order[first_cell[g] : first_cell[g + 1]]
        overlap = np.zeros((labels.size, clusters.size), dtype=np.int64)
        overlap[
            np.searchsorted(labels, label[cells]), np.searchsorted(clusters, cluster[cells])
        ] = counts[cells]
        rows, cols = _square_pairs(overlap)
        table[g, clusters[cols]] = data.label_ids[labels[rows]]
        correct += int(overlap[rows, cols].sum())
    return _Matching(table if local else table[0], correct, local=local)


def _match_own_identity(data: _Dataset, matching: str) -> _Matching:
    unmatched = unmatched_id(data.cluster_ids)
    if matching == "global":
        group = np.zeros(data.piece_pred.size, dtype=np.int64)
        _, cluster, label, counts = _counted_cells(data, group)
        rows, row_of = np.unique(cluster, return_inverse=True)
        cols, col_of = np.unique(label, return_inverse=True)
        overlap = np.zeros((rows.size, cols.size), dtype=np.int64)
        overlap[row_of, col_of] = counts
        r, c = _assign(overlap)
        table = unmatched.copy()
        table[rows[r]] = data.label_ids[cols[c]]
        return _Matching(table, int(overlap[r, c].sum()), local=False)

    num_seq = data.num_sequences
    seq, cluster, label, counts = _counted_cells(data, data.pred_segments.seq[data.piece_pred])
    # Rank each cell's cluster and label among those occurring in its sequence, then lay the
    # per-sequence overlap matrices out in one zero-padded (S, rows, cols) array.
    row_keys, row_of = np.unique(seq * data.cluster_ids.size + cluster, return_inverse=True)
    col_keys, col_of = np.unique(seq * data.label_ids.size + label, return_inverse=True)
    row_seq = row_keys // data.cluster_ids.size
    col_seq = col_keys // data.label_ids.size
    first_row = np.searchsorted(row_seq, np.arange(num_seq + 1))
    first_col = np.searchsorted(col_seq, np.arange(num_seq + 1))
    num_rows, num_cols = np.diff(first_row), np.diff(first_col)
    row_in_seq = row_of.reshape(-1) - first_row[seq]
    col_in_seq = col_of.reshape(-1) - first_col[seq]
    blocks = np.zeros((num_seq, int(num_rows.max()), int(num_cols.max())), dtype=np.int64)
    blocks[seq, row_in_seq, col_in_seq] = counts
    assigned = []
    for s in np.flatnonzero(num_rows):
        r, c = linear_sum_assignment(blocks[s, : num_rows[s], : num_cols[s]], maximize=True)
        assigned.append((np.full(r.size, s), r, c))
    pair_seq, r, c = (np.concatenate(parts) for parts in zip(*assigned, strict=True))
    overlap = blocks[pair_seq, r, c]
    keep = overlap > 0  # as in _assign
    pair_seq, r, c = pair_seq[keep], r[keep], c[keep]
    table = np.broadcast_to(unmatched, (num_seq, data.cluster_ids.size)).copy()
    table[pair_seq, row_keys[first_row[pair_seq] + r] % data.cluster_ids.size] = data.label_ids[
        col_keys[first_col[pair_seq] + c] % data.label_ids.size
    ]
    return _Matching(table, int(overlap[keep].sum()), local=True)


def match_predictions(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    matching: str = "global",
    ignore_labels: Iterable[int] = (),
    unmatched: str = "square_assignment",
) -> tuple[list[np.ndarray], list[dict[int, int]]]:
    """Map predicted cluster ids to label ids by Hungarian matching on frame overlaps.

    Returns the mapped predictions (int64, one array per sequence) and the mappings used,
    ``{cluster id: label id}`` for matched clusters only: a single-element list for
    ``"global"`` and one dict per sequence for ``"local"``. A cluster without a label is
    mapped to :func:`unmatched_id` ``(cluster) = -1 - cluster``: negative, so it is never
    correct, and distinct per cluster.

    The overlap matrix counts frames by (cluster, label); frames whose target is in
    ``ignore_labels`` are left out, and ignored labels are never candidates. ``"global"``
    solves one assignment over the dataset, ``"local"`` one per sequence, with
    ``scipy.optimize.linear_sum_assignment`` (rows and columns in increasing id order).
    ``unmatched`` says which pairs count:

    - ``square_assignment`` (SMQ's reference code, which produced the paper's tables): the
      table is square over every cluster that occurs and every label with counted frames
      (zero-padded), and every pair it returns is applied, zero-overlap pairs included, so
      a cluster overlapping no label still gets one; only clusters beyond the number of
      labels stay unmatched.
    - ``own_identity``: a rectangular table over the clusters and labels that overlap, and
      pairs without overlap are dropped: such clusters keep their own identity.

    MoF is the same under both; Edit and F1 can differ (mostly for local matching).
    """
    _validate_matching(matching)
    _validate_unmatched(unmatched)
    data = _prepare(predictions, targets, ignore_labels)
    result = _match(data, matching, unmatched)
    segments = data.pred_segments
    mapped = np.repeat(result.of_segments(segments), segments.length)
    tables = list(result.table) if result.local else [result.table]
    mappings = [
        {
            int(cluster): int(label)
            for cluster, label in zip(data.cluster_ids, table, strict=True)
            if label >= 0
        }
        for table in tables
    ]
    return list(np.split(mapped, data.offsets[1:-1])), mappings


# ----------------------------------------------------------------------------- scores


def _pad(flat: np.ndarray, start: np.ndarray, count: np.ndarray, width: int) -> np.ndarray:
    """Rows ``flat[start[k] : start[k] + count[k]]``, right-padded (with junk) to ``width``."""
    if flat.size == 0 or width == 0:
        return np.zeros((start.size, width), dtype=flat.dtype)
    index = start[:, None] + np.arange(width)
    return flat[np.minimum(index, flat.size - 1)]


def _levenshtein_batch(
    rows: np.ndarray, n_rows: np.ndarray, cols: np.ndarray, n_cols: np.ndarray
) -> np.ndarray:
    """Levenshtein distances of many padded pairs at once, one DP row per step for all.

    ``rows`` is (height, pairs) and ``cols`` (width, pairs): pairs run along the fast axis,
    so every operation below is a few long vector operations whatever the pair count.
    Row i of the DP is ``D[i][j] = min(D[i-1][j] + 1, D[i-1][j-1] + cost, D[i][j-1] + 1)``.
    With ``E[i][j] = D[i][j] - j`` the first two terms give
    ``c[j] = min(E[i-1][j] + 1, E[i-1][j-1] + cost - 1)`` (``c[0] = i``) elementwise, and
    the insertion chain is a running minimum, ``E[i][j] = min_{k <= j} c[k]``
    (see :func:`_running_min`). Padding past a pair's own lengths never reaches its cells
    (the running minimum only looks at smaller j; rows past ``n_rows`` are read off before).
    """
    width, num = cols.shape
    result = n_cols.copy()  # pairs with no rows
    order = np.argsort(n_rows, kind="stable")
    finished = np.searchsorted(n_rows[order], np.arange(rows.shape[0] + 2))
    previous = np.zeros((width + 1, num), dtype=np.int32)
    current = np.empty_like(previous)
    spare = np.empty_like(previous)
    diagonal = np.empty((width, num), dtype=np.int32)
    for i in range(1, rows.shape[0] + 1):
        np.not_equal(cols, rows[i - 1], out=diagonal, casting="unsafe")
        diagonal += previous[:-1]
        diagonal -= 1
        current[0] = i
        np.add(previous[1:], 1, out=current[1:])
        np.minimum(current[1:], diagonal, out=current[1:])
        done_row, free = _running_min(current, spare)
        previous, current, spare = done_row, previous, free
        done = order[finished[i] : finished[i + 1]]
        if done.size:
            result[done] = previous[n_cols[done], done] + n_cols[done]
    return result


def _running_min(values: np.ndarray, scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running minimum along axis 0 in log2(rows) whole-array steps (Hillis-Steele).

    ``np.minimum.accumulate`` walks one short strided column at a time and is several times
    slower on these (rows, pairs) arrays. Returns (the buffer holding the result, the other
    buffer, free to reuse); both inputs are overwritten.
    """
    source, target = values, scratch
    shift = 1
    while shift < source.shape[0]:
        np.minimum(source[shift:], source[:-shift], out=target[shift:])
        target[:shift] = source[:shift]
        source, target = target, source
        shift *= 2
    return source, target


def _levenshtein_many(
    a: np.ndarray, a_seq: np.ndarray, b: np.ndarray, b_seq: np.ndarray, num: int
) -> np.ndarray:
    """Levenshtein distance between ``a[a_seq == k]`` and ``b[b_seq == k]`` for every k.

    Both inputs are flat and sorted by sequence. The shorter list of each pair becomes the
    DP rows, so the number of steps is the longest shorter list. All pairs share one padded
    batch unless padding would multiply the work; then they are bucketed by size.
    """
    a_count = np.bincount(a_seq, minlength=num)
    b_count = np.bincount(b_seq, minlength=num)
    a_start = np.r_[0, np.cumsum(a_count)[:-1]]
    b_start = np.r_[0, np.cumsum(b_count)[:-1]]
    swap = a_count > b_count
    n_rows = np.where(swap, b_count, a_count)
    n_cols = np.where(swap, a_count, b_count)
    padded = int(n_rows.max()) * num * int(n_cols.max())
    if padded <= max(8 * int(np.dot(n_rows, n_cols)), 1 << 20):
        buckets = [np.arange(num)]
    else:
        key = np.ceil(np.log2(n_rows + 1)) * 64 + np.ceil(np.log2(n_cols + 1))
        buckets = [np.flatnonzero(key == k) for k in np.unique(key)]
    result = np.empty(num, dtype=np.int64)
    for members in buckets:
        height = int(n_rows[members].max())
        width = int(n_cols[members].max())
        pad_a = _pad(a, a_start[members], a_count[members], max(height, width))
        pad_b = _pad(b, b_start[members], b_count[members], max(height, width))
        flip = swap[members, None]
        rows = np.where(flip, pad_b, pad_a)[:, :height].T.copy()
        cols = np.where(flip, pad_a, pad_b)[:, :width].T.copy()
        result[members] = _levenshtein_batch(rows, n_rows[members], cols, n_cols[members])
    return result


def _edit_score(data: _Dataset, pred_labels: np.ndarray, gt_labels: np.ndarray) -> float:
    num_seq = data.num_sequences
    distance = _levenshtein_many(
        pred_labels, data.pred_segments.seq, gt_labels, data.gt_segments.seq, num_seq
    )
    longest = np.maximum(
        np.bincount(data.pred_segments.seq, minlength=num_seq),
        np.bincount(data.gt_segments.seq, minlength=num_seq),
    )
    scores = np.where(longest > 0, 1.0 - distance / np.maximum(longest, 1), 1.0)
    return float(100.0 * scores.mean())


def _f1_scores(data: _Dataset, pred_labels: np.ndarray, gt_labels: np.ndarray) -> list[float]:
    """F1@k with the sequential hit rule, computed without looping over segments.

    Sequential rule: in time order, predicted segment j takes the same-label ground-truth
    segment g(j) of highest IoU u(j) (first on ties); it is a true positive iff
    u(j) >= t and g(j) was not hit before, and only true positives mark hits.
    Claim: #TP = #distinct g(j) over {j : u(j) >= t}. Only such j can be TPs, and only
    they mark hits. For each distinct g among them, the earliest such j finds g unhit (an
    earlier hit on g would come from an earlier such j with g(j) = g) and is a TP; every
    later one finds g hit and is a FP. Segments with u(j) < t are FPs that hit nothing,
    whatever g(j) is, so their choice of g never matters (and u(j) = 0 for all of them
    when no same-label segment overlaps). ``tests/test_metrics_functional.py`` checks
    this against the sequential loop on random cases.
    """
    pred = data.pred_segments
    gt = data.gt_segments
    piece_gt = data.piece_gt
    valid = piece_gt >= 0
    safe_gt = np.where(valid, piece_gt, 0)
    same = valid & (pred_labels[data.piece_pred] == gt_labels[safe_gt])
    union = pred.length[data.piece_pred] + gt.length[safe_gt] - data.piece_length
    iou = np.where(same, data.piece_length / union, 0.0)
    # Pieces are in time order, so each predicted segment's pieces are contiguous and ordered
    # by ground-truth segment: the first piece reaching the maximum is the first on ties.
    first_piece = np.searchsorted(data.piece_pred, np.arange(pred.start.size))
    best = np.maximum.reduceat(iou, first_piece)
    order = np.where(iou == best[data.piece_pred], np.arange(iou.size), iou.size)
    best_gt = safe_gt[np.minimum.reduceat(order, first_piece)]
    scores = []
    for threshold in THRESHOLDS:
        tp = int(np.count_nonzero(np.bincount(best_gt[best >= threshold], minlength=1)))
        if tp == 0:
            scores.append(0.0)
            continue
        precision = tp / pred.start.size
        recall = tp / gt.start.size
        scores.append(float(100.0 * 2.0 * precision * recall / (precision + recall)))
    return scores


def _jsd_score(data: _Dataset, bin_width: int, groups: np.ndarray) -> float:
    """Segment-length bias (HVQ's JSD), see :func:`segmentation_scores`."""
    num_seq = data.num_sequences
    pred = data.pred_segments
    gt = data.gt_segments
    bins_pred = pred.length // bin_width
    bins_gt = gt.length // bin_width
    # Bins empty in both histograms contribute nothing to the distance, so each sequence
    # only keeps its occupied bins, packed into columns (a small dense matrix).
    top = int(max(bins_pred.max(), bins_gt.max(initial=0))) + 1
    key_pred = pred.seq * top + bins_pred
    key_gt = gt.seq * top + bins_gt
    occupied = _sorted_union(key_pred, key_gt)
    occupied_seq = occupied // top
    first = np.searchsorted(occupied_seq, np.arange(num_seq))
    column = np.arange(occupied.size) - first[occupied_seq]
    width = int(column.max()) + 1
    cell = occupied_seq * width + column
    hist_pred = np.bincount(
        cell[np.searchsorted(occupied, key_pred)], minlength=num_seq * width
    ).reshape(num_seq, width)
    hist_gt = np.bincount(
        cell[np.searchsorted(occupied, key_gt)], minlength=num_seq * width
    ).reshape(num_seq, width)
    evaluated = hist_gt.any(axis=1)
    distance = np.zeros(num_seq)
    distance[evaluated] = 100.0 * jensenshannon(
        hist_pred[evaluated], hist_gt[evaluated], base=2, axis=1
    )
    _, group_index = np.unique(groups[evaluated], return_inverse=True)
    group_mean = np.bincount(group_index, weights=distance[evaluated]) / np.bincount(group_index)
    group_frames = np.bincount(group_index, weights=data.lengths[evaluated])
    return float(np.sum(group_mean * group_frames) / np.sum(group_frames))


def _scores_for(
    data: _Dataset, matching: str, bin_width: int, groups: np.ndarray, unmatched: str
) -> dict[str, float]:
    result = _match(data, matching, unmatched)
    pred_labels = result.of_segments(data.pred_segments)
    gt_labels = data.label_ids[data.gt_segments.value]
    f1 = _f1_scores(data, pred_labels, gt_labels)
    return {
        "mof": 100.0 * result.correct / data.num_counted,
        "edit": _edit_score(data, pred_labels, gt_labels),
        "f1@10": f1[0],
        "f1@25": f1[1],
        "f1@50": f1[2],
        "jsd": _jsd_score(data, bin_width, groups),
    }


def _validate_groups(groups: Sequence[int] | np.ndarray | None, num_seq: int) -> np.ndarray:
    if groups is None:
        return np.zeros(num_seq, dtype=np.int64)
    array = np.asarray(groups)
    if array.ndim != 1 or array.size != num_seq:
        raise MetricInputError(
            f"groups must hold one id per sequence ({num_seq}), got shape {array.shape}"
        )
    if array.dtype.kind not in "iu":
        raise MetricInputError(f"groups must be integer ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _validate_bin_width(bin_width: int) -> int:
    if isinstance(bin_width, bool) or not isinstance(bin_width, int | np.integer) or bin_width < 1:
        raise ConfigError(f"bin_width must be a positive integer (frames), got {bin_width!r}")
    return int(bin_width)


def evaluate_segmentation(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    matchings: Sequence[str] = MATCHINGS,
    bin_width: int = 20,
    ignore_labels: Iterable[int] = (),
    groups: Sequence[int] | np.ndarray | None = None,
    unmatched: str = "square_assignment",
) -> dict[str, dict[str, float]]:
    """:func:`segmentation_scores` for several matchings, sharing the preparation work."""
    for matching in matchings:
        _validate_matching(matching)
    _validate_unmatched(unmatched)
    bin_width = _validate_bin_width(bin_width)
    data = _prepare(predictions, targets, ignore_labels)
    group_array = _validate_groups(groups, data.num_sequences)
    return {m: _scores_for(data, m, bin_width, group_array, unmatched) for m in matchings}


def segmentation_scores(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    matching: str = "global",
    bin_width: int = 20,
    ignore_labels: Iterable[int] = (),
    groups: Sequence[int] | np.ndarray | None = None,
    unmatched: str = "square_assignment",
) -> dict[str, float]:
    """MoF, Edit, F1@{10,25,50} and JSD (keys :data:`METRIC_KEYS`, each in 0..100).

    ``predictions`` are per-sequence arrays of non-negative cluster ids, ``targets`` of
    non-negative label ids (same count, same length per sequence). Clusters are mapped to
    labels by :func:`match_predictions` (``matching`` is ``"global"`` or ``"local"``;
    ``unmatched`` is the pairing convention, ``square_assignment`` as the reference).
    Segments are maximal runs of one (mapped) value; ground-truth segments whose label is in
    ``ignore_labels`` are removed before Edit, F1 and JSD, and their frames do not count
    for MoF (predicted segments never carry an ignored label: those are not matched).

    - ``mof``: 100 x correct frames / counted frames.
    - ``edit``: per sequence 100 x (1 - Levenshtein(pred segment labels, gt segment labels)
      / max of the two lengths), 100 when both are empty; averaged over sequences.
    - ``f1@k``: in time order each predicted segment takes the ground-truth segment of the
      same label with the highest IoU (first on ties); a true positive if that IoU >= k/100
      and that segment was not hit before, else a false positive; unhit ground-truth
      segments are false negatives. Counts are summed over the dataset, then
      F1 = 100 x 2PR / (P + R), 0 when there is no true positive.
    - ``jsd`` (segment-length bias, HVQ, Spurio et al. 2025; lower is better): per sequence,
      histograms of predicted and ground-truth segment lengths in frames with ``bin_width``
      bins, compared by the Jensen-Shannon distance with log base 2 (scipy), x 100. Bins are
      aligned at 0 and half-open, a segment of length n falling in bin ``n // bin_width``
      (with 20: lengths 1-19, 20-39, ...), the plain ``numpy.histogram`` convention on the
      edges 0, w, 2w, .... The bin range is shared by both histograms and covers the
      longest segment; bins empty in both contribute nothing, so the upper end of the
      range does not matter, only the alignment does. HVQ's paper fixes the 20-frame
      width but not the alignment; its released evaluation notebook could not be read
      here, so this alignment is our documented choice. Distances are averaged per
      activity group (``groups``: one id per sequence, default a single group), then
      combined over groups weighted by each group's total frames. A sequence whose ground
      truth has no counted segment (all frames ignored) is left out of JSD.

    Matching never changes predicted segment boundaries (it is one-to-one), so JSD is the
    same for both matchings.
    """
    return evaluate_segmentation(
        predictions,
        targets,
        matchings=(matching,),
        bin_width=bin_width,
        ignore_labels=ignore_labels,
        groups=groups,
        unmatched=unmatched,
    )[matching]
