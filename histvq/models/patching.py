"""Non-overlapping temporal patches: the units HiST-VQ quantizes and labels.

A sequence's end is zero-padded to a multiple of the patch size P; a patch is valid when it
holds at least one valid frame. Predicted frame labels are the patch's code repeated P times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Patches:
    """Patched tokens: values (N, Np, P, E), frame_mask (N, Np, P) and valid (N, Np), bools."""

    values: Tensor
    frame_mask: Tensor
    valid: Tensor

    @property
    def patch_size(self) -> int:
        return int(self.values.shape[2])


def patchify(tokens: Tensor, mask: Tensor, patch_size: int) -> Patches:
    """(N, T, E) tokens and (N, T) frame mask -> :class:`Patches` (padded frames zeroed)."""
    n, t, e = tokens.shape
    pad = (-t) % patch_size
    tokens = tokens * mask[..., None].to(tokens.dtype)
    if pad:
        tokens = F.pad(tokens, (0, 0, 0, pad))
        mask = F.pad(mask, (0, pad), value=False)
    num_patches = (t + pad) // patch_size
    values = tokens.reshape(n, num_patches, patch_size, e)
    frame_mask = mask.reshape(n, num_patches, patch_size).bool()
    return Patches(values=values, frame_mask=frame_mask, valid=frame_mask.any(dim=-1))


def unpatchify(values: Tensor, num_frames: int) -> Tensor:
    """(N, Np, P, E) -> (N, T, E), cropping the end padding back to ``num_frames``."""
    n, num_patches, p, e = values.shape
    return values.reshape(n, num_patches * p, e)[:, :num_frames]


def expand_patch_codes(codes: Tensor, patch_size: int, num_frames: int) -> Tensor:
    """(N, Np) per-patch ids -> (N, T) per-frame ids (each patch's id repeated P times)."""
    return codes.repeat_interleave(patch_size, dim=1)[:, :num_frames]


def patch_timestamps(valid: Tensor) -> Tensor:
    """True per-patch timestamps (N, Np): a valid patch's position among its sequence's valid
    patches, normalised to [0, 1] (0 for a sequence of one patch, 0 on invalid patches)."""
    valid_f = valid.to(torch.float32)
    position = torch.cumsum(valid_f, dim=1) - 1.0
    last = (valid_f.sum(dim=1, keepdim=True) - 1.0).clamp(min=1.0)
    return (position / last) * valid_f
