"""Lightning callbacks of histvq."""

from histvq.callbacks.evaluation import SegmentationEvaluation

__all__ = ["SegmentationEvaluation"]
