"""``python -m histvq.benchmark metrics``: fast metrics vs a straightforward loop version.

Builds a reproducible HuGaDB-sized case (364 sequences of 2,000-9,600 frames, 12 labels,
about 2.1M frames; predictions are permuted cluster ids with jittered boundaries, short
spurious segments and an extra cluster), times
:func:`histvq.metrics.functional.segmentation_scores` for both matchings against
:func:`loop_segmentation_scores`, checks that they agree to 1e-6 and prints the speed-up.

The loop version lives here, not in the library: it is the baseline the fast code is
measured and checked against (per-frame and per-segment Python loops, the classic
Levenshtein table), written the way evaluation scripts in this literature usually are.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import jensenshannon

from histvq.errors import HistvqError
from histvq.metrics.functional import METRIC_KEYS, THRESHOLDS, segmentation_scores

NAME = "metrics"
HELP = "time the segmentation metrics against a straightforward loop version"
TOLERANCE = 1e-6


# ----------------------------------------------------------------------------- the case


def generate_case(
    sequences: int = 364,
    seed: int = 0,
    num_labels: int = 12,
    min_frames: int = 2000,
    max_frames: int = 9600,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(predictions, targets) of a seeded synthetic dataset shaped like HuGaDB.

    Ground truth: segments of log-normal length (median ~300 frames, at least 30), labels
    drawn without immediate repeats. Predictions: labels relabelled by a random permutation
    of cluster ids, every boundary moved by up to 25 frames, one in three segments broken
    by a 5-40 frame spurious segment, and one in ten segments given an extra cluster that
    matches no label.
    """
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(num_labels)
    extra_cluster = num_labels
    predictions, targets = [], []
    for length in rng.integers(min_frames, max_frames + 1, size=sequences):
        seg_lengths = np.maximum(30, rng.lognormal(np.log(300), 0.8, size=length // 30 + 1))
        ends = np.cumsum(seg_lengths.astype(np.int64))
        ends = np.r_[ends[ends < length], length]
        starts = np.r_[0, ends[:-1]]
        labels = np.empty(ends.size, dtype=np.int64)
        labels[0] = rng.integers(num_labels)
        for k in range(1, ends.size):
            labels[k] = (labels[k - 1] + rng.integers(1, num_labels)) % num_labels
        target = np.repeat(labels, ends - starts)
        prediction = permutation[target]
        for k in np.flatnonzero(rng.random(ends.size) < 0.1):
            prediction[starts[k] : ends[k]] = extra_cluster
        for boundary in starts[1:]:
            shift = int(rng.integers(-25, 26))
            if shift > 0:
                prediction[boundary : boundary + shift] = prediction[boundary - 1]
            elif shift < 0:
                prediction[boundary + shift : boundary] = prediction[boundary]
        for k in np.flatnonzero(rng.random(ends.size) < 1 / 3):
            size = int(rng.integers(5, 41))
            if ends[k] - starts[k] > size + 2:
                at = int(rng.integers(starts[k] + 1, ends[k] - size))
                prediction[at : at + size] = rng.integers(num_labels + 1)
        predictions.append(prediction)
        targets.append(target)
    return predictions, targets


# ----------------------------------------------------------------------------- loop version


def _segments(labels: list[int]) -> list[tuple[int, int, int]]:
    segments = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            segments.append((labels[start], start, t))
            start = t
    return segments


def _hungarian(overlap: dict[tuple[int, int], int]) -> dict[int, int]:
    """The reference's pairing: a square (labels x clusters) voting table, zero-padded,
    solved as a minimisation of its negation; every pair of a real label and a real
    cluster is applied, zero-overlap pairs included."""
    clusters = sorted({c for c, _ in overlap})
    labels = sorted({label for _, label in overlap})
    size = max(len(clusters), len(labels))
    table = np.zeros((size, size), dtype=np.int64)
    for (c, label), count in overlap.items():
        table[labels.index(label), clusters.index(c)] = count
    rows, cols = linear_sum_assignment(-table)
    return {
        clusters[c]: labels[r]
        for r, c in zip(rows, cols, strict=True)
        if r < len(labels) and c < len(clusters)
    }


def _levenshtein(a: list[int], b: list[int]) -> int:
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1])
            )
        previous = current
    return previous[len(b)]


