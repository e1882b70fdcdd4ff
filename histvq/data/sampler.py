"""Batch samplers: length-bucketed training batches and padding-free evaluation shards.

Both are DDP-aware by construction (they take ``num_replicas``/``rank``), so Lightning's
automatic DistributedSampler injection is switched off in the trainer configs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Training batches of sequences of similar length, reshuffled every epoch.

    Each epoch (seeded by ``seed`` and the epoch number) sorts the sequences by length with
    a small random jitter, so batch composition varies between epochs while padding stays
    small, cuts them into batches and shuffles the batch order. ``bucket=False`` gives
    plain random batches (the reference behaviour). Under DDP every process gets the same
    number of batches: the batch list is extended by repeating its first batches up to a
    multiple of ``num_replicas`` and dealt round-robin.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        bucket: bool = True,
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
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.float64)
        self.batch_size, self.bucket, self.shuffle = batch_size, bucket, shuffle
        self.jitter, self.seed = jitter, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.bucket:
            noise = torch.empty(n, dtype=torch.float64).uniform_(
                -self.jitter, self.jitter, generator=generator
            )
            keys = self.lengths * torch.exp(noise) if self.shuffle else self.lengths
            order = torch.sort(keys, stable=True).indices
        else:
            order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
        return batches + batches[: total - len(batches)]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._all_batches()[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        batches = math.ceil(len(self.lengths) / self.batch_size)
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
