"""Segmentation metrics: numpy functions (:mod:`.functional`) and a DDP-aware torchmetrics class.

The torchmetrics class is imported lazily so that numpy-only users (scripts, the benchmark)
do not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from histvq.metrics.functional import (
    MATCHINGS,
    METRIC_KEYS,
    THRESHOLDS,
    UNMATCHED,
    MetricInputError,
    evaluate_segmentation,
    match_predictions,
    segment_bounds,
    segment_lengths,
    segmentation_scores,
    unmatched_id,
)

if TYPE_CHECKING:
    from histvq.metrics.segmentation import SegmentationMetrics

__all__ = [
    "MATCHINGS",
    "METRIC_KEYS",
    "THRESHOLDS",
    "UNMATCHED",
    "MetricInputError",
    "SegmentationMetrics",
    "evaluate_segmentation",
    "match_predictions",
    "segment_bounds",
    "segment_lengths",
    "segmentation_scores",
    "unmatched_id",
]


def __getattr__(name: str) -> Any:
    if name == "SegmentationMetrics":
        from histvq.metrics.segmentation import SegmentationMetrics

        return SegmentationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