def loop_segmentation_scores(
    predictions: list[np.ndarray],
    targets: list[np.ndarray],
    matching: str = "global",
    bin_width: int = 20,
) -> dict[str, float]:
    """The same scores as ``segmentation_scores`` (no ignored labels, one group), with loops."""
    preds = [p.tolist() for p in predictions]
    gts = [g.tolist() for g in targets]
    overlaps: list[dict[tuple[int, int], int]] = []
    for p, g in zip(preds, gts, strict=True):
        overlap: dict[tuple[int, int], int] = {}
        for c, label in zip(p, g, strict=True):
            overlap[(c, label)] = overlap.get((c, label), 0) + 1
        overlaps.append(overlap)
    if matching == "global":
        total: dict[tuple[int, int], int] = {}
        for overlap in overlaps:
            for key, count in overlap.items():
                total[key] = total.get(key, 0) + count
        mappings = [_hungarian(total)] * len(preds)
    else:
        mappings = [_hungarian(overlap) for overlap in overlaps]

    correct = frames = 0
    edits, jsds = [], []
    tp = dict.fromkeys(THRESHOLDS, 0)
    num_pred = num_gt = 0
    for p, g, mapping in zip(preds, gts, mappings, strict=True):
        mapped = [mapping.get(c, -1 - c) for c in p]
        for m, label in zip(mapped, g, strict=True):
            correct += m == label
        frames += len(g)
        pred_segs, gt_segs = _segments(mapped), _segments(g)
        num_pred += len(pred_segs)
        num_gt += len(gt_segs)
        distance = _levenshtein([s[0] for s in pred_segs], [s[0] for s in gt_segs])
        edits.append(100.0 * (1.0 - distance / max(len(pred_segs), len(gt_segs))))
        for threshold in THRESHOLDS:
            hit = [False] * len(gt_segs)
            for label, start, end in pred_segs:
                best, best_k = 0.0, -1
                for k, (g_label, g_start, g_end) in enumerate(gt_segs):
                    if g_label == label:
                        inter = max(0, min(end, g_end) - max(start, g_start))
                        iou = inter / ((end - start) + (g_end - g_start) - inter)
                        if best_k < 0 or iou > best:
                            best, best_k = iou, k
                if best_k >= 0 and best >= threshold and not hit[best_k]:
                    hit[best_k] = True
                    tp[threshold] += 1
        pred_lengths = [end - start for _, start, end in pred_segs]
        gt_lengths = [end - start for _, start, end in gt_segs]
        num_bins = max(max(pred_lengths), max(gt_lengths)) // bin_width + 1
        edges = np.arange(num_bins + 1) * bin_width
        jsds.append(
            100.0
            * jensenshannon(
                np.histogram(pred_lengths, edges)[0], np.histogram(gt_lengths, edges)[0], base=2
            )
        )
    result = {"mof": 100.0 * correct / frames, "edit": sum(edits) / len(edits)}
    for threshold, key in zip(THRESHOLDS, ("f1@10", "f1@25", "f1@50"), strict=True):
        precision, recall = tp[threshold] / num_pred, tp[threshold] / num_gt
        f1 = 2 * precision * recall / (precision + recall) if tp[threshold] else 0.0
        result[key] = 100.0 * f1
    result["jsd"] = sum(jsds) / len(jsds)
    return result


# ----------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sequences", type=int, default=364, help="sequences (default 364)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic case")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each version; the best is kept"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")


def _best_time(function, repeats: int) -> tuple[float, dict[str, float]]:
    best, result = float("inf"), {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(args: argparse.Namespace) -> int:
    if args.sequences < 1 or args.repeats < 1:
        raise HistvqError("--sequences and --repeats must be at least 1")
    predictions, targets = generate_case(args.sequences, args.seed)
    frames = int(sum(t.size for t in targets))
    report: dict[str, object] = {
        "sequences": args.sequences,
        "frames": frames,
        "seed": args.seed,
        "repeats": args.repeats,
    }
    print(f"metrics benchmark: {args.sequences} sequences, {frames:,} frames, seed {args.seed}")
    print(f"{'matching':<9} {'fast (s)':>10} {'loops (s)':>10} {'speed-up':>9}")
    scores_line: list[str] = []
    for matching in ("global", "local"):
        fast_s, fast = _best_time(
            lambda m=matching: segmentation_scores(predictions, targets, matching=m), args.repeats
        )
        slow_s, slow = _best_time(
            lambda m=matching: loop_segmentation_scores(predictions, targets, matching=m),
            args.repeats,
        )
        worst = max(abs(fast[key] - slow[key]) for key in METRIC_KEYS)
        if worst > TOLERANCE:
            raise HistvqError(
                f"{matching}: fast and loop scores differ by {worst:.3g} (> {TOLERANCE}): "
                f"fast {fast}, loops {slow}"
            )
        print(f"{matching:<9} {fast_s:>10.4f} {slow_s:>10.3f} {slow_s / fast_s:>8.0f}x")
        scores_line.append(f"{matching}: " + ", ".join(f"{k} {fast[k]:.2f}" for k in METRIC_KEYS))
        report[matching] = {
            "fast_s": fast_s,
            "loop_s": slow_s,
            "speedup": slow_s / fast_s,
            "max_abs_difference": worst,
            "scores": fast,
        }
    print(f"scores agree to {TOLERANCE:g}:")
    for line in scores_line:
        print(f"  {line}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
