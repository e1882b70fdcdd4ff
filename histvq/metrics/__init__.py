"""Segmentation metrics: names (:mod:`.names`), numpy functions (:mod:`.functional`) and a
DDP-aware torchmetrics class (:mod:`.segmentation`).

Everything is imported lazily: the names cost nothing, numpy/scipy users (scripts, the
report) do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from histvq.metrics.names import (
    MATCHINGS,
    METRIC_KEYS,
    METRIC_NAMES,
    SCORE_KEYS,
    THRESHOLDS,
    UNMATCHED,
    cluster_name,
    mapped_name,
    unmatched_id,
)

_LAZY = {
    "MetricInputError": "functional",
    "absorb_short_segments": "functional",
    "boundary_agreement": "functional",
    "evaluate_segmentation": "functional",
    "match_predictions": "functional",
    "patch_majority": "functional",
    "segment_bounds": "functional",
    "segment_lengths": "functional",
    "segment_statistics": "functional",
    "segmentation_scores": "functional",
    "stray_boundaries_by_label": "functional",
    "timestamp_predictability": "functional",
    "SegmentationMetrics": "segmentation",
}

__all__ = [
    "MATCHINGS",
    "METRIC_KEYS",
    "METRIC_NAMES",
    "SCORE_KEYS",
    "THRESHOLDS",
    "UNMATCHED",
    "cluster_name",
    "mapped_name",
    "unmatched_id",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
