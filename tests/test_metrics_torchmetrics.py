"""SegmentationMetrics: equals the functional API, merges like DDP, ignores order/duplicates."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from histvq.metrics import MetricInputError, SegmentationMetrics, evaluate_segmentation
from histvq.metrics.functional import match_predictions


def make_dataset(seed: int = 0, count: int = 9):
    rng = np.random.default_rng(seed)
    preds, gts, groups = [], [], []
    for _ in range(count):
        length = int(rng.integers(20, 120))
        bounds = np.sort(rng.choice(np.arange(1, length), size=3, replace=False))
        gt = np.repeat(rng.integers(0, 4, size=4), np.diff(np.r_[0, bounds, length]))
        pred = (gt * 2 + 1) % 7
        flip = rng.random(length) < 0.1
        pred[flip] = rng.integers(0, 7, size=int(flip.sum()))
        preds.append(pred)
        gts.append(gt)
        groups.append(int(rng.integers(0, 2)))
    return preds, gts, groups


def feed(metric: SegmentationMetrics, preds, gts, groups, indices) -> None:
    metric.update(
        [torch.from_numpy(preds[i]) for i in indices],
        [torch.from_numpy(gts[i]) for i in indices],
        torch.tensor(indices, dtype=torch.int64),
        torch.tensor([groups[i] for i in indices]),
    )


def as_floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}


def test_compute_equals_functional_scores():
    preds, gts, groups = make_dataset()
    metric = SegmentationMetrics(bin_width=5)
    feed(metric, preds, gts, groups, [0, 1, 2, 3])
    feed(metric, preds, gts, groups, [4, 5, 6, 7, 8])
    expected = evaluate_segmentation(preds, gts, bin_width=5, groups=groups)
    result = as_floats(metric.compute())
    assert set(result) == {f"{m}/{k}" for m in expected for k in expected[m]}
    for matching, values in expected.items():
        for key, value in values.items():
            assert result[f"{matching}/{key}"] == value
    assert result["global/mof"] < 100.0  # the noise makes the case non-trivial


def test_state_merged_from_two_halves_equals_the_whole():
    preds, gts, groups = make_dataset(1)
    whole = SegmentationMetrics()
    feed(whole, preds, gts, groups, list(range(9)))
    first, second = SegmentationMetrics(), SegmentationMetrics()
    feed(first, preds, gts, groups, [5, 6, 7, 8])
    feed(second, preds, gts, groups, [0, 1])
    feed(second, preds, gts, groups, [2, 3, 4])
    first.merge_state(second)  # second's state is put first, as a later rank would
    assert as_floats(first.compute()) == as_floats(whole.compute())


def test_update_order_does_not_change_the_result():
    preds, gts, groups = make_dataset(2)
    forward, backward = SegmentationMetrics(), SegmentationMetrics()
    for i in range(9):
        feed(forward, preds, gts, groups, [i])
        feed(backward, preds, gts, groups, [8 - i])
    assert as_floats(forward.compute()) == as_floats(backward.compute())
    ids, sequences, _, _ = backward.sequences()
    assert ids == list(range(9))
    assert all(np.array_equal(s, p) for s, p in zip(sequences, preds, strict=True))


def test_duplicated_sequence_ids_count_once():
    preds, gts, groups = make_dataset(3)
    once, padded = SegmentationMetrics(), SegmentationMetrics()
    feed(once, preds, gts, groups, list(range(9)))
    feed(padded, preds, gts, groups, list(range(9)))
    feed(padded, preds, gts, groups, [0, 1, 8])  # a padding sampler repeating sequences
    assert as_floats(padded.compute()) == as_floats(once.compute())


def test_a_reused_sequence_id_with_other_frames_is_an_error():
    preds, gts, groups = make_dataset(4)
    metric = SegmentationMetrics()
    feed(metric, preds, gts, groups, [0, 1])
    metric.update([torch.from_numpy(preds[2])], [torch.from_numpy(gts[2])], torch.tensor([1]))
    with pytest.raises(MetricInputError, match="sequence id 1 was evaluated twice"):
        metric.compute()


def test_matched_predictions_and_global_mapping():
    preds, gts, groups = make_dataset(5)
    metric = SegmentationMetrics(matchings=("global",))
    feed(metric, preds, gts, groups, [3, 1, 2, 0])
    ordered = [0, 1, 2, 3]
    expected_mapped, expected_maps = match_predictions(
        [preds[i] for i in ordered], [gts[i] for i in ordered]
    )
    ids, mapped, targets, mappings = metric.matched("global")
    assert ids == ordered
    assert mappings == expected_maps
    assert metric.global_mapping() == expected_maps[0]
    assert all(np.array_equal(a, b) for a, b in zip(mapped, expected_mapped, strict=True))
    assert all(np.array_equal(t, gts[i]) for t, i in zip(targets, ordered, strict=True))
    assert set(metric.compute()) == {f"global/{k}" for k in ("mof", "edit", "jsd")} | {
        f"global/f1@{k}" for k in (10, 25, 50)
    }


def test_ignore_labels_are_passed_through():
    preds, gts, groups = make_dataset(6)
    metric = SegmentationMetrics(ignore_labels=(0,))
    feed(metric, preds, gts, groups, list(range(9)))
    expected = evaluate_segmentation(preds, gts, ignore_labels=(0,), groups=groups)
    assert float(metric.compute()["local/mof"]) == expected["local"]["mof"]


def test_bad_updates_are_clear_errors():
    metric = SegmentationMetrics()
    with pytest.raises(MetricInputError, match="no sequences"), pytest.warns(UserWarning):
        metric.compute()
    with pytest.raises(MetricInputError, match="1-D integer"):
        metric.update([torch.zeros(3)], [torch.zeros(3, dtype=torch.long)], torch.tensor([0]))
    with pytest.raises(MetricInputError, match="2 sequence ids"):
        metric.update(
            [torch.zeros(3, dtype=torch.long)],
            [torch.zeros(3, dtype=torch.long)],
            torch.tensor([0, 1]),
        )
    with pytest.raises(MetricInputError, match="prediction has 3 frames but target has 2"):
        metric.update(
            [torch.zeros(3, dtype=torch.long)],
            [torch.zeros(2, dtype=torch.long)],
            torch.tensor([0]),
        )
    with pytest.raises(MetricInputError, match="matchings"):
        SegmentationMetrics(matchings=("nearest",))


# ----------------------------------------------------------------------------- real DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, shards: list[list[int]], queue) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        preds, gts, groups = make_dataset(7)
        metric = SegmentationMetrics(bin_width=5)
        if shards[rank]:
            feed(metric, preds, gts, groups, shards[rank])
        result = as_floats(metric.compute())
        ids = metric.sequences()[0]
        queue.put((rank, result, ids))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_ddp_gather_with_uneven_and_empty_ranks():
    preds, gts, groups = make_dataset(7)
    single = SegmentationMetrics(bin_width=5)
    feed(single, preds, gts, groups, list(range(9)))
    expected = as_floats(single.compute())
    # Rank 0 holds everything plus a padded duplicate, rank 1 nothing: the empty rank's
    # placeholder must gather alongside int64 states.
    shards = [[4, 0, 1, 2, 3, 5, 6, 7, 8, 0], []]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(
        _ddp_worker, args=(2, _free_port(), shards, queue), nprocs=2, start_method="spawn"
    )
    results = sorted(queue.get() for _ in range(2))
    for _, result, ids in results:
        assert result == expected
        assert ids == list(range(9))
