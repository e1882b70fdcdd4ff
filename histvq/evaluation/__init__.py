"""Evaluation of a trained model: segmentation (:mod:`.segment`), scoring (:mod:`.run`),
the result (:mod:`.result`), what is written to a run folder (:mod:`.outputs`) and the
figures (:mod:`.plotting`, which needs no torch).

Names are imported lazily, so ``histvq.evaluation.plotting`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "EvaluationResult": "result",
    "array_batches": "segment",
    "evaluate_module": "run",
    "format_metrics_table": "outputs",
    "segment_arrays": "segment",
    "segment_batches": "segment",
    "write_evaluation": "outputs",
    "write_evaluated_dataset": "outputs",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
