"""A second quantizer: finite scalar quantization (FSQ, Mentzer et al. 2023) in the hierarchy.

Each level projects its input patch (P x E values) to a few scalars, bounds each scalar with
tanh and rounds it to one of L_i levels (straight-through); the code is the mixed-radix
number of the rounded scalars, so a level with grid (L_1, ..., L_d) has prod(L_i) codes, and
the quantized patch is the projection of the rounded scalars back to P x E. There is no
codebook to learn by EMA, no dead code and no commitment loss: the projections are trained
by the decoders' losses through the straight-through rounding.

As in :class:`~.hierarchical.HierarchicalQuantizer`, level l has K * alpha**(levels - l)
codes (the top K: one per action cluster), level l + 1 reads level l's quantized output (so
its code is a function of level l's code), and the output has the same fields: quantized
patches, codes and (zero) commitment terms per level, and in training mode usage counts that
:meth:`FSQQuantizer.update` all-reduces across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from histvq.distributed import all_reduce_sum_
from histvq.models.quantizers.hierarchical import codebook_sizes
from histvq.models.quantizers.outputs import (
    QuantizerOutput,
    scatter_ids,
    scatter_patches,
    select_valid,
    usage_of,
)

MAX_DIMS = 3


def fsq_grid(codes: int) -> tuple[int, ...]:
    """Levels per scalar, whose product is ``codes``: its prime factors, the two smallest
    merged until at most three scalars remain (20 -> (5, 2, 2), 40 -> (5, 4, 2))."""
    factors, n, p = [], codes, 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1 or not factors:
        factors.append(n)
    factors.sort(reverse=True)
    while len(factors) > MAX_DIMS:
        smallest = factors.pop() * factors.pop()
        factors.append(smallest)
        factors.sort(reverse=True)
    return tuple(factors)


def round_to_grid(z: Tensor, grid: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """(scalars rounded to the grid, scaled to [-1, 1] with a straight-through gradient;
    their mixed-radix codes) for z (N, d)."""
    levels = torch.tensor(grid, device=z.device, dtype=z.dtype)
    bounded = (torch.tanh(z) + 1.0) / 2.0 * (levels - 1)  # in [0, L - 1]
    rounded = bounded + (torch.round(bounded) - bounded).detach()
    digits = torch.round(bounded.detach()).long()
    radix = torch.cumprod(torch.tensor((1, *grid[:-1]), device=z.device), 0)
    codes = (digits * radix).sum(-1)
    scaled = rounded / (levels - 1).clamp_min(1.0) * 2.0 - 1.0
    return scaled, codes


@dataclass
class UsageStatistics:
    """One step's code counts per level (FSQ has nothing else to update)."""

    counts: list[Tensor]

    def merge(self, other: UsageStatistics | None) -> UsageStatistics:
        if other is None:
            return self
        return UsageStatistics([a + b for a, b in zip(self.counts, other.counts, strict=True)])


class FSQQuantizer(nn.Module):
    """The FSQ hierarchy; drop-in for :class:`~.hierarchical.HierarchicalQuantizer`
    (``model/quantizer=fsq``).

    Args:
        num_classes: K, the number of top-level codes.
        patch_size: P frames per patch.
        dim: E, the per-frame token size (M*V*D).
        levels, alpha: the hierarchy, as for the EMA quantizer.
    """

    updates_before_output = False  # nothing to update before the output

    def __init__(
        self, num_classes: int, patch_size: int, dim: int, levels: int = 2, alpha: float = 2
    ):
        super().__init__()
        self.sizes = codebook_sizes(num_classes, levels, alpha)
        self.levels, self.patch_size, self.dim = levels, patch_size, dim
        self.grids = [fsq_grid(size) for size in self.sizes]
        width = patch_size * dim
        self.project_in = nn.ModuleList(nn.Linear(width, len(g)) for g in self.grids)
        self.project_out = nn.ModuleList(nn.Linear(len(g), width) for g in self.grids)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def forward(self, values: Tensor, frame_mask: Tensor, valid: Tensor) -> QuantizerOutput:
        """Quantize patches ``values`` (N, Np, P, E) with masks (N, Np, P) and (N, Np)."""
        patches = select_valid(values, frame_mask, valid)
        n, num_patches = patches.grid
        count = patches.x.shape[0]
        level_input = patches.x.flatten(1)
        quantized, indices = [], []
        with torch.autocast(device_type=values.device.type, enabled=False):
            for grid, inward, outward in zip(
                self.grids, self.project_in, self.project_out, strict=True
            ):
                scaled, codes = round_to_grid(inward(level_input), grid)
                level_input = outward(scaled)
                quantized.append(level_input.reshape(count, self.patch_size, self.dim))
                indices.append(codes)
        zero = patches.x.new_zeros(())
        output = QuantizerOutput(
            quantized=[scatter_patches(q, patches.positions, n, num_patches) for q in quantized],
            indices=[scatter_ids(i, patches.positions, n, num_patches) for i in indices],
            commitment=[zero for _ in quantized],
        )
        if self.training:
            output.statistics = UsageStatistics(
                [
                    F.one_hot(i, size).sum(0).float()
                    for i, size in zip(indices, self.sizes, strict=True)
                ]
            )
        return output

    @torch.no_grad()
    def update(self, statistics: UsageStatistics) -> dict[str, Tensor]:
        """All-reduce one step's code counts (every rank then reports the same usage)."""
        flat = all_reduce_sum_(torch.cat(statistics.counts))
        usage: dict[str, Tensor] = {}
        offset = 0
        for level, size in enumerate(self.sizes):
            usage.update(usage_of(level, flat[offset : offset + size]))
            offset += size
        self.num_updates += 1
        return usage
