"""Batch samplers: training batches reshuffled every epoch, padding-free evaluation shards.

Both are DDP-aware by construction (they take ``num_replicas``/``rank``), so Lightning's
automatic DistributedSampler injection is switched off in the trainer configs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class EpochOrder(Sampler[int]):
    """The order in which one epoch visits the sequences; a function of (seed, epoch) only.

    ``bucket=False`` (the reference): a random permutation. ``bucket=True``: the sequences
    sorted by length with a small random jitter (``jitter``, log scale), so batches hold
    similar lengths (little padding) while their composition still varies between epochs.
    ``shuffle=False`` gives the plain (or plainly sorted) order.

    Lightning calls ``set_epoch`` on ``loader.batch_sampler.sampler`` at the start of every
    epoch, and on resuming, which is why the epoch lives here.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        bucket: bool = False,
        shuffle: bool = True,
        jitter: float = 0.1,
        seed: int = 0,
    ):
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.float64)
        self.bucket, self.shuffle, self.jitter, self.seed = bucket, shuffle, jitter, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator(self) -> torch.Generator:
        """The epoch's generator: the order and the batch shuffle both draw from it."""
        return torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)

    def indices(self, generator: torch.Generator) -> list[int]:
        n = len(self.lengths)
        if self.bucket:
            keys = self.lengths
            if self.shuffle:
                noise = torch.empty(n, dtype=torch.float64).uniform_(
                    -self.jitter, self.jitter, generator=generator
                )
                keys = keys * torch.exp(noise)
            return torch.sort(keys, stable=True).indices.tolist()
        if self.shuffle:
            return torch.randperm(n, generator=generator).tolist()
        return list(range(n))

    def __iter__(self) -> Iterator[int]:
        yield from self.indices(self.generator())

    def __len__(self) -> int:
        return len(self.lengths)


class TrainBatchSampler(Sampler[list[int]]):
    """Training batches: consecutive groups of ``batch_size`` in the epoch's order.

    Random order (the reference: shuffled list, consecutive groups, the last one smaller)
    or length buckets, whose batch order is shuffled too. Every epoch is reshuffled from
    (seed, epoch), so epoch e's batches are the same in every run and after a resume.
    Under DDP every process gets the same number of batches: the batch list is extended by
    repeating its first batches up to a multiple of ``num_replicas`` and dealt round-robin.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        bucket: bool = False,
        shuffle: bool = True,
        jitter: float = 0.1,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.sampler = EpochOrder(lengths, bucket=bucket, shuffle=shuffle, jitter=jitter, seed=seed)
        self.batch_size = batch_size
        self.num_replicas, self.rank = num_replicas, rank
        self._resume: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def resume(self, epoch: int, skip: int) -> None:
        """Make the next pass over ``epoch`` (if it is that epoch) skip its first ``skip``
        batches: they were trained before the checkpoint this run resumes from."""
        self._resume = (epoch, skip)

    def epoch_batches(self) -> list[list[int]]:
        """All processes' batches of the current epoch, before dealing."""
        generator = self.sampler.generator()
        order = self.sampler.indices(generator)
        size = self.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        if self.sampler.bucket and self.sampler.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
        return batches + batches[: total - len(batches)]

    def __iter__(self) -> Iterator[list[int]]:
        skip = 0
        if self._resume is not None:
            epoch, count = self._resume
            self._resume = None
            if epoch == self.epoch:
                skip = count
        yield from self.epoch_batches()[self.rank :: self.num_replicas][skip:]

    def __len__(self) -> int:
        batches = math.ceil(len(self.sampler) / self.batch_size)
        return math.ceil(batches / self.num_replicas)


class ShardedEvalBatchSampler(Sampler[list[int]]):
    """Evaluation batches: every sequence exactly once over all processes, no padding copies.

    Sequences are sorted by length (little padding inside a batch), cut into batches, and
    the batches dealt round-robin to the processes, which may get unequal counts.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, *, num_replicas: int = 1, rank: int = 0
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.batches = batches[rank::num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches

    def __len__(self) -> int:
        return len(self.batches)
