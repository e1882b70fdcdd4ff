"""Evaluation of a trained model: segmentation (:mod:`.segment`), scoring (:mod:`.run`),
the result (:mod:`.result`), what is written to a run folder (:mod:`.outputs`) and the
figures (:mod:`.plotting`)."""

from histvq.evaluation.outputs import format_metrics_table, write_evaluation
from histvq.evaluation.result import EvaluationResult
from histvq.evaluation.run import evaluate_module
from histvq.evaluation.segment import array_batches, segment_arrays, segment_batches

__all__ = [
    "EvaluationResult",
    "array_batches",
    "evaluate_module",
    "format_metrics_table",
    "segment_arrays",
    "segment_batches",
    "write_evaluation",
]
