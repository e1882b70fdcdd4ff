"""The one way a trained model runs over sequences: padded batches in, codes out.

Evaluation (over a DataModule's evaluation loader) and prediction on new recordings (over
in-memory arrays) both go through :func:`segment_batches`; arrays are batched by
:func:`array_batches` with the same padding collate as training. The model masks every
layer, so the codes of a sequence do not depend on the batch it lands in or on the batch
size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from histvq.data.dataset import PadCollate
from histvq.data.sampler import ShardedEvalBatchSampler
from histvq.errors import HistvqError


@torch.no_grad()
def segment_batches(
    model: Any, batches: Iterable[dict[str, Any]], level: int = -1
) -> Iterator[tuple[list[int], list[torch.Tensor]]]:
    """For each padded batch, (its sequences' dataset indices, their (T,) codes of quantizer
    ``level``, default the top, on the model's device). The model runs in eval mode; its
    previous mode is restored afterwards."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            codes = model.segment(batch["features"].to(device), batch["mask"].to(device))[level]
            lengths = [int(n) for n in batch["length_list"]]
            yield batch["index"].tolist(), [codes[row, :n] for row, n in enumerate(lengths)]
    finally:
        model.train(was_training)


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


def array_batches(
    sequences: Sequence[np.ndarray], batch_size: int, patch_size: int
) -> Iterator[dict[str, Any]]:
    """Padded batches of (C, T, V, M) arrays in length order (little padding); a batch's
    ``index`` holds the positions in ``sequences``."""
    if batch_size < 1:
        raise HistvqError(f"batch_size must be >= 1, got {batch_size}")
    check_shapes(sequences)
    collate = PadCollate(patch_size)
    lengths = [int(s.shape[1]) for s in sequences]
    for rows in ShardedEvalBatchSampler(lengths, batch_size):
        yield collate(
            [
                {
                    "features": torch.from_numpy(
                        np.ascontiguousarray(sequences[i], dtype=np.float32)
                    ),
                    "labels": torch.zeros(lengths[i], dtype=torch.long),
                    "index": i,
                    "group": 0,
                    "name": str(i),
                }
                for i in rows
            ]
        )


def segment_arrays(
    model: Any, sequences: Sequence[np.ndarray], *, batch_size: int = 8, level: int = -1
) -> list[np.ndarray]:
    """Per sequence, the (T,) int64 codes of quantizer ``level`` (default: top), in the order
    of ``sequences``."""
    codes: list[np.ndarray | None] = [None] * len(sequences)
    batches = array_batches(sequences, batch_size, int(model.patch_size))
    for indices, batch_codes in segment_batches(model, batches, level):
        for index, values in zip(indices, batch_codes, strict=True):
            codes[index] = values.cpu().numpy().astype(np.int64)
    return [c for c in codes if c is not None]
