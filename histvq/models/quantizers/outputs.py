"""What the hierarchical quantizer hands out: valid patches, assignments, statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


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


def select_valid(values: Tensor, frame_mask: Tensor, valid: Tensor) -> ValidPatches:
    """The valid patches of ``values`` (N, Np, P, E) with masks (N, Np, P) and (N, Np),
    flattened to float32 (also under mixed precision)."""
    n, num_patches, p, e = values.shape
    positions = torch.nonzero(valid.reshape(-1)).flatten()
    with torch.autocast(device_type=values.device.type, enabled=False):
        x = values.float().reshape(n * num_patches, p, e).index_select(0, positions)
        fmask = frame_mask.reshape(-1, p).index_select(0, positions).float()
    return ValidPatches(x, fmask, positions, (n, num_patches))


def scatter_patches(values: Tensor, valid_idx: Tensor, n: int, num_patches: int) -> Tensor:
    """Valid patches back into the (N, Np, ...) grid, zeros on invalid patches."""
    full = values.new_zeros((n * num_patches, *values.shape[1:]))
    full = full.index_copy(0, valid_idx, values)
    return full.reshape(n, num_patches, *values.shape[1:])


def scatter_ids(ids: Tensor, valid_idx: Tensor, n: int, num_patches: int) -> Tensor:
    """Codes of the valid patches back into the (N, Np) grid, -1 on invalid patches."""
    full = torch.full((n * num_patches,), -1, dtype=ids.dtype, device=ids.device)
    full[valid_idx] = ids
    return full.reshape(n, num_patches)


def usage_of(level: int, counts: Tensor) -> dict[str, Tensor]:
    """Perplexity and number of codes used by one step's (all-reduced) assignments."""
    share = counts / counts.sum().clamp_min(1.0)
    entropy = -(share * share.clamp_min(1e-12).log()).sum()
    return {
        f"level{level + 1}/perplexity": entropy.exp(),
        f"level{level + 1}/used_codes": (counts > 0).sum().float(),
    }
