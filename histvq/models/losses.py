"""HiST-VQ's reconstruction losses (the commitment losses live with the quantizer).

All losses average over valid elements only, so padding never changes their value.
"""

from __future__ import annotations

import torch
from torch import Tensor


def inter_joint_distances(skeleton: Tensor) -> Tensor:
    """(F, V, C) joint coordinates -> (F, V, V) Euclidean distances between joints.

    Computed without the matmul shortcut, which is inaccurate for near-coincident joints;
    the gradient at zero distance (the diagonal) is zero rather than NaN.
    """
    return torch.cdist(skeleton, skeleton, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")


def inter_joint_distance_mse(target: Tensor, reconstruction: Tensor, mask: Tensor) -> Tensor:
    """SMQ's spatial loss: MSE between the V x V inter-joint distance matrices of input and
    reconstruction, averaged over valid frames, persons and joint pairs.

    target, reconstruction: (N, C, T, V, M); mask: (N, T) bool.
    """
    frames = torch.nonzero(mask.reshape(-1)).flatten()

    def valid_joints(skeleton: Tensor) -> Tensor:
        n, c, t, v, m = skeleton.shape
        per_frame = skeleton.permute(0, 2, 4, 3, 1).reshape(n * t, m, v, c)
        return per_frame.index_select(0, frames).reshape(-1, v, c).float()

    with torch.autocast(device_type=target.device.type, enabled=False):
        d_target = inter_joint_distances(valid_joints(target))
        d_recon = inter_joint_distances(valid_joints(reconstruction))
        return (d_target - d_recon).pow(2).mean()


def timestamp_mse(predicted: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Temporal loss: MSE between predicted and true per-patch timestamps over valid patches."""
    weights = valid.to(predicted.dtype)
    return ((predicted.float() - target.float()).pow(2) * weights).sum() / weights.sum().clamp_min(
        1
    )
