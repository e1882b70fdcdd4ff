"""The contract between data and model: what a model needs to know about its data.

A :class:`DataSpec` is all a model is built from besides its own config, and it travels in
every checkpoint, so a trained model can be rebuilt and checked against new data without
the data module that trained it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataSpec:
    """What the model needs to know about the data to build itself."""

    num_channels: int
    num_joints: int
    num_persons: int
    num_classes: int
    patch_size: int
    label_names: dict[int, str]
    fps: float | None = None
    kind: str | None = None  # hugadb, lara, babel, pkummd, ntu, synthetic or layout
    # Per-channel {"mean", "std"} the inputs were standardised with (dataset.normalize).
    input_stats: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_channels": self.num_channels,
            "num_joints": self.num_joints,
            "num_persons": self.num_persons,
            "num_classes": self.num_classes,
            "patch_size": self.patch_size,
            "label_names": {int(k): v for k, v in self.label_names.items()},
            "fps": self.fps,
            "kind": self.kind,
            "input_stats": self.input_stats,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        values = dict(data)
        values["label_names"] = {int(k): v for k, v in values["label_names"].items()}
        return cls(**values)
