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
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from histvq.distributed import all_gather_cat, all_reduce_sum_
from histvq.errors import ConfigError

T = TypeVar("T")
Distance = Literal["frame_l2_sum", "l2"]
DISTANCES: tuple[str, ...] = ("frame_l2_sum", "l2")
INITS: tuple[str, ...] = ("kaiming", "kmeans")
UPDATES: tuple[str, ...] = ("before_output", "after_backward")
SMOOTHINGS: tuple[str, ...] = ("per_code", "total")


def _float32(method: Callable[..., T]) -> Callable[..., T]:
    """Run a quantizer method with autocast off: distances, assignments and EMA statistics
    stay float32 under mixed precision."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> T:
        device = next(self.buffers()).device.type
        with torch.autocast(device_type=device, enabled=False):
            return method(self, *args, **kwargs)

    return wrapper


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: unknown value {value!r} (choose from {choices})")


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
    """One level's codebook (K, P, E) with EMA counts and sums, and dead-code re-seeding.

    ``smoothing`` is how the EMA counts are Laplace-smoothed before dividing the sums:
    ``per_code`` (SMQ's reference code) smooths each count against itself,
    n_k (n_k + eps) / (n_k + K eps); ``total`` is the textbook form over all counts,
    (n_k + eps) / (n + K eps) * n. Both differ from n_k by about eps (``per_code`` gives 0
    for a zero count; such a code keeps its value).
    """

    def __init__(
        self,
        num_codes: int,
        patch_size: int,
        dim: int,
        decay: float = 0.5,
        dead_threshold: float = 3.0,
        distance: Distance = "frame_l2_sum",
        eps: float = 1e-5,
        smoothing: str = "per_code",
    ):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.decay must be in [0, 1), got {decay}")
        _check_choice("model.distance", distance, DISTANCES)
        _check_choice("model.quantizer.smoothing", smoothing, SMOOTHINGS)
        self.num_codes, self.patch_size, self.dim = num_codes, patch_size, dim
        self.decay, self.dead_threshold, self.distance = decay, dead_threshold, distance
        self.eps, self.smoothing = eps, smoothing
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
        if self.smoothing == "per_code":
            smoothed = (
                self.counts * (self.counts + self.eps) / (self.counts + self.num_codes * self.eps)
            )
        else:
            total = self.counts.sum()
            smoothed = (self.counts + self.eps) / (total + self.num_codes * self.eps) * total
        # A code whose count reached exactly 0 (possible only without dead-code re-seeding)
        # keeps its value instead of becoming 0 / 0.
        updated = self.sums / smoothed.clamp_min(torch.finfo(smoothed.dtype).tiny)[:, None, None]
        self.codes.copy_(torch.where((smoothed > 0)[:, None, None], updated, self.codes))

    def dead_mask(self) -> Tensor:
        """(K,) bool: codes whose EMA count is under the threshold (none when it is 0)."""
        if self.dead_threshold <= 0:
            return torch.zeros_like(self.counts, dtype=torch.bool)
        return self.counts < self.dead_threshold

    @torch.no_grad()
    def reseed(self, dead: Tensor, candidates: Tensor, generator: torch.Generator) -> None:
        """Replace each dead code by the mean of ``samples_per_reseed`` candidates.

        As the reference: the pool is the half of ``candidates`` (N, P, E) closest to the
        codebook (distance to their nearest code at most the median); when the pool holds
        enough samples, a random permutation of it (CPU ``generator``) gives them, else the
        pool is taken in order and cycled. Dead code i gets samples i*s .. (i+1)*s - 1.
        """
        if dead.numel() == 0 or candidates.shape[0] == 0:
            return
        closeness = -self.distances(candidates).min(dim=1).values
        pool = torch.nonzero(closeness >= torch.quantile(closeness, 0.5)).flatten()
        per_code = self.samples_per_reseed
        needed = dead.numel() * per_code
        if pool.numel() >= needed:
            order = torch.randperm(pool.numel(), generator=generator).to(pool.device)
            chosen = pool[order[:needed]]
        else:
            chosen = pool.repeat(math.ceil(needed / pool.numel()))[:needed]
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
class ValidPatches:
    """The valid patches of a batch, flattened: x (Nv, P, E) float32 (with gradient), their
    frame masks (Nv, P) float, and where they sit in the (N, Np) patch grid."""

    x: Tensor
    frame_mask: Tensor
    positions: Tensor  # (Nv,) flat index into N * Np
    grid: tuple[int, int]  # (N, Np)


@dataclass
class BottomAssignment:
    """Level-1 codes of some valid patches (detached), before any codebook update; several
    micro-batches' assignments merge into the whole batch's (in order)."""

    patches: Tensor
    indices: Tensor

    def merge(self, other: BottomAssignment | None) -> BottomAssignment:
        if other is None:
            return self
        return BottomAssignment(
            torch.cat([self.patches, other.patches]), torch.cat([self.indices, other.indices])
        )


@dataclass
class CodebookStatistics:
    """One step's assignment statistics for ``update="after_backward"``, not yet reduced
    across processes.

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
    invalid patches; code ids (N, Np), -1 on invalid patches; commitment losses. In
    training mode with ``update="after_backward"`` the statistics that
    :meth:`HierarchicalQuantizer.update` consumes; with ``before_output`` the usage of the
    update already applied."""

    quantized: list[Tensor]
    indices: list[Tensor]
    commitment: list[Tensor]
    statistics: CodebookStatistics | None = None
    usage: dict[str, Tensor] | None = None


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
        _check_choice("model.quantizer.init", init, INITS)
        _check_choice("model.quantizer.update", update, UPDATES)
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
        n, num_patches, p, e = values.shape
        positions = torch.nonzero(valid.reshape(-1)).flatten()
        with torch.autocast(device_type=values.device.type, enabled=False):
            x = values.float().reshape(n * num_patches, p, e).index_select(0, positions)
            fmask = frame_mask.reshape(-1, p).index_select(0, positions).float()
        return ValidPatches(x, fmask, positions, (n, num_patches))

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
            quantized=[_scatter_patches(q, patches.positions, n, num_patches) for q in quantized],
            indices=[_scatter_ids(i, patches.positions, n, num_patches) for i in indices],
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
            usage.update(_usage(lv, counts))
            dead = book.dead_mask()
            usage[f"level{lv + 1}/dead_codes"] = dead.sum().float()
            if bool(dead.any()):
                if lv == 0:
                    candidates = all_gather_cat(bottom.patches)
                else:
                    chosen = all_gather_cat(indices[lv - 1])
                    candidates = self.codebooks[lv - 1].codes.index_select(0, chosen)
                book.reseed(torch.nonzero(dead).flatten(), candidates, self._generator(lv))
        self.num_updates += 1
        return indices, usage

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
            usage.update(_usage(lv, reduced_counts[lv]))
        for lv, book in enumerate(self.codebooks):
            dead = book.dead_mask()
            usage[f"level{lv + 1}/dead_codes"] = dead.sum().float()
            if bool(dead.any()):
                if lv == 0:
                    candidates = all_gather_cat(statistics.patches)
                else:
                    chosen = all_gather_cat(statistics.indices[lv - 1])
                    candidates = snapshot[lv - 1].index_select(0, chosen)
                book.reseed(torch.nonzero(dead).flatten(), candidates, self._generator(lv))
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


def _usage(level: int, counts: Tensor) -> dict[str, Tensor]:
    """Perplexity and number of codes used by one step's (all-reduced) assignments."""
    share = counts / counts.sum().clamp_min(1.0)
    entropy = -(share * share.clamp_min(1e-12).log()).sum()
    return {
        f"level{level + 1}/perplexity": entropy.exp(),
        f"level{level + 1}/used_codes": (counts > 0).sum().float(),
    }


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
