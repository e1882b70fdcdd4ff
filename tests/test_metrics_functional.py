"""Segmentation metrics: hand-computed cases, a slow reference on random cases, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import jensenshannon

from histvq.errors import ConfigError, HistvqError
from histvq.metrics import (
    METRIC_KEYS,
    THRESHOLDS,
    MetricInputError,
    absorb_short_segments,
    boundary_agreement,
    evaluate_segmentation,
    match_predictions,
    patch_majority,
    segment_bounds,
    segment_lengths,
    segment_statistics,
    segmentation_scores,
    stray_boundaries_by_label,
    timestamp_predictability,
)
from histvq.metrics import functional as F


def arr(*runs: tuple[int, int]) -> np.ndarray:
    """Label array from (label, length) runs."""
    return np.concatenate([np.full(length, label, dtype=np.int64) for label, length in runs])


def scores(preds, gts, **kwargs):
    return segmentation_scores(
        [np.asarray(p) for p in preds], [np.asarray(g) for g in gts], **kwargs
    )


def assert_scores(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(METRIC_KEYS)
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-9), key


# ----------------------------------------------------------------------------- slow reference


def slow_segments(labels) -> list[tuple[int, int, int]]:
    """(label, start, end) by walking the frames."""
    segments: list[list[int]] = []
    for t, value in enumerate(labels):
        value = int(value)
        if segments and segments[-1][0] == value:
            segments[-1][2] = t + 1
        else:
            segments.append([value, t, t + 1])
    return [tuple(s) for s in segments]


def slow_assignment(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Hungarian on the overlap counts of (cluster, label) frame pairs, zero pairs dropped."""
    counts: dict[tuple[int, int], int] = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    clusters = sorted({c for c, _ in counts})
    labels = sorted({lab for _, lab in counts})
    matrix = np.zeros((len(clusters), len(labels)), dtype=np.int64)
    for (c, lab), n in counts.items():
        matrix[clusters.index(c), labels.index(lab)] = n
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return {clusters[r]: labels[c] for r, c in zip(rows, cols, strict=True) if matrix[r, c] > 0}


def slow_square_assignment(
    frames: list[tuple[int, int, bool]], clusters: set[int]
) -> dict[int, int]:
    """The reference convention, written plainly: a voting table with ground-truth labels as
    rows and clusters as columns (both sorted), zero-padded to a square, solved by
    minimising its negation; every pair inside the real rows and columns is applied."""
    labels = sorted({lab for _, lab, counted in frames if counted})
    columns = sorted(clusters)
    if not labels or not columns:
        return {}
    size = max(len(labels), len(columns))
    table = np.zeros((size, size))
    for cluster, label, counted in frames:
        if counted:
            table[labels.index(label), columns.index(cluster)] += 1
    rows, cols = linear_sum_assignment(-table)
    return {
        columns[c]: labels[r]
        for r, c in zip(rows, cols, strict=True)
        if r < len(labels) and c < len(columns)
    }


def slow_mappings(preds, gts, ignore, matching, unmatched="own_identity") -> list[dict[int, int]]:
    def counted_pairs(p, g):
        return [(int(c), int(lab)) for c, lab in zip(p, g, strict=True) if int(lab) not in ignore]

    def frames(p, g):
        return [(int(c), int(lab), int(lab) not in ignore) for c, lab in zip(p, g, strict=True)]

    if unmatched == "square_assignment":
        if matching == "global":
            every = [f for p, g in zip(preds, gts, strict=True) for f in frames(p, g)]
            clusters = {int(c) for p in preds for c in p}
            return [slow_square_assignment(every, clusters)] * len(preds)
        return [
            slow_square_assignment(frames(p, g), {int(c) for c in p})
            for p, g in zip(preds, gts, strict=True)
        ]
    if matching == "global":
        pairs = [pair for p, g in zip(preds, gts, strict=True) for pair in counted_pairs(p, g)]
        return [slow_assignment(pairs)] * len(preds)
    return [slow_assignment(counted_pairs(p, g)) for p, g in zip(preds, gts, strict=True)]


