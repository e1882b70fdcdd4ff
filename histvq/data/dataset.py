"""Torch views of a prepared dataset: per-sequence items and padded batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from histvq.data.layout import SequenceRecord
from histvq.errors import ConfigError


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


PAD_TO = ("patch", "ladder")


def ladder_patches(num_patches: int) -> int:
    """The smallest length (in patches) of the ladder ceil(2 ** (k / 4)), k = 0, 1, ... that
    holds ``num_patches``: few distinct shapes (four per doubling), at most 19 % padding."""
    k = 0
    while math.ceil(2 ** (k / 4)) < num_patches:
        k += 1
    return math.ceil(2 ** (k / 4))


def padded_length(longest: int, patch_size: int, pad_to: str = "patch") -> int:
    """Frames a batch whose longest sequence has ``longest`` frames is padded to: a multiple
    of the patch size (``patch``) or a length of the ladder of :func:`ladder_patches`
    (``ladder``; batch shapes repeat, which cuDNN autotuning and compiled graphs need)."""
    patches = -(-longest // patch_size)
    if pad_to == "ladder":
        patches = ladder_patches(patches)
    elif pad_to != "patch":
        raise ConfigError(f"dataset.pad_to: unknown value {pad_to!r} (choose from {PAD_TO})")
    return patches * patch_size


@dataclass(frozen=True)
class PadCollate:
    """Stack sequences into a batch padded to the longest (see :func:`padded_length`).

    Batch keys: features (N, C, T, V, M) zero-padded, mask (N, T) bool, labels (N, T) with -1
    on padding, lengths (N,), length_list (the lengths as Python ints: they stay on the host
    when the batch moves to a GPU), index (N,) dataset positions, group (N,), names (list).
    With ``with_features=False`` the features and mask are left out (a device-resident
    dataset builds them on the device, see :class:`ResidentFeatures`).
    """

    multiple: int = 1
    pad_to: str = "patch"
    with_features: bool = True

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        length_list = [int(it["features"].shape[1]) for it in items]
        lengths = torch.tensor(length_list, dtype=torch.long)
        padded = padded_length(max(length_list), self.multiple, self.pad_to)
        labels = torch.full((len(items), padded), -1, dtype=torch.long)
        for row, item in enumerate(items):
            labels[row, : length_list[row]] = item["labels"]
        batch: dict[str, Any] = {
            "labels": labels,
            "lengths": lengths,
            "length_list": length_list,
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "group": torch.tensor([it["group"] for it in items], dtype=torch.long),
            "names": [it["name"] for it in items],
        }
        if self.with_features:
            c, _, v, m = items[0]["features"].shape
            features = torch.zeros(len(items), c, padded, v, m, dtype=torch.float32)
            for row, item in enumerate(items):
                features[row, :, : length_list[row]] = item["features"]
            batch["features"] = features
            batch["mask"] = torch.arange(padded)[None, :] < lengths[:, None]
        return batch


class ResidentFeatures:
    """A dataset's features kept on one device, and the padded batches built there.

    Training on a GPU then moves only indices and labels per step instead of a padded
    feature batch (HuGaDB's 364 recordings take 160 MB).
    """

    def __init__(self, records: list[SequenceRecord], device: torch.device):
        self.device = device
        self.features = [torch.from_numpy(r.features).to(device) for r in records]

    @staticmethod
    def nbytes(records: list[SequenceRecord]) -> int:
        return sum(int(r.features.nbytes) for r in records)

    def fill(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add ``features`` and ``mask`` to a batch collated with ``with_features=False``
        (still on the host: its indices are read without a device synchronisation)."""
        indices, lengths = batch["index"].tolist(), batch["length_list"]
        padded = int(batch["labels"].shape[1])
        c, _, v, m = self.features[indices[0]].shape
        features = torch.zeros(len(indices), c, padded, v, m, device=self.device)
        for row, (index, length) in enumerate(zip(indices, lengths, strict=True)):
            features[row, :, :length] = self.features[index]
        mask = (
            torch.arange(padded, device=self.device)[None, :]
            < torch.tensor(lengths, device=self.device)[:, None]
        )
        return {**batch, "features": features, "mask": mask}
