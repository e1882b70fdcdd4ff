"""Patch codebooks updated by EMA, stacked into HiST-VQ's hierarchical quantizer.

Level 1 maps each valid patch to its nearest code; level l > 1 maps the code chosen at level
l-1 (not the patch) to its nearest code of level l, so a level-l assignment is a function of
the level-(l-1) code and costs one small code-to-code distance table. Codebooks are buffers,
updated from EMA statistics (decay ``beta``, Laplace smoothing), never by the optimiser.

Distributed training is part of the design, not a retrofit: per-step assignment counts and
sums are all-reduced across processes before the EMA update, so every rank holds the same
codebooks, equal to those of one process seeing the concatenated batch; dead codes are
re-seeded from candidates gathered from all ranks (in rank order) with a generator seeded by
(seed, step, level), so every rank draws the same replacement. Distances and EMA statistics
are always computed in float32, also under mixed precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from histvq.distributed import all_gather_cat, all_reduce_sum_
from histvq.errors import ConfigError

Distance = Literal["frame_l2_sum", "l2"]
DISTANCES: tuple[str, ...] = ("frame_l2_sum", "l2")
INITS: tuple[str, ...] = ("kaiming", "kmeans")


def patch_distances(x: Tensor, codes: Tensor, distance: Distance) -> Tensor:
    """Distances (N, K) between patches x (N, P, E) and codes (K, P, E), via matmuls.

    ``frame_l2_sum`` (SMQ's reference) sums the Euclidean distances of the P frames;
    ``l2`` (the paper's formula) is the Euclidean distance of the flattened patches. Both use
    the expansion ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, so memory is O(N*K*P), never the
    (N, K, P, E) difference tensor.
    """
    if distance == "l2":
        xf, cf = x.flatten(1), codes.flatten(1)
        sq = (xf * xf).sum(1)[:, None] + (cf * cf).sum(1)[None, :] - 2.0 * (xf @ cf.T)
        return sq.clamp_min_(0.0).sqrt_()
    if distance == "frame_l2_sum":
        x_sq = (x * x).sum(-1).T  # (P, N)
        c_sq = (codes * codes).sum(-1).T  # (P, K)
        cross = torch.bmm(x.transpose(0, 1), codes.permute(1, 2, 0))  # (P, N, K)
        sq = x_sq[:, :, None] + c_sq[:, None, :] - 2.0 * cross
        return sq.clamp_min_(0.0).sqrt_().sum(0)
    raise ConfigError(f"model.distance: unknown value {distance!r} (choose from {DISTANCES})")


def direct_patch_distances(x: Tensor, codes: Tensor, distance: Distance) -> Tensor:
    """Reference formula by broadcasting the (N, K, P, E) difference; for tests and benchmarks."""
    diff = x[:, None] - codes[None]
    if distance == "l2":
        return diff.pow(2).sum(dim=(2, 3)).sqrt()
    return diff.pow(2).sum(-1).sqrt().sum(-1)


def codebook_sizes(num_classes: int, levels: int, alpha: float) -> list[int]:
    """Codes per level, bottom first: level l has K * alpha**(levels - l) codes, the top K."""
    if levels < 1:
        raise ConfigError(f"model.levels must be >= 1, got {levels}")
    if alpha < 1:
        raise ConfigError(f"model.alpha must be >= 1, got {alpha}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    return [max(1, round(num_classes * alpha ** (levels - 1 - lv))) for lv in range(levels)]


class EMACodebook(nn.Module):
    """One level's codebook (K, P, E) with EMA counts and sums, and dead-code re-seeding."""

    def __init__(
        self,
        num_codes: int,
        patch_size: int,
        dim: int,
        decay: float = 0.5,
        dead_threshold: float = 3.0,
        distance: Distance = "frame_l2_sum",
        eps: float = 1e-5,
    ):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.decay must be in [0, 1), got {decay}")
        if distance not in DISTANCES:
            raise ConfigError(
                f"model.distance: unknown value {distance!r} (choose from {DISTANCES})"
            )
        self.num_codes, self.patch_size, self.dim = num_codes, patch_size, dim
        self.decay, self.dead_threshold, self.distance, self.eps = (
            decay,
            dead_threshold,
            distance,
            eps,
        )
        self.register_buffer("codes", torch.empty(num_codes, patch_size, dim))
        self.register_buffer("counts", torch.empty(num_codes))
        self.register_buffer("sums", torch.empty(num_codes, patch_size, dim))
        self.reset_codebook()

    @property
    def samples_per_reseed(self) -> int:
        """How many candidates are averaged into one re-seeded code (the threshold, >= 1)."""
        return max(1, round(self.dead_threshold))

    @torch.no_grad()
    def reset_codebook(self) -> None:
        """Kaiming-uniform codes with unit counts (as the reference), drawn from torch's RNG."""
        nn.init.kaiming_uniform_(self.codes)
        self.counts.fill_(1.0)
        self.sums.copy_(self.codes)

    @torch.no_grad()
    def set_codes(self, codes: Tensor, counts: Tensor) -> None:
        self.codes.copy_(codes)
        self.counts.copy_(counts)
        self.sums.copy_(codes * counts[:, None, None])

    def distances(self, x: Tensor) -> Tensor:
        return patch_distances(x, self.codes, self.distance)

    def nearest(self, x: Tensor) -> Tensor:
        """Index of the nearest code for each of x's (N, P, E) patches (first on ties)."""
        return self.distances(x).argmin(dim=1)

    @torch.no_grad()
    def ema_update(self, batch_counts: Tensor, batch_sums: Tensor) -> None:
        """EMA of counts and sums, then codes = sums / Laplace-smoothed counts."""
        self.counts.mul_(self.decay).add_(batch_counts, alpha=1.0 - self.decay)
        self.sums.mul_(self.decay).add_(batch_sums, alpha=1.0 - self.decay)
        total = self.counts.sum()
        smoothed = (self.counts + self.eps) / (total + self.num_codes * self.eps) * total
        self.codes.copy_(self.sums / smoothed[:, None, None])

    def dead_codes(self) -> Tensor:
        """Indices of codes whose EMA count is under the threshold (none when it is 0)."""
        if self.dead_threshold <= 0:
            return self.counts.new_zeros(0, dtype=torch.long)
        return torch.nonzero(self.counts < self.dead_threshold).flatten()

    @torch.no_grad()
    def reseed(self, dead: Tensor, candidates: Tensor, generator: torch.Generator) -> None:
        """Replace each dead code by the mean of ``samples_per_reseed`` candidates drawn from
        the half of ``candidates`` (N, P, E) closest to the codebook, without replacement
        (cycling through the pool when it is too small)."""
        if dead.numel() == 0 or candidates.shape[0] == 0:
            return
        closest = self.distances(candidates).min(dim=1).values
        pool = torch.nonzero(closest <= torch.quantile(closest, 0.5)).flatten()
        per_code = self.samples_per_reseed
        needed = dead.numel() * per_code
        order = torch.randperm(pool.numel(), generator=generator).to(pool.device)
        chosen = pool[order.repeat(math.ceil(needed / pool.numel()))[:needed]]
        means = candidates[chosen].reshape(dead.numel(), per_code, *candidates.shape[1:]).mean(1)
        self.codes[dead] = means
        self.counts[dead] = float(self.dead_threshold)
        self.sums[dead] = means * float(self.dead_threshold)


def kmeans(
    samples: Tensor, k: int, distance: Distance, generator: torch.Generator, iters: int = 10
) -> tuple[Tensor, Tensor]:
    """k-means++ seeding then Lloyd iterations on patches (N, P, E); returns centres, sizes.

    With fewer samples than centres, samples are reused cyclically.
    """
    n = samples.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [samples[first]]
    closest = patch_distances(samples, samples[first][None], distance)[:, 0]
    for _ in range(1, k):
        weights = closest.pow(2)
        if float(weights.sum()) <= 0:
            pick = int(torch.randint(n, (1,), generator=generator))
        else:
            pick = int(torch.multinomial(weights.cpu(), 1, generator=generator))
        centres.append(samples[pick])
        closest = torch.minimum(
            closest, patch_distances(samples, samples[pick][None], distance)[:, 0]
        )
    centres_t = torch.stack(centres)
    sizes = torch.zeros(k, device=samples.device)
    for _ in range(iters):
        assign = patch_distances(samples, centres_t, distance).argmin(1)
        onehot = F.one_hot(assign, k).to(samples.dtype)
        sizes = onehot.sum(0)
        sums = (onehot.T @ samples.flatten(1)).reshape(centres_t.shape)
        filled = sizes > 0
        centres_t[filled] = sums[filled] / sizes[filled][:, None, None]
    return centres_t, sizes.clamp_min(1.0)


@dataclass
class CodebookStatistics:
    """One step's assignment statistics, not yet reduced across processes.

    Per level (bottom first): assignment counts (K,) and input sums (K, P, E); the valid
    patches (the level-1 inputs, candidates for re-seeding level 1) and the per-level code
    ids (level l > 1 re-seeds from the level-(l-1) codes they select). Statistics of several
    micro-batches of one batch merge into the statistics of the whole batch.
    """

    counts: list[Tensor]
    sums: list[Tensor]
    patches: Tensor
    indices: list[Tensor]

    def merge(self, other: CodebookStatistics | None) -> CodebookStatistics:
        if other is None:
            return self
        return CodebookStatistics(
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            sums=[a + b for a, b in zip(self.sums, other.sums, strict=True)],
            patches=torch.cat([self.patches, other.patches]),
            indices=[torch.cat([a, b]) for a, b in zip(self.indices, other.indices, strict=True)],
        )


@dataclass
class QuantizerOutput:
    """Per level (bottom first): straight-through quantized patches (N, Np, P, E), zero on
    invalid patches; code ids (N, Np), -1 on invalid patches; commitment losses; and, in
    training mode, the statistics :meth:`HierarchicalQuantizer.update` consumes."""

    quantized: list[Tensor]
    indices: list[Tensor]
    commitment: list[Tensor]
    statistics: CodebookStatistics | None = None


class HierarchicalQuantizer(nn.Module):
    """HiST-VQ's stack of EMA codebooks (SMQ is the one-level case).

    ``forward`` assigns codes with the codebooks as they are; ``update`` then applies one
    training step's statistics (EMA, dead-code re-seeding). Keeping them apart lets a batch
    be processed in micro-batches that all see the same codebooks and update them once.

    Args:
        num_classes: K, the size of the top codebook.
        patch_size: P frames per patch.
        dim: E, the per-frame token size (M*V*D).
        levels: number of codebooks; level l (1 = bottom) has K * alpha**(levels - l) codes.
        alpha: ratio between consecutive codebook sizes.
        decay: EMA decay beta.
        dead_code_thresholds: nu per level, bottom first; levels beyond the list reuse its
            last value. A code whose EMA count falls under nu is re-seeded.
        distance: ``frame_l2_sum`` (reference code) or ``l2`` (paper's formula).
        init: ``kaiming`` (random, the paper's choice) or ``kmeans`` (on the first training
            batch, or its first micro-batch).
        seed: seeds the dead-code draws together with the step and level.
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
        seed: int = 0,
    ):
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"model.quantizer.init: unknown value {init!r} (choose from {INITS})")
        thresholds = list(dead_code_thresholds)
        if not thresholds:
            raise ConfigError("model.dead_code_thresholds must list at least one value")
        thresholds += [thresholds[-1]] * (levels - len(thresholds))
        self.sizes = codebook_sizes(num_classes, levels, alpha)
        self.levels, self.patch_size, self.dim = levels, patch_size, dim
        self.init, self.kmeans_iters, self.seed = init, kmeans_iters, seed
        self.codebooks = nn.ModuleList(
            EMACodebook(size, patch_size, dim, decay, thresholds[lv], distance, eps)
            for lv, size in enumerate(self.sizes)
        )
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("kmeans_done", torch.zeros((), dtype=torch.bool))

    def _generator(self, level: int, salt: int = 0) -> torch.Generator:
        step = int(self.num_updates)
        return torch.Generator().manual_seed(
            (self.seed * 1_000_003 + step * 7_919 + level * 104_729 + salt) % (2**63)
        )

    def forward(self, values: Tensor, frame_mask: Tensor, valid: Tensor) -> QuantizerOutput:
        """Quantize patches ``values`` (N, Np, P, E) with masks (N, Np, P) and (N, Np).

        Codebooks are not changed here (except the one-off k-means initialisation before the
        first update); in training mode the output carries the step's statistics.
        """
        n, num_patches, p, e = values.shape
        valid_idx = torch.nonzero(valid.reshape(-1)).flatten()
        with torch.autocast(device_type=values.device.type, enabled=False):
            x = values.float().reshape(n * num_patches, p, e).index_select(0, valid_idx)
            fmask = frame_mask.reshape(-1, p).index_select(0, valid_idx).float()
            if self.training and self.init == "kmeans" and not bool(self.kmeans_done):
                self._kmeans_init(x.detach())

            indices, inputs_st, chosen = self._assign(x)
            quantized, commitment = [], []
            for level_input, q in zip(inputs_st, chosen, strict=True):
                commitment.append(_masked_mse(level_input, q, fmask))
                quantized.append(level_input + (q - level_input).detach())
            statistics = self._statistics(x.detach(), indices, chosen) if self.training else None

        return QuantizerOutput(
            quantized=[_scatter_patches(q, valid_idx, n, num_patches) for q in quantized],
            indices=[_scatter_ids(i, valid_idx, n, num_patches) for i in indices],
            commitment=commitment,
            statistics=statistics,
        )

    def _assign(self, x: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Codes per level, each level's (straight-through) input, and the chosen code values."""
        indices: list[Tensor] = []
        inputs: list[Tensor] = []
        chosen: list[Tensor] = []
        level_input = x
        for lv, book in enumerate(self.codebooks):
            if lv == 0:
                idx = book.nearest(x.detach())
            else:
                table = book.nearest(self.codebooks[lv - 1].codes)
                idx = table[indices[-1]]
            q = book.codes.index_select(0, idx)
            indices.append(idx)
            inputs.append(level_input)
            chosen.append(q)
            level_input = level_input + (q - level_input).detach()
        return indices, inputs, chosen

    @torch.no_grad()
    def _statistics(
        self, x: Tensor, indices: list[Tensor], chosen: list[Tensor]
    ) -> CodebookStatistics:
        counts, sums = [], []
        for lv, book in enumerate(self.codebooks):
            onehot = F.one_hot(indices[lv], book.num_codes).float()
            level_input = x if lv == 0 else chosen[lv - 1]
            counts.append(onehot.sum(0))
            sums.append((onehot.T @ level_input.flatten(1)).reshape(book.codes.shape))
        return CodebookStatistics(counts=counts, sums=sums, patches=x, indices=indices)

    @torch.no_grad()
    def update(self, statistics: CodebookStatistics) -> dict[str, float]:
        """One training step: all-reduced EMA update of every level, then dead-code
        re-seeding. Returns codebook-usage statistics (perplexity, used and dead codes)."""
        snapshot = [book.codes.clone() for book in self.codebooks]
        # One collective for all statistics of all levels.
        flat = all_reduce_sum_(
            torch.cat([t.flatten() for t in statistics.counts + statistics.sums])
        )
        stats: dict[str, float] = {}
        offset = 0
        reduced_counts: list[Tensor] = []
        for book in self.codebooks:
            reduced_counts.append(flat[offset : offset + book.num_codes])
            offset += book.num_codes
        for lv, book in enumerate(self.codebooks):
            size = book.codes.numel()
            book.ema_update(reduced_counts[lv], flat[offset : offset + size].view_as(book.codes))
            offset += size
            usage = reduced_counts[lv] / reduced_counts[lv].sum().clamp_min(1.0)
            entropy = -(usage * usage.clamp_min(1e-12).log()).sum()
            stats[f"level{lv + 1}/perplexity"] = float(entropy.exp())
            stats[f"level{lv + 1}/used_codes"] = float((reduced_counts[lv] > 0).sum())
        for lv, book in enumerate(self.codebooks):
            dead = book.dead_codes()
            stats[f"level{lv + 1}/dead_codes"] = float(dead.numel())
            if dead.numel():
                if lv == 0:
                    candidates = all_gather_cat(statistics.patches)
                else:
                    chosen = all_gather_cat(statistics.indices[lv - 1])
                    candidates = snapshot[lv - 1].index_select(0, chosen)
                book.reseed(dead, candidates, self._generator(lv))
        self.num_updates += 1
        return stats

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


def _masked_mse(x: Tensor, target: Tensor, frame_mask: Tensor) -> Tensor:
    """||x - sg(target)||^2 averaged over valid frames and token dimensions."""
    sq = (x - target.detach()).pow(2).sum(-1)  # (Nv, P)
    denominator = (frame_mask.sum() * x.shape[-1]).clamp_min(1.0)
    return (sq * frame_mask).sum() / denominator


def _scatter_patches(values: Tensor, valid_idx: Tensor, n: int, num_patches: int) -> Tensor:
    full = values.new_zeros((n * num_patches, *values.shape[1:]))
    full = full.index_copy(0, valid_idx, values)
    return full.reshape(n, num_patches, *values.shape[1:])


def _scatter_ids(ids: Tensor, valid_idx: Tensor, n: int, num_patches: int) -> Tensor:
    full = torch.full((n * num_patches,), -1, dtype=ids.dtype, device=ids.device)
    full[valid_idx] = ids
    return full.reshape(n, num_patches)
