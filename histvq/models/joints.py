"""Reshapes between skeleton tensors and the per-joint sequences the TCNs work on.

HiST-VQ encodes every joint's channel time series on its own, so joints (and persons) are
folded into the batch dimension; per frame the latent token concatenates all joints and
persons in (M, V, D) order. These helpers keep that convention in one place.
"""

from __future__ import annotations

import torch
from torch import Tensor


def fold_joints(skeleton: Tensor) -> Tensor:
    """(N, C, T, V, M) -> (N*M*V, C, T): one sequence per person and joint."""
    n, c, t, v, m = skeleton.shape
    return skeleton.permute(0, 4, 3, 1, 2).reshape(n * m * v, c, t)


def unfold_to_skeleton(joint_batch: Tensor, num_joints: int, num_persons: int) -> Tensor:
    """(N*M*V, C, T) -> (N, C, T, V, M); inverse of :func:`fold_joints`."""
    nmv, c, t = joint_batch.shape
    n = nmv // (num_joints * num_persons)
    return joint_batch.reshape(n, num_persons, num_joints, c, t).permute(0, 3, 4, 2, 1)


def joint_batch_to_tokens(joint_batch: Tensor, num_joints: int, num_persons: int) -> Tensor:
    """(N*M*V, D, T) -> (N, T, M*V*D): per-frame tokens concatenating every joint."""
    nmv, d, t = joint_batch.shape
    n = nmv // (num_joints * num_persons)
    return (
        joint_batch.reshape(n, num_persons * num_joints, d, t)
        .permute(0, 3, 1, 2)
        .reshape(n, t, num_persons * num_joints * d)
    )


def tokens_to_joint_batch(tokens: Tensor, num_joints: int, num_persons: int) -> Tensor:
    """(N, T, M*V*D) -> (N*M*V, D, T); inverse of :func:`joint_batch_to_tokens`."""
    n, t, e = tokens.shape
    d = e // (num_joints * num_persons)
    return (
        tokens.reshape(n, t, num_persons * num_joints, d)
        .permute(0, 2, 3, 1)
        .reshape(n * num_persons * num_joints, d, t)
    )


def joint_frame_mask(mask: Tensor, num_joints: int, num_persons: int) -> Tensor:
    """(N, T) frame mask -> (N*M*V, 1, T) float mask matching :func:`fold_joints`."""
    n, t = mask.shape
    return (
        mask.to(torch.float32)[:, None, :]
        .expand(n, num_persons * num_joints, t)
        .reshape(n * num_persons * num_joints, 1, t)
    )
