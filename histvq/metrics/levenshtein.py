"""Levenshtein distances of many short label lists at once, for the Edit score.

Edit compares, per sequence, the list of predicted segment labels with the list of
ground-truth segment labels. A Python loop over sequences and DP cells would dominate the
evaluation time, so all pairs run as one batched row-wise DP with whole-array numpy
operations (:func:`_levenshtein_many`), bucketed by size only when padding would multiply
the work. ``histvq.benchmark metrics`` and ``tests/test_metrics_functional.py`` check it
against a plain loop.
"""

from __future__ import annotations

import numpy as np


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