def classic_levenshtein(a: list[int], b: list[int]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[len(a)][len(b)]


def slow_scores(
    preds, gts, matching="global", bin_width=20, ignore=(), groups=None, unmatched="own_identity"
):
    ignore = set(ignore)
    mappings = slow_mappings(preds, gts, ignore, matching, unmatched)
    correct = counted = 0
    edits = []
    tp = dict.fromkeys(THRESHOLDS, 0)
    fp = dict.fromkeys(THRESHOLDS, 0)
    fn = dict.fromkeys(THRESHOLDS, 0)
    jsd_by_group: dict[int, list[float]] = {}
    frames_by_group: dict[int, int] = {}
    for index, (p, g) in enumerate(zip(preds, gts, strict=True)):
        mapping = mappings[index]
        mapped = [mapping.get(int(c), -1 - int(c)) for c in p]
        for m, lab in zip(mapped, g, strict=True):
            if int(lab) in ignore:
                continue
            counted += 1
            correct += m == int(lab)
        pred_segs = [s for s in slow_segments(mapped) if s[0] not in ignore]
        gt_segs = [s for s in slow_segments(g) if s[0] not in ignore]
        longest = max(len(pred_segs), len(gt_segs))
        if longest == 0:
            edits.append(100.0)
        else:
            distance = classic_levenshtein([s[0] for s in pred_segs], [s[0] for s in gt_segs])
            edits.append(100.0 * (1 - distance / longest))
        for threshold in THRESHOLDS:
            hits = [False] * len(gt_segs)
            for label, start, end in pred_segs:
                best, best_index = -1.0, None
                for k, (g_label, g_start, g_end) in enumerate(gt_segs):
                    if g_label != label:
                        continue
                    inter = max(0, min(end, g_end) - max(start, g_start))
                    union = (end - start) + (g_end - g_start) - inter
                    iou = inter / union
                    if iou > best:
                        best, best_index = iou, k
                if best_index is not None and best >= threshold and not hits[best_index]:
                    tp[threshold] += 1
                    hits[best_index] = True
                else:
                    fp[threshold] += 1
            fn[threshold] += hits.count(False)
        if gt_segs:
            pl = [e - s for _, s, e in pred_segs]
            gl = [e - s for _, s, e in gt_segs]
            nbins = max(max(pl), max(gl)) // bin_width + 1
            edges = np.arange(nbins + 1) * bin_width
            hp = np.histogram(pl, bins=edges)[0]
            hg = np.histogram(gl, bins=edges)[0]
            group = 0 if groups is None else int(groups[index])
            jsd_by_group.setdefault(group, []).append(100 * jensenshannon(hp, hg, base=2))
            frames_by_group[group] = frames_by_group.get(group, 0) + len(g)
    result = {"mof": 100.0 * correct / counted, "edit": float(np.mean(edits))}
    for threshold, key in zip(THRESHOLDS, ("f1@10", "f1@25", "f1@50"), strict=True):
        t, f_p, f_n = tp[threshold], fp[threshold], fn[threshold]
        precision = t / (t + f_p) if t + f_p else 0.0
        recall = t / (t + f_n) if t + f_n else 0.0
        result[key] = (
            100.0 * 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
    total = sum(frames_by_group.values())
    result["jsd"] = sum(
        float(np.mean(jsd_by_group[g])) * frames_by_group[g] / total for g in jsd_by_group
    )
    return result


def random_runs(rng: np.random.Generator, length: int, values: int, mean_run: float) -> np.ndarray:
    out = np.empty(length, dtype=np.int64)
    t = 0
    while t < length:
        run = 1 + rng.geometric(1.0 / mean_run)
        out[t : t + run] = rng.integers(values)
        t += run
    return out


def random_case(rng: np.random.Generator):
    num_seq = int(rng.integers(1, 6))
    num_labels = int(rng.integers(1, 6))
    num_clusters = int(rng.integers(1, 8))
    preds, gts = [], []
    for _ in range(num_seq):
        length = int(rng.integers(1, 70))
        gts.append(random_runs(rng, length, num_labels, rng.uniform(1, 12)))
        preds.append(random_runs(rng, length, num_clusters, rng.uniform(1, 12)) * 3 + 1)
    ignore = tuple(rng.choice(num_labels, size=int(rng.integers(0, 2)), replace=False).tolist())
    if all(np.isin(g, ignore).all() for g in gts):
        ignore = ()
    groups = rng.integers(0, 3, size=num_seq) if rng.random() < 0.5 else None
    bin_width = int(rng.integers(1, 8))
    return preds, gts, ignore, groups, bin_width


# ----------------------------------------------------------------------------- hand cases


PERFECT = dict.fromkeys(("mof", "edit", "f1@10", "f1@25", "f1@50"), 100.0) | {"jsd": 0.0}


@pytest.mark.parametrize("matching", ["global", "local"])
def test_perfect_prediction(matching):
    gt = [arr((0, 30), (1, 20), (2, 50)), arr((2, 10), (0, 25))]
    assert_scores(scores(gt, gt, matching=matching), PERFECT)


@pytest.mark.parametrize("matching", ["global", "local"])
def test_permuted_cluster_ids_score_like_perfect(matching):
    gt = [arr((0, 30), (1, 20), (2, 50)), arr((2, 10), (0, 25))]
    permutation = np.array([17, 4, 9])
    preds = [permutation[g] for g in gt]
    assert_scores(scores(preds, gt, matching=matching), PERFECT)
    mapped, mappings = match_predictions(preds, gt, matching=matching)
    assert all(np.array_equal(m, g) for m, g in zip(mapped, gt, strict=True))
    if matching == "global":
        assert mappings == [{17: 0, 4: 1, 9: 2}]
    else:
        assert mappings == [{17: 0, 4: 1, 9: 2}, {9: 2, 17: 0}]


def test_single_segment():
    assert_scores(scores([arr((5, 10))], [arr((3, 10))]), PERFECT)


def js_distance(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon distance, base 2, written out (independent of scipy)."""
    p = np.asarray(p, float) / sum(p)
    q = np.asarray(q, float) / sum(q)
    m = (p + q) / 2

    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)

    return math.sqrt((kl(p, m) + kl(q, m)) / 2)


def test_more_clusters_than_labels():
    gt = arr((0, 6), (1, 4))
    pred = arr((0, 4), (1, 2), (2, 4))  # cluster 1 is left without a label
    mapped, mappings = match_predictions([pred], [gt])
    assert mappings == [{0: 0, 2: 1}]
    assert mapped[0].tolist() == [0, 0, 0, 0, -2, -2, 1, 1, 1, 1]
    expected = {
        "mof": 80.0,
        "edit": 100 * (1 - 1 / 3),  # [0, u, 1] vs [0, 1]
        "f1@10": 80.0,  # TP 2, FP 1, FN 0
        "f1@25": 80.0,
        "f1@50": 80.0,  # IoUs 4/6 and 1
        # lengths pred 4, 2, 4 -> bins 1, 0, 1; gt 6, 4 -> bins 2, 1 (width 3)
        "jsd": 100 * js_distance([1, 2, 0], [0, 1, 1]),
    }
    assert_scores(scores([pred], [gt], bin_width=3), expected)


def test_fewer_clusters_than_labels():
    gt = arr((0, 5), (1, 3), (2, 2))
    pred = arr((7, 5), (9, 5))
    _, mappings = match_predictions([pred], [gt])
    assert mappings == [{7: 0, 9: 1}]
    expected = {
        "mof": 80.0,
        "edit": 100 * (1 - 1 / 3),  # [0, 1] vs [0, 1, 2]
        # IoUs 1 and 3/5; TP 2, FP 0, FN 1 -> P 1, R 2/3
        "f1@10": 80.0,
        "f1@25": 80.0,
        "f1@50": 80.0,
    }
    assert_scores(scores([pred], [gt]), expected)


def test_boundary_shifts_give_known_f1_per_threshold():
    gt = arr((0, 100), (1, 100), (2, 100), (3, 100))
    # IoUs: 100/130, 30/100, 100/140, 15/100, and a label-2 segment overlapping no label-2 gt.
    pred = arr((0, 130), (1, 30), (2, 140), (3, 15), (2, 85))
    f1 = lambda tp: 100 * 2 * tp / (5 + 4)  # noqa: E731  (P = tp/5, R = tp/4)
    expected = {
        "mof": 100 * 245 / 400,
        "edit": 100 * (1 - 1 / 5),
        "f1@10": f1(4),
        "f1@25": f1(3),
        "f1@50": f1(2),
    }
    assert_scores(scores([pred], [gt]), expected)
    assert expected["f1@10"] == pytest.approx(88.888888889)


def test_over_segmentation_edit_and_unconsumed_gt():
    gt = arr((0, 10), (1, 10))
    pred = arr((0, 3), (5, 2), (0, 5), (1, 10))  # cluster 5 unmatched
    # Edit: [0, u, 0, 1] vs [0, 1] -> 2 deletions over 4.
    # F1: segment [0,3) has IoU .3 (TP at 10/25, FP at 50); segment [5,10) has IoU .5 with
    # the same gt segment: FP at 10/25 (already hit), TP at 50 (the .3 segment hit nothing).
    expected = {"mof": 90.0, "edit": 50.0, "f1@10": 100 * 2 / 3, "f1@50": 100 * 2 / 3}
    assert_scores(scores([pred], [gt]), expected)


def test_iou_ties_take_the_first_ground_truth_segment():
    gt = arr((0, 4), (1, 2), (0, 4), (2, 20))
    pred = arr((2, 2), (0, 6), (2, 1), (0, 1), (2, 20))
    # Segment [2,8) ties at IoU .25 with gt [0,4) and [6,10) and takes the first, so segment
    # [9,10) (IoU .25 with [6,10)) is a TP too. Taking the second would make it a FP.
    _, mappings = match_predictions([pred], [gt])
    assert mappings == [{0: 0, 2: 2}]
    expected = {
        "f1@10": 100 * 2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4),
        "f1@25": 100 * 2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4),
        "f1@50": 100 * 2 * (1 / 5) * (1 / 4) / (1 / 5 + 1 / 4),
    }
    assert_scores(scores([pred], [gt]), expected)


def test_ignore_labels_drop_frames_segments_and_candidates():
    gt = arr((9, 4), (0, 4), (1, 4))
    pred = arr((2, 6), (3, 6))
    _, mappings = match_predictions([pred], [gt], ignore_labels=(9,))
    assert mappings == [{2: 0, 3: 1}]
    expected = {
        "mof": 75.0,
        "edit": 100.0,
        "f1@10": 100.0,
        "f1@25": 100.0,  # IoU 2/8 = .25 and 4/6
        "f1@50": 50.0,
        "jsd": 100.0,  # pred lengths 6, 6 (bin 1) vs gt 4, 4 (bin 0): disjoint
    }
    assert_scores(scores([pred], [gt], ignore_labels=(9,), bin_width=5), expected)
    # Without ignoring, label 9 is a candidate and its frames count.
    assert scores([pred], [gt], bin_width=5)["mof"] != 75.0


def test_groups_give_frame_weighted_jsd():
    gts = [arr((0, 5), (1, 5)), arr((0, 30)), arr((1, 20))]
    preds = [arr((0, 5), (1, 5)), arr((0, 10), (2, 10), (0, 10)), arr((1, 20))]
    # JSD per sequence (width 5): 0, 100 (bins 2 vs 6), 0.
    grouped = scores(preds, gts, bin_width=5, groups=[0, 1, 1])["jsd"]
    assert grouped == pytest.approx((0 * 10 + 50 * 50) / 60)
    assert scores(preds, gts, bin_width=5)["jsd"] == pytest.approx(100 / 3)


def test_zero_overlap_assignment_is_discarded_under_own_identity():
    gt = np.array([0, 0, 0, 0, 1, 0])
    pred = np.array([0, 0, 0, 0, 0, 1])
    # Overlap [[4, 1], [1, 0]]: the optimum pairs cluster 1 with label 1 at zero overlap.
    mapped, mappings = match_predictions([pred], [gt], unmatched="own_identity")
    assert mappings == [{0: 0}]
    assert mapped[0].tolist() == [0, 0, 0, 0, 0, -2]
    result = scores([pred], [gt], unmatched="own_identity")
    assert result["mof"] == pytest.approx(100 * 4 / 6)
    assert result["edit"] == pytest.approx(100 / 3)  # [0, u] vs [0, 1, 0]


def test_zero_overlap_pair_is_applied_under_the_reference_square_assignment():
    gt = np.array([0, 0, 0, 0, 1, 0])
    pred = np.array([0, 0, 0, 0, 0, 1])
    # Same case: the reference applies the zero-overlap pair, cluster 1 -> label 1.
    mapped, mappings = match_predictions([pred], [gt])
    assert mappings == [{0: 0, 1: 1}]
    assert mapped[0].tolist() == [0, 0, 0, 0, 0, 1]
    result = scores([pred], [gt])
    assert result["mof"] == pytest.approx(100 * 4 / 6)  # MoF: the same as own_identity
    assert result["edit"] == pytest.approx(100 * 2 / 3)  # [0, 1] vs [0, 1, 0]: one deletion


def test_square_assignment_leaves_clusters_beyond_the_labels_unmatched():
    gt = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([5, 5, 7, 7, 9, 9])
    # 3 clusters, 2 labels: a 3 x 3 table with a zero row; cluster 7 (one frame of each
    # label) loses to 5 (label 0) and 9 (label 1) and keeps its own identity.
    mapped, mappings = match_predictions([pred], [gt])
    assert mappings == [{5: 0, 9: 1}]
    assert mapped[0].tolist() == [0, 0, -8, -8, 1, 1]


def test_local_matching_maps_each_sequence_on_its_own():
    gts = [arr((0, 4)), arr((0, 4))]
    preds = [arr((0, 4)), arr((1, 4))]
    assert scores(preds, gts)["mof"] == 50.0
    assert scores(preds, gts, matching="local")["mof"] == 100.0
    _, mappings = match_predictions(preds, gts, matching="local")
    assert mappings == [{0: 0}, {1: 0}]


def test_segment_bounds_and_lengths():
    labels, starts, ends = segment_bounds(np.array([3, 3, 1, 1, 1, 3]))
    assert labels.tolist() == [3, 1, 3]
    assert starts.tolist() == [0, 2, 5]
    assert ends.tolist() == [2, 5, 6]
    assert [a.size for a in segment_bounds(np.array([], dtype=int))] == [0, 0, 0]
    lengths = segment_lengths([np.array([3, 3, 1, 1, 1, 3]), np.array([9, 1])], ignore_labels=[9])
    assert lengths.tolist() == [2, 3, 1, 1]


def test_segment_statistics_hand_checked():
    # segments of lengths 2, 3, 1 and 1, 1 (label 9 ignored in the second call)
    sequences = [np.array([3, 3, 1, 1, 1, 3]), np.array([9, 1])]
    stats = segment_statistics(sequences)
    assert stats["sequences"] == 2 and stats["segments"] == 5
    assert stats["segments_per_sequence"] == 2.5
    assert stats["median"] == 1.0
    assert stats["p10"] == pytest.approx(1.0) and stats["p90"] == pytest.approx(2.6)
    ignored = segment_statistics(sequences, ignore_labels=[9])
    assert ignored["segments"] == 4 and ignored["segments_per_sequence"] == 2.0
    assert ignored["median"] == 1.5
    empty = segment_statistics([np.array([9, 9])], ignore_labels=[9])
    assert empty["segments"] == 0 and np.isnan(empty["median"])
    with pytest.raises(MetricInputError, match=r"sequences\[0\]"):
        segment_statistics([np.zeros((2, 2), dtype=int)])


def test_patch_majority_hand_checked():
    labels = np.array([0, 0, 1, 1, 1, 0, 2])
    # patches [0 0 1] [1 1 0] [2]: majorities 0, 1 and the short last patch's 2
    assert patch_majority(labels, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]
    # a tie takes the smaller label: [0 0 1 1] -> 0, [1 0 2] -> 0 (all once: smallest)
    assert patch_majority(labels, 4).tolist() == [0, 0, 0, 0, 0, 0, 0]
    assert patch_majority(labels, 1).tolist() == labels.tolist()
    assert patch_majority(labels, 100).tolist() == [0] * 7  # 3 x 0, 3 x 1: tie -> 0
    assert patch_majority(np.array([5, 5, 4], dtype=np.int32), 2).dtype == np.int32


@pytest.mark.parametrize(
    ("labels", "size", "message"),
    [
        (np.array([0, 1]), 0, "at least 1"),
        (np.array([0, 1]), 2.0, "must be an integer"),
        (np.array([0, -1]), 2, "non-negative"),
        (np.array([], dtype=int), 2, "empty"),
        (np.array([0.5, 1.0]), 2, "integers"),
    ],
)
def test_patch_majority_rejects_bad_input(labels, size, message):
    with pytest.raises(MetricInputError, match=message):
        patch_majority(labels, size)


def test_absorb_short_segments_hand_checked():
    flicker = np.array([0] * 5 + [1] * 2 + [0] * 5)
    assert absorb_short_segments(flicker, 2).tolist() == [0] * 12
    assert absorb_short_segments(flicker, 1).tolist() == flicker.tolist()  # 2 frames > 1
    # a tie between neighbours goes left; at an end the only neighbour wins
    assert absorb_short_segments(np.array([0, 0, 1, 2, 2]), 1).tolist() == [0, 0, 0, 2, 2]
    assert absorb_short_segments(np.array([3, 0, 0, 0]), 1).tolist() == [0, 0, 0, 0]
    # shortest first: the 1 (one frame) joins the longer 0s, then the 2s (two frames) sit
    # between four 0s and four 5s and go left
    labels = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5])
    assert absorb_short_segments(labels, 2).tolist() == [0] * 6 + [5] * 4
    # all short: merged down to one segment, never fewer
    assert absorb_short_segments(np.array([0, 1, 0, 1]), 1).tolist() == [1, 1, 1, 1]
    assert absorb_short_segments(np.array([7, 7]), 5).tolist() == [7, 7]
    assert absorb_short_segments(labels, 0).tolist() == labels.tolist()
    assert labels.tolist() == [0, 0, 0, 1, 2, 2, 5, 5, 5, 5]  # the input is left alone
    assert absorb_short_segments(labels.astype(np.int32), 2).dtype == np.int32


def test_absorb_short_segments_properties_on_random_sequences():
    rng = np.random.default_rng(3)
    for _ in range(200):
        labels = np.repeat(rng.integers(0, 4, 12), rng.integers(1, 6, 12))
        max_length = int(rng.integers(0, 5))
        result = absorb_short_segments(labels, max_length)
        values, starts, ends = segment_bounds(result)
        assert values.size == 1 or (ends - starts).min() > max_length
        assert values.size <= segment_bounds(labels)[0].size
        # frames of segments longer than max_length keep their label
        _, old_starts, old_ends = segment_bounds(labels)
        for start, end in zip(old_starts, old_ends, strict=True):
            if end - start > max_length:
                assert (result[start:end] == labels[start:end]).all()


@pytest.mark.parametrize(
    ("labels", "max_length", "message"),
    [
        (np.array([0, 1]), -1, "non-negative"),
        (np.array([0, 1]), 1.5, "must be an integer"),
        (np.array([], dtype=int), 1, "empty"),
        (np.zeros((2, 2), dtype=int), 1, "1-D"),
    ],
)
def test_absorb_short_segments_rejects_bad_input(labels, max_length, message):
    with pytest.raises(MetricInputError, match=message):
        absorb_short_segments(labels, max_length)


def test_boundary_agreement_hand_checked():
    preds = [np.array([0, 0, 1, 1, 1, 1, 2, 2]), np.array([4, 4, 4])]  # boundaries 2, 6; none
    gts = [np.array([0, 0, 0, 1, 1, 1, 1, 1]), np.array([1, 1, 2])]  # boundaries 3; 2
    exact = boundary_agreement(preds, gts, tolerance=0)
    assert exact == {
        "predicted_boundaries": 2,
        "true_boundaries": 2,
        "precision": 0.0,
        "recall": 0.0,
    }
    one = boundary_agreement(preds, gts, tolerance=1)  # 2 is one frame from 3
    assert (one["precision"], one["recall"]) == (0.5, 0.5)
    three = boundary_agreement(preds, gts, tolerance=3)  # 6 is three frames from 3
    assert (three["precision"], three["recall"]) == (1.0, 0.5)
    flat = boundary_agreement([np.array([1, 1])], [np.array([2, 2])], tolerance=5)
    assert np.isnan(flat["precision"]) and np.isnan(flat["recall"])


def test_boundary_agreement_matches_pairwise_distances_on_random_cases():
    rng = np.random.default_rng(7)
    for _ in range(100):
        length, tolerance = int(rng.integers(1, 40)), int(rng.integers(0, 6))
        pred = np.repeat(rng.integers(0, 3, length), rng.integers(1, 4, length))
        gt = np.repeat(rng.integers(0, 3, length), rng.integers(1, 4, length))
        size = min(pred.size, gt.size)
        pred, gt = pred[:size], gt[:size]
        pb = [i for i in range(1, size) if pred[i] != pred[i - 1]]
        gb = [i for i in range(1, size) if gt[i] != gt[i - 1]]
        near = sum(any(abs(p - g) <= tolerance for g in gb) for p in pb)
        found = sum(any(abs(g - p) <= tolerance for p in pb) for g in gb)
        result = boundary_agreement([pred], [gt], tolerance)
        assert result["predicted_boundaries"] == len(pb) and result["true_boundaries"] == len(gb)
        if pb:
            assert result["precision"] == near / len(pb)
        if gb:
            assert result["recall"] == found / len(gb)


def test_stray_boundaries_by_label_hand_checked():
    # true: label 0 on frames 0-5, label 1 on 6-9 (boundary 6); label 2 absent
    gt = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([5, 5, 6, 6, 6, 7, 7, 8, 9, 9])  # boundaries 2, 5, 7, 8
    exact = stray_boundaries_by_label([pred], [gt], tolerance=0)
    assert exact == {0: (2, 6), 1: (2, 4)}  # 2, 5 inside label 0; 7, 8 inside label 1
    one = stray_boundaries_by_label([pred], [gt], tolerance=1)  # 5 and 7 are one frame off
    assert one == {0: (1, 6), 1: (1, 4)}
    two = stray_boundaries_by_label([pred, np.array([3, 3])], [gt, np.array([1, 1])], 2)
    assert two == {0: (1, 6), 1: (0, 6)}  # 8 is two frames off; the second adds 2 frames


@pytest.mark.parametrize(
    ("preds", "gts", "tolerance", "message"),
    [
        ([np.array([0, 1])], [np.array([0, 1, 1])], 1, r"predictions\[0\] has 2 frames"),
        ([np.array([0, 1])], [np.array([0, 1]), np.array([1])], 1, "1 predictions but 2"),
        ([np.array([0, 1])], [np.array([0, 1])], -1, "non-negative"),
        ([np.array([0, 1])], [np.array([0, 1])], 1.5, "must be an integer"),
    ],
)
def test_boundary_agreement_rejects_bad_input(preds, gts, tolerance, message):
    with pytest.raises(MetricInputError, match=message):
        boundary_agreement(preds, gts, tolerance)


# ----------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("unmatched", ["square_assignment", "own_identity"])
@pytest.mark.parametrize("matching", ["global", "local"])
def test_matches_slow_reference_on_random_cases(matching, unmatched):
    rng = np.random.default_rng(1234 if matching == "global" else 4321)
    for _ in range(150):
        preds, gts, ignore, groups, bin_width = random_case(rng)
        fast = segmentation_scores(
            preds, gts, matching=matching, bin_width=bin_width, ignore_labels=ignore,
            groups=groups, unmatched=unmatched,
        )  # fmt: skip
        slow = slow_scores(preds, gts, matching, bin_width, ignore, groups, unmatched)
        for key in METRIC_KEYS:
            assert fast[key] == pytest.approx(slow[key], abs=1e-4), (key, preds, gts, ignore)
        mapped, mappings = match_predictions(
            preds, gts, matching=matching, ignore_labels=ignore, unmatched=unmatched
        )
        reference = slow_mappings(preds, gts, set(ignore), matching, unmatched)
        assert mappings == (reference[:1] if matching == "global" else reference)
        for m, p, mapping in zip(mapped, preds, reference, strict=True):
            assert m.tolist() == [mapping.get(int(c), -1 - int(c)) for c in p]


def test_hungarian_total_is_the_brute_force_optimum():
    rng = np.random.default_rng(99)
    for _ in range(60):
        preds, gts, _, _, _ = random_case(rng)
        frames = len(np.concatenate(gts))
        pairs = {}
        for c, lab in zip(np.concatenate(preds), np.concatenate(gts), strict=True):
            pairs[(int(c), int(lab))] = pairs.get((int(c), int(lab)), 0) + 1
        clusters = sorted({c for c, _ in pairs})
        labels = sorted({lab for _, lab in pairs})
        best = 0
        if len(clusters) <= len(labels):
            for chosen in itertools.permutations(labels, len(clusters)):
                best = max(
                    best, sum(pairs.get(pair, 0) for pair in zip(clusters, chosen, strict=True))
                )
        else:
            for chosen in itertools.permutations(clusters, len(labels)):
                best = max(
                    best, sum(pairs.get(pair, 0) for pair in zip(chosen, labels, strict=True))
                )
        assert segmentation_scores(preds, gts)["mof"] == pytest.approx(100 * best / frames)


def levenshtein_via_fast(rows: list[np.ndarray], cols: list[np.ndarray]) -> list[int]:
    seq_a = np.repeat(np.arange(len(rows)), [r.size for r in rows])
    seq_b = np.repeat(np.arange(len(cols)), [c.size for c in cols])
    return F._levenshtein_many(
        np.concatenate(rows), seq_a, np.concatenate(cols), seq_b, len(rows)
    ).tolist()


@pytest.mark.parametrize("spread", [30, 3000])
def test_batched_levenshtein_matches_classic_dp(spread):
    rng = np.random.default_rng(spread)
    sizes = [int(rng.integers(0, 30)) for _ in range(200)]
    if spread > 30:  # one long pair forces the size buckets
        sizes[0] = 400
    rows = [rng.integers(0, 4, size=n) for n in sizes]
    cols = [rng.integers(-2, 4, size=int(rng.integers(0, 30))) for _ in range(200)]
    cols[0] = rng.integers(0, 4, size=500 if spread > 30 else 3)
    rows.append(np.zeros(0, dtype=np.int64))
    cols.append(np.zeros(0, dtype=np.int64))
    slow = [classic_levenshtein(r.tolist(), c.tolist()) for r, c in zip(rows, cols, strict=True)]
    assert levenshtein_via_fast(rows, cols) == slow


def test_evaluate_segmentation_matches_single_calls():
    rng = np.random.default_rng(11)
    preds, gts, ignore, groups, width = random_case(rng)
    both = evaluate_segmentation(preds, gts, bin_width=width, ignore_labels=ignore, groups=groups)
    for matching in ("global", "local"):
        assert both[matching] == segmentation_scores(
            preds, gts, matching, bin_width=width, ignore_labels=ignore, groups=groups
        )
    assert both["global"]["jsd"] == both["local"]["jsd"]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("preds", "gts", "message"),
    [
        ([np.zeros(3, int)], [np.zeros(3, int), np.zeros(2, int)], "1 predicted sequences but 2"),
        ([np.zeros(3, int), np.zeros(4, int)], [np.zeros(3, int)] * 2, "sequence 1: prediction"),
        ([np.zeros((2, 3), int)], [np.zeros(3, int)], r"predictions\[0\] must be 1-D"),
        ([np.zeros(3)], [np.zeros(3, int)], r"predictions\[0\] must hold integers"),
        (
            [np.zeros(3, int), np.zeros(0, int)],
            [np.zeros(3, int)] * 2,
            r"predictions\[1\] is empty",
        ),
        (
            [np.zeros(3, int)] * 2,
            [np.zeros(3, int), np.array([0, -1, 0])],
            r"targets\[1\].*frame 1",
        ),
        ([], [], "no sequences"),
        (np.zeros((2, 3), int), [np.zeros(3, int)] * 2, "single array"),
    ],
)
def test_bad_input_is_a_clear_error(preds, gts, message):
    with pytest.raises(MetricInputError, match=message):
        segmentation_scores(preds, gts)


def test_bad_options_are_clear_errors():
    gt = [np.zeros(4, dtype=int)]
    with pytest.raises(ConfigError, match="matching must be one of"):
        segmentation_scores(gt, gt, matching="hungarian")
    with pytest.raises(ConfigError, match="bin_width"):
        segmentation_scores(gt, gt, bin_width=0)
    with pytest.raises(MetricInputError, match="one id per sequence"):
        segmentation_scores(gt, gt, groups=[0, 1])
    with pytest.raises(MetricInputError, match="every frame has an ignored"):
        segmentation_scores(gt, gt, ignore_labels=[0])
    assert issubclass(MetricInputError, HistvqError)


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_loop_version_and_command(tmp_path, capsys):
    import json

    from histvq.benchmark.__main__ import main
    from histvq.benchmark.metrics import generate_case, loop_segmentation_scores

    preds, gts = generate_case(sequences=4, seed=3)
    assert all(2000 <= g.size <= 9600 for g in gts)
    assert len(np.unique(np.concatenate(preds))) == 13  # 12 permuted labels + the extra one
    for matching in ("global", "local"):
        fast = segmentation_scores(preds, gts, matching=matching)
        loops = loop_segmentation_scores(preds, gts, matching=matching)
        assert fast == pytest.approx(loops, abs=1e-9)
    assert (
        main(["metrics", "--sequences", "3", "--repeats", "1", "--json", str(tmp_path / "b.json")])
        == 0
    )
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["sequences"] == 3 and report["global"]["max_abs_difference"] < 1e-6
    assert "speed-up" in capsys.readouterr().out


def test_timestamp_predictability_hand_checked():
    # patches of 2: [0 0][1 1] at timestamps 0, 1; [1 1][1 1][1 0] -> 1, 1, 0 (a tie goes
    # to the smaller label) at 0, 0.5, 1; one patch [2 2] at timestamp 0
    targets = [np.array([0, 0, 1, 1]), np.array([1, 1, 1, 1, 1, 0]), np.array([2, 2])]
    result = timestamp_predictability(targets, 2)
    times = np.array([0.0, 1.0, 0.0, 0.5, 1.0, 0.0])
    assert result["constant"] == pytest.approx(times.var())
    # label 0: {0, 1} around 0.5; label 1: {1, 0, 0.5} around 0.5; label 2: {0}
    per_label = (0.5**2 * 2 + 0.5**2 * 2 + 0.0) / 6
    assert result["per_label"] == pytest.approx(per_label)
    assert result["explained"] == pytest.approx(1 - per_label / times.var())
    ordered = [np.array([0, 0, 1, 1, 2, 2])] * 3  # the same order every time: fully explained
    assert timestamp_predictability(ordered, 2)["explained"] == pytest.approx(1.0)
    with pytest.raises(MetricInputError, match="no sequences"):
        timestamp_predictability([], 2)
