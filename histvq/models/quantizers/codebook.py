"""One level's codebook: EMA statistics, Laplace smoothing, dead-code re-seeding, k-means."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from histvq.errors import ConfigError
from histvq.models.quantizers import distances
from histvq.models.quantizers.distances import DISTANCES, Distance, check_choice

SMOOTHINGS: tuple[str, ...] = ("per_code", "total")


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
        check_choice("model.distance", distance, DISTANCES)
        check_choice("model.quantizer.smoothing", smoothing, SMOOTHINGS)
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
        return distances.patch_distances(x, self.codes, self.distance)

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
    closest = distances.patch_distances(samples, samples[first][None], distance)[:, 0]
    for _ in range(1, k):
        weights = closest.pow(2)
        if float(weights.sum()) <= 0:
            pick = int(torch.randint(n, (1,), generator=generator))
        else:
            pick = int(torch.multinomial(weights.cpu(), 1, generator=generator))
        centres.append(samples[pick])
        closest = torch.minimum(
            closest, distances.patch_distances(samples, samples[pick][None], distance)[:, 0]
        )
    centres_t = torch.stack(centres)
    sizes = torch.zeros(k, device=samples.device)
    for _ in range(iters):
        assign = distances.patch_distances(samples, centres_t, distance).argmin(1)
        onehot = F.one_hot(assign, k).to(samples.dtype)
        sizes = onehot.sum(0)
        sums = (onehot.T @ samples.flatten(1)).reshape(centres_t.shape)
        filled = sizes > 0
        centres_t[filled] = sums[filled] / sizes[filled][:, None, None]
    return centres_t, sizes.clamp_min(1.0)
