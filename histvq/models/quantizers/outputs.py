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
