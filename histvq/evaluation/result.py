"""The result of evaluating a trained model: per-sequence predictions and their scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from histvq.metrics import match_predictions
from histvq.metrics.names import MATCHINGS, mapped_name


@dataclass
class EvaluationResult:
    """Per-sequence predictions (sorted by dataset index) and the scores computed from them."""

    names: list[str]
    predictions: list[np.ndarray]
    targets: list[np.ndarray]
    label_names: dict[int, str]
    metrics: dict[str, dict[str, float]]
    ignore_labels: list[int] = field(default_factory=list)
    bin_width: int = 20
    unmatched: str = "square_assignment"
    _mapped: list[np.ndarray] | None = None
    _mapping: dict[int, int] | None = None

    @property
    def num_frames(self) -> int:
        return int(sum(len(t) for t in self.targets))

    def global_mapping(self) -> tuple[list[np.ndarray], dict[int, int]]:
        """Predictions mapped to label ids by the global Hungarian matching, and the mapping."""
        if self._mapped is None:
            mapped, mappings = match_predictions(
                self.predictions, self.targets, "global", self.ignore_labels, self.unmatched
            )
            self._mapped, self._mapping = mapped, mappings[0]
        assert self._mapping is not None
        return self._mapped, self._mapping

    def label_of(self, value: int) -> str:
        """Name of a mapped prediction value (an unmatched cluster is ``cluster_<id>``)."""
        return mapped_name(value, self.label_names)

    def to_json(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        out: dict[str, Any] = {m: dict(self.metrics[m]) for m in MATCHINGS if m in self.metrics}
        out["num_sequences"] = len(self.names)
        out["num_frames"] = self.num_frames
        return out
