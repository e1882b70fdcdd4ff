"""Input standardisation, an option (``dataset.normalize``) that the reference code does not
have: raw HuGaDB readings span thousands of units, which lets the commitment loss outweigh
the spatial and temporal losses by orders of magnitude. ``channel`` scales every input
channel to zero mean and unit variance over the dataset (all frames, joints and persons);
the statistics travel with the model (its data spec), so evaluation and prediction on other
recordings use the training data's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from histvq.errors import ConfigError

NORMALIZATIONS = ("none", "channel")


def channel_statistics(arrays: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over (C, T, V, M) arrays (float64 sums)."""
    channels = arrays[0].shape[0]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for array in arrays:
        values = array.reshape(channels, -1).astype(np.float64)
        total += values.sum(axis=1)
        squares += (values * values).sum(axis=1)
        count += values.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return mean.tolist(), np.where(std > 1e-8, std, 1.0).tolist()


def standardize(array: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(C, T, V, M) array with each channel c as (x - mean[c]) / std[c], float32."""
    if len(mean) != array.shape[0] or len(std) != array.shape[0]:
        raise ConfigError(
            f"input statistics are for {len(mean)} channels but the data has {array.shape[0]}"
        )
    m = np.asarray(mean, dtype=np.float64)[:, None, None, None]
    s = np.asarray(std, dtype=np.float64)[:, None, None, None]
    return ((array - m) / s).astype(np.float32)


def check_normalization(value: str) -> str:
    if value not in NORMALIZATIONS:
        raise ConfigError(f"dataset.normalize: unknown value {value!r} (choose from {NORMALIZATIONS})")
    return value
