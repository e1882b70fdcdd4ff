"""Distances between temporal patches and codes, without the (patches x codes x frames x
dims) difference tensor."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from histvq.errors import ConfigError

Distance = Literal["frame_l2_sum", "l2"]
DISTANCES: tuple[str, ...] = ("frame_l2_sum", "l2")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """A config value must be one of ``choices``."""
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
