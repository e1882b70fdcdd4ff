"""Transductive evaluation of a trained model: predict every sequence, match, score.

Prediction is sharded by sequence across processes without padding copies; the per-sequence
results are gathered by :class:`~histvq.metrics.SegmentationMetrics` (deduplicated and sorted
by dataset index), so the numbers do not depend on the number of processes, the batch
composition or the file listing order.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from histvq.data.datamodule import LayoutDataModule
from histvq.evaluation.result import EvaluationResult
from histvq.evaluation.segment import segment_batches
from histvq.metrics.names import MATCHINGS, METRIC_KEYS


@torch.no_grad()
def evaluate_module(
    module: Any,
    datamodule: LayoutDataModule,
    *,
    bin_width: int = 20,
    unmatched: str = "square_assignment",
    num_replicas: int | None = None,
    rank: int | None = None,
) -> EvaluationResult:
    """Predict this process's shard of sequences and score all of them (collective under DDP:
    every process must call it)."""
    from histvq.metrics.segmentation import SegmentationMetrics

    assert datamodule.dataset is not None, "setup() first"
    loader = datamodule.eval_dataloader(num_replicas=num_replicas, rank=rank)
    ignore = datamodule.ignore_label_ids
    device = next(module.parameters()).device
    metric = SegmentationMetrics(bin_width=bin_width, ignore_labels=ignore, unmatched=unmatched).to(
        device
    )
    records, groups = datamodule.dataset.records, datamodule.dataset.groups
    for indices, codes in segment_batches(module, loader):
        metric.update(
            codes,
            [torch.from_numpy(records[i].labels).to(device) for i in indices],
            torch.tensor(indices, device=device),
            torch.tensor([groups[i] for i in indices], device=device),
        )
    with warnings.catch_warnings():
        # A process whose shard is empty (fewer eval batches than processes) still joins the
        # collective compute; torchmetrics' "compute before update" warning does not apply.
        warnings.filterwarnings("ignore", message=".*was called before the ``update`` method")
        scores = metric.compute()
    ids, predictions, targets, _ = metric.sequences()
    metrics = {m: {k: float(scores[f"{m}/{k}"]) for k in METRIC_KEYS} for m in MATCHINGS}
    return EvaluationResult(
        names=[records[int(i)].name for i in ids],
        predictions=[np.asarray(p, dtype=np.int64) for p in predictions],
        targets=[np.asarray(t, dtype=np.int64) for t in targets],
        label_names=datamodule.spec.label_names,
        metrics=metrics,
        ignore_labels=ignore,
        bin_width=bin_width,
        unmatched=unmatched,
    )
