"""Running a trained model on in-memory sequences: batching, padding and masks.

Scripts that segment recordings outside a DataModule (``python -m histvq.predict``, notebooks,
services) hand over plain (C, T, V, M) arrays and get one code per frame back. Sequences are
batched in length order (so padding stays small), zero-padded to the longest sequence of the
batch rounded up to a multiple of the patch size, and masked; the model masks every layer, so
the codes of a sequence do not depend on the batch it lands in or on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from histvq.errors import HistvqError


def pad_batch(
    sequences: Sequence[np.ndarray], multiple: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Stack (C, T, V, M) arrays into zero-padded features (N, C, T', V, M) and a (N, T') bool
    frame mask, T' = the longest T rounded up to ``multiple``; also return the lengths."""
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    lengths = [int(s.shape[1]) for s in sequences]
    padded = -(-max(lengths) // multiple) * multiple
    c, _, v, m = sequences[0].shape
    features = torch.zeros(len(sequences), c, padded, v, m, dtype=torch.float32)
    for row, array in enumerate(sequences):
        features[row, :, : lengths[row]] = torch.from_numpy(
            np.ascontiguousarray(array, dtype=np.float32)
        )
    mask = torch.arange(padded)[None, :] < torch.tensor(lengths)[:, None]
    return features.to(device), mask.to(device), lengths


def check_shapes(sequences: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """Every sequence must be a (C, T, V, M) array with T >= 1 and the same (C, V, M)."""
    reference: tuple[int, int, int] | None = None
    for index, array in enumerate(sequences):
        name = names[index] if names is not None else f"sequence {index}"
        if array.ndim != 4 or array.shape[1] < 1:
            raise HistvqError(
                f"{name}: expected a (C, T, V, M) array with T >= 1, got shape {array.shape}"
            )
        c, _, v, m = array.shape
        if reference is None:
            reference = (c, v, m)
        elif (c, v, m) != reference:
            raise HistvqError(f"{name}: (C, V, M) = {(c, v, m)} differs from {reference}")


@torch.no_grad()
def segment_sequences(
    model: nn.Module,
    sequences: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    level: int = -1,
) -> list[np.ndarray]:
    """Per sequence, the (T,) int64 codes of quantizer level ``level`` (default: top).

    ``model`` is a :class:`~histvq.models.HiSTVQ` (anything with ``patch_size`` and
    ``segment(features, mask) -> list[(N, T) codes]``). It runs in eval mode on its own
    device; its previous train/eval mode is restored afterwards. Results come back in the
    order of ``sequences``.
    """
    if batch_size < 1:
        raise HistvqError(f"batch_size must be >= 1, got {batch_size}")
    check_shapes(sequences)
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: (sequences[i].shape[1], i))
    codes: list[np.ndarray | None] = [None] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            features, mask, lengths = pad_batch(
                [sequences[i] for i in chosen], int(model.patch_size), device
            )
            frame_codes = model.segment(features, mask)[level].cpu().numpy()
            for row, index in enumerate(chosen):
                codes[index] = frame_codes[row, : lengths[row]].astype(np.int64)
    finally:
        model.train(was_training)
    return [c for c in codes if c is not None]
