"""A second quantizer: finite scalar quantization (FSQ, Mentzer et al. 2023) in the hierarchy.

Each level projects its input patch (P x E values) to a few scalars, standardises each
scalar, bounds it with tanh and rounds it to one of L_i levels (straight-through); the code
is the mixed-radix number of the rounded scalars, so a level with grid (L_1, ..., L_d) has
prod(L_i) codes, and the quantized patch is the projection of the rounded scalars back to
P x E. There is no codebook to learn by EMA, no dead code and no commitment loss: the
projections are trained by the decoders' losses through the straight-through rounding.

Why standardise: the paper's K gives a handful of codes, so each scalar has only 2-5 levels,
and their cells sit at fixed points of tanh. On raw encoder outputs (patch values with a
standard deviation of tens) the projected scalars of the first level saturate tanh and those
of the next level (reading the first level's small projected outputs) all fall into one
cell, so every patch gets one top code; and Adam moves a projection of thousands of inputs
so fast that its outputs drift by more than their spread within a few steps. Standardising
each scalar (subtracting its mean, dividing by its standard deviation) puts the patches on
both sides of every two-level scalar's boundary. In training the moments are the current
batch's (over its valid patches, summed across processes, with gradient, as synchronised
batch normalisation; a micro-batch uses its own); running moments, updated by EMA
(``decay``) from the steps' moments and summed across processes like the usage counts, code
patches in evaluation. ``standardize=False`` is plain FSQ.

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

from histvq.distributed import all_reduce_sum, all_reduce_sum_
from histvq.errors import ConfigError
from histvq.models.quantizers.hierarchical import codebook_sizes
from histvq.models.quantizers.outputs import (
    QuantizerOutput,
    scatter_ids,
    scatter_patches,
    select_valid,
    usage_of,
)

MAX_DIMS = 3
EPS = 1e-5  # added to the variance before the square root


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


def scalar_moments(z: Tensor) -> Tensor:
    """(count, sum per scalar, sum of squares per scalar) of z (N, d), as one (1 + 2d,)
    vector that sums across micro-batches and processes (differentiable)."""
    return torch.cat([z.new_full((1,), z.shape[0]), z.sum(0), (z * z).sum(0)])


def mean_and_variance(moments: Tensor) -> tuple[Tensor, Tensor]:
    """Per-scalar mean and (biased) variance from :func:`scalar_moments` (zeros when the
    count is 0)."""
    mean, square = (moments[1:] / moments[0].clamp_min(1.0)).chunk(2)
    return mean, (square - mean * mean).clamp_min(0.0)


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
    """One step's code counts and projected-scalar moments (:func:`scalar_moments`) per
    level; several micro-batches' statistics merge into the whole batch's."""

    counts: list[Tensor]
    moments: list[Tensor]

    def merge(self, other: UsageStatistics | None) -> UsageStatistics:
        if other is None:
            return self
        return UsageStatistics(
            [a + b for a, b in zip(self.counts, other.counts, strict=True)],
            [a + b for a, b in zip(self.moments, other.moments, strict=True)],
        )


class FSQQuantizer(nn.Module):
    """The FSQ hierarchy; drop-in for :class:`~.hierarchical.HierarchicalQuantizer`
    (``model/quantizer=fsq``).

    Args:
        num_classes: K, the number of top-level codes.
        patch_size: P frames per patch.
        dim: E, the per-frame token size (M*V*D).
        levels, alpha: the hierarchy, as for the EMA quantizer.
        standardize: standardise each projected scalar before tanh (the batch's moments in
            training, the running ones in evaluation); False is plain FSQ.
        decay: EMA decay of the running moments, in [0, 1).
    """

    updates_before_output = False  # the running moments update after the step

    def __init__(
        self,
        num_classes: int,
        patch_size: int,
        dim: int,
        levels: int = 2,
        alpha: float = 2,
        standardize: bool = True,
        decay: float = 0.9,
    ):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.quantizer.decay must be in [0, 1), got {decay}")
        self.sizes = codebook_sizes(num_classes, levels, alpha)
        self.levels, self.patch_size, self.dim = levels, patch_size, dim
        self.standardize, self.decay = standardize, decay
        self.grids = [fsq_grid(size) for size in self.sizes]
        width = patch_size * dim
        self.project_in = nn.ModuleList(nn.Linear(width, len(g)) for g in self.grids)
        self.project_out = nn.ModuleList(nn.Linear(len(g), width) for g in self.grids)
        for level, grid in enumerate(self.grids):
            self.register_buffer(f"running_mean{level}", torch.zeros(len(grid)))
            self.register_buffer(f"running_var{level}", torch.ones(len(grid)))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def running_moments(self, level: int) -> tuple[Tensor, Tensor]:
        """(mean, variance) of level ``level``'s projected scalars (bottom level 0)."""
        return getattr(self, f"running_mean{level}"), getattr(self, f"running_var{level}")

    def _standardized(self, z: Tensor, level: int) -> Tensor:
        """z (N, d) standardised by this batch's moments in training (summed across
        processes), by the running moments in evaluation."""
        if not self.standardize:
            return z
        if self.training:
            mean, var = mean_and_variance(all_reduce_sum(scalar_moments(z)))
        else:
            mean, var = self.running_moments(level)
        return (z - mean) * torch.rsqrt(var + EPS)

    def forward(self, values: Tensor, frame_mask: Tensor, valid: Tensor) -> QuantizerOutput:
        """Quantize patches ``values`` (N, Np, P, E) with masks (N, Np, P) and (N, Np)."""
        patches = select_valid(values, frame_mask, valid)
        n, num_patches = patches.grid
        count = patches.x.shape[0]
        level_input = patches.x.flatten(1)
        quantized, indices, moments = [], [], []
        with torch.autocast(device_type=values.device.type, enabled=False):
            for level, (grid, inward, outward) in enumerate(
                zip(self.grids, self.project_in, self.project_out, strict=True)
            ):
                projected = inward(level_input)
                moments.append(scalar_moments(projected.detach()))
                scaled, codes = round_to_grid(self._standardized(projected, level), grid)
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
                ],
                moments,
            )
        return output

    @torch.no_grad()
    def update(self, statistics: UsageStatistics) -> dict[str, Tensor]:
        """All-reduce one step's code counts and scalar moments, and move the running
        moments towards the step's (every rank then holds the same moments and reports the
        same usage)."""
        flat = all_reduce_sum_(torch.cat([*statistics.counts, *statistics.moments]))
        counts, moments = flat.split([sum(self.sizes), flat.numel() - sum(self.sizes)])
        usage: dict[str, Tensor] = {}
        for level, level_counts in enumerate(counts.split(self.sizes)):
            usage.update(usage_of(level, level_counts))
        dims = [1 + 2 * len(grid) for grid in self.grids]
        for level, level_moments in enumerate(moments.split(dims)):
            self._follow_moments(level, level_moments)
        self.num_updates += 1
        return usage

    def _follow_moments(self, level: int, moments: Tensor) -> None:
        """EMA step of level ``level``'s running moments towards one step's (count, sums,
        sums of squares); the first step's moments replace the initial ones, and a step
        without valid patches leaves them. No host synchronisation."""
        count = moments[0]
        step_mean, step_var = mean_and_variance(moments)
        keep = torch.where(self.num_updates == 0, 0.0, self.decay)
        keep = torch.where(count > 0, keep, 1.0).to(step_mean.dtype)
        mean, var = self.running_moments(level)
        mean.copy_(keep * mean + (1.0 - keep) * step_mean)
        var.copy_(keep * var + (1.0 - keep) * step_var)
