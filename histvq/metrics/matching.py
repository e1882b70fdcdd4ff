"""Hungarian matching of predicted clusters to ground-truth labels, in two conventions.

Unsupervised segmentation predicts arbitrary cluster ids, so every score first maps
clusters to labels by maximising the frame overlap, once for the whole dataset
(``"global"``) or once per sequence (``"local"``). Two pairing conventions are supported
(``unmatched``, see :func:`match_predictions`): ``square_assignment``, as the reference code
that produced the published tables, and ``own_identity``. Both work on the prepared
:class:`~histvq.metrics.segments._Dataset`, never on frames; the result, a
:class:`_Matching`, maps segments to label ids for the scores in :mod:`.functional`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from histvq.errors import ConfigError
from histvq.metrics.names import MATCHINGS, UNMATCHED, unmatched_id
from histvq.metrics.segments import _Dataset, _prepare, _Segments


def _validate_matching(matching: str) -> None:
    if matching not in MATCHINGS:
        raise ConfigError(f"matching must be one of {MATCHINGS}, got {matching!r}")


def _validate_unmatched(unmatched: str) -> None:
    if unmatched not in UNMATCHED:
        raise ConfigError(f"eval.unmatched must be one of {UNMATCHED}, got {unmatched!r}")


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
