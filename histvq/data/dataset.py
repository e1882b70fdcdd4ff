"""Torch views of a prepared dataset: per-sequence items and padded batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from histvq.data.layout import SequenceRecord


class SequenceDataset(Dataset):
    """Whole sequences of a prepared dataset; item ``i`` is the i-th sequence by name."""

    def __init__(self, records: list[SequenceRecord], groups: list[int] | None = None):
        self.records = records
        self.groups = groups if groups is not None else [0] * len(records)
        self.lengths = [r.num_frames for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return {
            "features": torch.from_numpy(record.features),
            "labels": torch.from_numpy(record.labels),
            "index": index,
            "group": self.groups[index],
            "name": record.name,
        }


@dataclass(frozen=True)
class PadCollate:
    """Stack sequences into a batch padded to the longest, rounded up to ``multiple`` frames.

    Batch keys: features (N, C, T, V, M) zero-padded, mask (N, T) bool, labels (N, T) with -1
    on padding, lengths (N,), index (N,) dataset positions, group (N,), names (list).
    """

    multiple: int = 1

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        lengths = torch.tensor([it["features"].shape[1] for it in items], dtype=torch.long)
        longest = int(lengths.max())
        padded = -(-longest // self.multiple) * self.multiple
        c, _, v, m = items[0]["features"].shape
        features = torch.zeros(len(items), c, padded, v, m, dtype=torch.float32)
        labels = torch.full((len(items), padded), -1, dtype=torch.long)
        for row, item in enumerate(items):
            t = item["features"].shape[1]
            features[row, :, :t] = item["features"]
            labels[row, :t] = item["labels"]
        return {
            "features": features,
            "mask": torch.arange(padded)[None, :] < lengths[:, None],
            "labels": labels,
            "lengths": lengths,
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "group": torch.tensor([it["group"] for it in items], dtype=torch.long),
            "names": [it["name"] for it in items],
        }
