"""DataLoaders that keep the global random generators untouched and resume mid-epoch.

Creating a DataLoader iterator draws a base seed from torch's global generator, so every
epoch (and every evaluation pass) would shift the dropout masks that follow it; here each
loader draws it from a generator of its own. The training loader is also *stateful* in
Lightning's sense (``state_dict`` / ``load_state_dict``): a checkpoint records the epoch and
how many of its batches the trainer has consumed, and the resumed run skips exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from histvq.data.sampler import TrainBatchSampler


def private_generator() -> torch.Generator:
    """A fixed-seed generator for a loader's base seed (the samplers bring their own order)."""
    return torch.Generator().manual_seed(0)


class ResumableLoader(DataLoader):
    """Training loader over a :class:`TrainBatchSampler` whose position Lightning saves.

    ``consumed()`` tells how many batches of the current epoch the trainer has taken (the
    loader itself runs ahead of the trainer: Lightning prefetches a batch to know which one
    is the last).
    """

    def __init__(self, *args: Any, consumed: Callable[[], int], **kwargs: Any):
        kwargs.setdefault("generator", private_generator())
        super().__init__(*args, **kwargs)
        if not isinstance(self.batch_sampler, TrainBatchSampler):
            raise TypeError("ResumableLoader needs a TrainBatchSampler")
        self._consumed = consumed

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "batches": int(self._consumed())}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.batch_sampler.resume(int(state_dict["epoch"]), int(state_dict["batches"]))
