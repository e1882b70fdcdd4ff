"""Patch codebooks updated by EMA, stacked into HiST-VQ's hierarchical quantizer.

Level 1 maps each valid patch to its nearest code; level l > 1 maps the code chosen at level
l-1 (not the patch) to its nearest code of level l, so a level-l assignment is a function of
the level-(l-1) code and costs one small code-to-code distance table. Codebooks are buffers,
updated from EMA statistics (decay ``beta``, Laplace smoothing), never by the optimiser.

When the update happens is a protocol choice (``update``):

- ``before_output`` (SMQ's reference code): a training step assigns codes with the current
  codebook, applies the EMA update and dead-code re-seeding, and only then forms the
  quantized output and the commitment target from the *updated* codebook. Level l > 1 is
  assigned, updated and quantized after level l-1 has been, from its updated codes.
- ``after_backward``: the output and commitment target use the codebook as it was before the
  step; the step's statistics are applied after the backward pass.

Distributed training is part of the design, not a retrofit: per-step assignment counts and
sums are all-reduced across processes before the EMA update, so every rank holds the same
codebooks, equal to those of one process seeing the concatenated batch; dead codes are
re-seeded from candidates gathered from all ranks (in rank order) with the same generator on
every rank, so every rank draws the same replacement. Distances and EMA statistics are always
computed in float32, also under mixed precision.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from histvq.distributed import all_gather_cat, all_reduce_sum_
from histvq.errors import ConfigError
from histvq.models.quantizers.codebook import EMACodebook, kmeans
from histvq.models.quantizers.distances import Distance, check_choice
from histvq.models.quantizers.outputs import (
    BottomAssignment,
    CodebookStatistics,
    QuantizerOutput,
    ValidPatches,
    scatter_ids,
    scatter_patches,
    select_valid,
    usage_of,
)

T = TypeVar("T")
INITS: tuple[str, ...] = ("kaiming", "kmeans")
UPDATES: tuple[str, ...] = ("before_output", "after_backward")


def _float32(method: Callable[..., T]) -> Callable[..., T]:
    """Run a quantizer method with autocast off: distances, assignments and EMA statistics
    stay float32 under mixed precision."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> T:
        device = next(self.buffers()).device.type
        with torch.autocast(device_type=device, enabled=False):
            return method(self, *args, **kwargs)

    return wrapper


