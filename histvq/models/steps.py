"""Building blocks of a training step: micro-batches of a padded batch, the share of the
batch a micro-batch's loss terms stand for, and what a step returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from histvq.models.quantizers import CodebookStatistics


@dataclass
class StepResult:
    """One training batch's loss terms as they count in the batch loss (for logging), and
    either the codebook statistics still to apply (``after_backward``) or the usage of the
    update already applied (``before_output``)."""

    logged: dict[str, Tensor] = field(default_factory=dict)
    statistics: CodebookStatistics | None = None
    usage: dict[str, Tensor] | None = None

    def add(self, key: str, value: Tensor) -> None:
        self.logged[key] = self.logged[key] + value if key in self.logged else value


def region(name: str) -> Any:
    """A named range of the training step in profiler traces (``histvq.benchmark profile``)."""
    return torch.profiler.record_function(f"histvq/{name}")


def term_share(key: str, shares: dict[str, Tensor] | None) -> Tensor | float:
    """The share of the batch that loss term ``key`` of a micro-batch stands for."""
    if shares is None:
        return 1.0
    if key == "temporal":
        return shares["patches"]
    if key == "spatial":
        return shares["spatial"]
    return shares["frames"]


def micro_batches(
    lengths: list[int], patch_size: int, joints: int, budget: int | None
) -> list[list[int]]:
    """Split a batch (sequence ``lengths``, host ints) into contiguous groups of rows whose
    padded size (sequences x longest length rounded up to the patch size x ``joints``)
    stays within ``budget``; a sequence too long for the budget goes alone. Contiguous
    groups keep the batch's patch order, so merged codebook statistics equal the whole
    batch's."""
    if budget is None:
        return [list(range(len(lengths)))]
    padded = [-(-int(n) // patch_size) * patch_size for n in lengths]
    groups: list[list[int]] = [[]]
    longest = 0
    for row, frames in enumerate(padded):
        grown = max(longest, frames)
        if groups[-1] and (len(groups[-1]) + 1) * grown * joints > budget:
            groups.append([])
            grown = frames
        groups[-1].append(row)
        longest = grown
    return groups


def micro_batch_frames(lengths: list[int], patch_size: int, limit: int) -> int:
    """Frames a micro-batch is cut to: its longest sequence rounded up to a coarse grid of
    16 patches (capped at the batch's padded length). Few distinct shapes let the
    allocator reuse freed buffers instead of fragmenting memory; the extra frames are
    padding, which the masks keep out of every result."""
    grid = 16 * patch_size
    return min(limit, -(-max(lengths) // grid) * grid)


def host_lengths(batch: dict[str, Any]) -> list[int]:
    """The batch's sequence lengths as Python ints, without a device synchronisation when
    the collate function provided them (``length_list``)."""
    if "length_list" in batch:
        return [int(n) for n in batch["length_list"]]
    return [int(n) for n in batch["lengths"].tolist()]


def loss_shares(
    rows_lengths: Tensor, lengths: Tensor, patch_size: int, spatial_normalization: str
) -> dict[str, Tensor]:
    """What one micro-batch's per-term means weigh in the whole batch's loss.

    ``rows_lengths`` are the micro-batch's sequence lengths, ``lengths`` the batch's.
    Commitment terms are means over valid frames, the temporal term over valid patches.
    The spatial term is a mean over valid frames (``valid``) or, as the reference, over the
    whole padded batch tensor (``padded``: every sequence padded to the batch's longest,
    padded frames counted in the denominator).
    """
    frames = rows_lengths.sum() / lengths.sum()
    patches = (-(-rows_lengths // patch_size)).sum() / (-(-lengths // patch_size)).sum()
    if spatial_normalization == "padded":
        spatial = rows_lengths.sum() / (lengths.numel() * lengths.max())
    else:
        spatial = frames
    return {"frames": frames, "patches": patches, "spatial": spatial}
