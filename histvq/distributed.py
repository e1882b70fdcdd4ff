"""Thin torch.distributed helpers that are no-ops in a single process.

Kept free of Lightning so the quantizer can synchronise its codebook statistics the same way
under any launcher.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes, in place."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_cat(tensor: Tensor) -> Tensor:
    """Concatenate every process's ``tensor`` along dim 0, in rank order (sizes may differ)."""
    if not is_distributed():
        return tensor
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:c] for g, c in zip(gathered, counts, strict=True)], dim=0)


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes, out of place and differentiable (the gradient of
    every process's input is the sum of all processes' output gradients)."""
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor, op=dist.ReduceOp.SUM)