def codebook_sizes(num_classes: int, levels: int, alpha: float) -> list[int]:
    """Codes per level, bottom first: level l has K * alpha**(levels - l) codes, the top K."""
    if levels < 1:
        raise ConfigError(f"model.levels must be >= 1, got {levels}")
    if alpha < 1:
        raise ConfigError(f"model.alpha must be >= 1, got {alpha}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    return [max(1, round(num_classes * alpha ** (levels - 1 - lv))) for lv in range(levels)]


class HierarchicalQuantizer(nn.Module):
    """HiST-VQ's stack of EMA codebooks (SMQ is the one-level case).

    The building blocks (:meth:`select`, :meth:`assign_bottom`, :meth:`update_before_output`,
    :meth:`quantize`, and :meth:`statistics` / :meth:`update` for ``after_backward``) let a
    batch be processed in micro-batches whose codebook update is exactly the whole batch's;
    :meth:`forward` composes them for one batch.

    Args:
        num_classes: K, the size of the top codebook.
        patch_size: P frames per patch.
        dim: E, the per-frame token size (M*V*D).
        levels: number of codebooks; level l (1 = bottom) has K * alpha**(levels - l) codes.
        alpha: ratio between consecutive codebook sizes.
        decay: EMA decay beta.
        dead_code_thresholds: nu per level, bottom first; levels beyond the list reuse its
            last value. A code whose EMA count falls under nu is re-seeded from the mean of
            round(nu) candidates.
        distance: ``frame_l2_sum`` (reference code) or ``l2`` (paper's formula).
        init: ``kaiming`` (random, the paper's choice) or ``kmeans`` (on the first training
            batch, or its first micro-batch).
        update: ``before_output`` (reference) or ``after_backward``; see the module docs.
        smoothing: ``per_code`` (reference) or ``total``; see :class:`EMACodebook`.
        reseed_seed: the dead-code draws use a CPU generator seeded with this value at every
            re-seeding (the reference seeds 42 each time, so equal pool sizes draw the same
            permutation); None seeds it from (``seed``, step, level) instead.
        seed: the run's seed (used when ``reseed_seed`` is None and for k-means).
    """

    def __init__(
        self,
        num_classes: int,
        patch_size: int,
        dim: int,
        levels: int = 2,
        alpha: float = 2,
        decay: float = 0.5,
        dead_code_thresholds: Sequence[float] = (3.0, 1.0),
        distance: Distance = "frame_l2_sum",
        init: str = "kaiming",
        kmeans_iters: int = 10,
        eps: float = 1e-5,
        update: str = "before_output",
        smoothing: str = "per_code",
        reseed_seed: int | None = 42,
        seed: int = 0,
    ):
        super().__init__()
        check_choice("model.quantizer.init", init, INITS)
        check_choice("model.quantizer.update", update, UPDATES)
        thresholds = list(dead_code_thresholds)
        if not thresholds:
            raise ConfigError("model.dead_code_thresholds must list at least one value")
        thresholds += [thresholds[-1]] * (levels - len(thresholds))
        self.sizes = codebook_sizes(num_classes, levels, alpha)
        self.levels, self.patch_size, self.dim = levels, patch_size, dim
        self.init, self.kmeans_iters, self.seed = init, kmeans_iters, seed
        self.update_mode, self.reseed_seed = update, reseed_seed
        self.codebooks = nn.ModuleList(
            EMACodebook(size, patch_size, dim, decay, thresholds[lv], distance, eps, smoothing)
            for lv, size in enumerate(self.sizes)
        )
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("kmeans_done", torch.zeros((), dtype=torch.bool))

    @property
    def updates_before_output(self) -> bool:
        return self.update_mode == "before_output"

    def _generator(self, level: int, salt: int = 0) -> torch.Generator:
        if self.reseed_seed is not None and salt == 0:
            return torch.Generator().manual_seed(int(self.reseed_seed))
        step = int(self.num_updates)
        return torch.Generator().manual_seed(
            (self.seed * 1_000_003 + step * 7_919 + level * 104_729 + salt) % (2**63)
        )

    # ------------------------------------------------------------------ building blocks
    def select(self, values: Tensor, frame_mask: Tensor, valid: Tensor) -> ValidPatches:
        """The valid patches of ``values`` (N, Np, P, E) with masks (N, Np, P), (N, Np)."""
        return select_valid(values, frame_mask, valid)

    @torch.no_grad()
    @_float32
    def assign_bottom(self, x: Tensor) -> BottomAssignment:
        """Level-1 codes of patches x (Nv, P, E) with the current codebook (running the
        one-off k-means initialisation first when it is due)."""
        x = x.detach().float()
        if self.training and self.init == "kmeans" and not bool(self.kmeans_done):
            self._kmeans_init(x)
        return BottomAssignment(x, self.codebooks[0].nearest(x))

    @torch.no_grad()
    @_float32
    def assign(self, x: Tensor) -> list[Tensor]:
        """Codes of every level for patches x with the current codebooks (no update)."""
        indices = [self.assign_bottom(x).indices]
        for lv in range(1, self.levels):
            table = self.codebooks[lv].nearest(self.codebooks[lv - 1].codes)
            indices.append(table[indices[-1]])
        return indices

    @_float32
    def quantize(self, patches: ValidPatches, indices: list[Tensor]) -> QuantizerOutput:
        """Straight-through outputs and commitment losses of ``patches`` for the given codes
        of every level, with the codebooks as they are now."""
        quantized, commitment = [], []
        level_input = patches.x
        for book, idx in zip(self.codebooks, indices, strict=True):
            q = book.codes.index_select(0, idx)
            commitment.append(_masked_mse(level_input, q, patches.frame_mask))
            level_input = level_input + (q - level_input).detach()
            quantized.append(level_input)
        n, num_patches = patches.grid
        return QuantizerOutput(
            quantized=[scatter_patches(q, patches.positions, n, num_patches) for q in quantized],
            indices=[scatter_ids(i, patches.positions, n, num_patches) for i in indices],
            commitment=commitment,
        )

    @torch.no_grad()
    @_float32
    def update_before_output(self, bottom: BottomAssignment) -> tuple[list[Tensor], dict]:
        """One training step of the reference protocol for a whole batch's level-1
        assignment: per level, all-reduced EMA update and dead-code re-seeding, then the
        next level's codes from this level's updated codes. Returns every level's codes
        (aligned with ``bottom.patches``) and the codebook usage (tensors)."""
        usage: dict[str, Tensor] = {}
        indices = [bottom.indices]
        level_inputs = bottom.patches
        for lv, book in enumerate(self.codebooks):
            if lv > 0:
                previous = self.codebooks[lv - 1].codes
                indices.append(book.nearest(previous)[indices[-1]])
                level_inputs = previous.index_select(0, indices[-2])
            counts, sums = _assignment_sums(indices[lv], level_inputs, book)
            flat = all_reduce_sum_(torch.cat([counts, sums.flatten()]))
            counts, sums = flat[: book.num_codes], flat[book.num_codes :].view_as(book.codes)
            book.ema_update(counts, sums)
            usage.update(usage_of(lv, counts))
            lower_codes = None if lv == 0 else self.codebooks[lv - 1].codes
            self._reseed_dead(lv, bottom.patches, indices, lower_codes, usage)
        self.num_updates += 1
        return indices, usage

    @torch.no_grad()
    def _reseed_dead(
        self,
        lv: int,
        patches: Tensor,
        indices: list[Tensor],
        lower_codes: Tensor | None,
        usage: dict[str, Tensor],
    ) -> None:
        """Count level ``lv``'s dead codes into ``usage`` and re-seed them: level 1 from the
        (all-gathered) encoder patches, a higher level from the lower level's codes
        ``lower_codes`` picked by the (all-gathered) lower-level indices."""
        book = self.codebooks[lv]
        dead = book.dead_mask()
        usage[f"level{lv + 1}/dead_codes"] = dead.sum().float()
        if not bool(dead.any()):
            return
        if lv == 0:
            candidates = all_gather_cat(patches)
        else:
            candidates = lower_codes.index_select(0, all_gather_cat(indices[lv - 1]))
        book.reseed(torch.nonzero(dead).flatten(), candidates, self._generator(lv))

    @torch.no_grad()
    @_float32
    def statistics(self, patches: Tensor, indices: list[Tensor]) -> CodebookStatistics:
        """``after_backward``: the step's per-level statistics with the current codebooks."""
        counts, sums = [], []
        for lv, book in enumerate(self.codebooks):
            level_input = patches if lv == 0 else self.codebooks[lv - 1].codes[indices[lv - 1]]
            c, s = _assignment_sums(indices[lv], level_input, book)
            counts.append(c)
            sums.append(s)
        return CodebookStatistics(counts=counts, sums=sums, patches=patches, indices=indices)

    @torch.no_grad()
    @_float32
    def update(self, statistics: CodebookStatistics) -> dict[str, Tensor]:
        """``after_backward``: all-reduced EMA update of every level from the statistics
        gathered with the pre-step codebooks, then dead-code re-seeding. Returns the
        codebook usage (tensors)."""
        snapshot = [book.codes.clone() for book in self.codebooks]
        # One collective for all statistics of all levels.
        flat = all_reduce_sum_(
            torch.cat([t.flatten() for t in statistics.counts + statistics.sums])
        )
        usage: dict[str, Tensor] = {}
        offset = 0
        reduced_counts: list[Tensor] = []
        for book in self.codebooks:
            reduced_counts.append(flat[offset : offset + book.num_codes])
            offset += book.num_codes
        for lv, book in enumerate(self.codebooks):
            size = book.codes.numel()
            book.ema_update(reduced_counts[lv], flat[offset : offset + size].view_as(book.codes))
            offset += size
            usage.update(usage_of(lv, reduced_counts[lv]))
        for lv in range(len(self.codebooks)):
            lower_codes = None if lv == 0 else snapshot[lv - 1]
            self._reseed_dead(lv, statistics.patches, statistics.indices, lower_codes, usage)
        self.num_updates += 1
        return usage

    # ------------------------------------------------------------------ one batch
    def forward(self, values: Tensor, frame_mask: Tensor, valid: Tensor) -> QuantizerOutput:
        """Quantize patches ``values`` (N, Np, P, E) with masks (N, Np, P) and (N, Np).

        Evaluation mode only assigns codes. In training mode ``before_output`` also applies
        this batch's codebook update before forming the output (the output then carries the
        usage); ``after_backward`` leaves the codebooks as they are and returns the
        statistics for :meth:`update`.
        """
        patches = self.select(values, frame_mask, valid)
        if self.training and self.updates_before_output:
            indices, usage = self.update_before_output(self.assign_bottom(patches.x))
            output = self.quantize(patches, indices)
            output.usage = usage
            return output
        indices = self.assign(patches.x)
        output = self.quantize(patches, indices)
        if self.training:
            output.statistics = self.statistics(patches.x.detach(), indices)
        return output

    @torch.no_grad()
    def _kmeans_init(self, x: Tensor) -> None:
        """Initialise every level by k-means: level 1 on the batch's patches (all ranks),
        level l on the level-(l-1) codes the patches map to."""
        samples = all_gather_cat(x)
        for lv, book in enumerate(self.codebooks):
            centres, sizes = kmeans(
                samples,
                book.num_codes,
                book.distance,
                self._generator(lv, salt=1),
                iters=self.kmeans_iters,
            )
            book.set_codes(centres, sizes)
            samples = book.codes.index_select(0, book.nearest(samples))
        self.kmeans_done.fill_(True)


def _assignment_sums(indices: Tensor, inputs: Tensor, book: EMACodebook) -> tuple[Tensor, Tensor]:
    """Assignment counts (K,) and input sums (K, P, E) of one level."""
    onehot = F.one_hot(indices, book.num_codes).float()
    return onehot.sum(0), (onehot.T @ inputs.flatten(1)).reshape(book.codes.shape)


def _masked_mse(x: Tensor, target: Tensor, frame_mask: Tensor) -> Tensor:
    """||x - sg(target)||^2 averaged over valid frames and token dimensions."""
    sq = (x - target.detach()).pow(2).sum(-1)  # (Nv, P)
    denominator = (frame_mask.sum() * x.shape[-1]).clamp_min(1.0)
    return (sq * frame_mask).sum() / denominator
