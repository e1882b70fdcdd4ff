"""Encoders: skeleton sequences -> per-frame latent tokens."""

from __future__ import annotations

from torch import Tensor, nn

from histvq.models.joints import fold_joints, joint_batch_to_tokens, joint_frame_mask
from histvq.models.tcn import MultiStageTCN, stage_widths


class JointTCNEncoder(nn.Module):
    """Encodes each joint's C-channel time series on its own with a multi-stage TCN.

    Joints and persons are folded into the batch (HiST-VQ/SMQ's joint-decoupled encoder):
    stage 1 outputs ``latent_dim // 2`` channels, the last stage ``latent_dim``. The result
    concatenates all joints per frame: (N, T, M*V*latent_dim).
    """

    def __init__(
        self,
        in_channels: int,
        latent_dim: int = 16,
        hidden_channels: int = 128,
        num_stages: int = 2,
        num_layers: int = 3,
        dropout: float = 0.5,
        activation_checkpointing: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        self.tcn = MultiStageTCN(
            in_channels,
            stage_widths(latent_dim // 2, latent_dim, num_stages),
            hidden=hidden_channels,
            num_layers=num_layers,
            dropout=dropout,
            activation_checkpointing=activation_checkpointing,
        )

    def forward(self, skeleton: Tensor, mask: Tensor) -> Tensor:
        """skeleton: (N, C, T, V, M); mask: (N, T) bool -> tokens (N, T, M*V*latent_dim)."""
        _, _, _, v, m = skeleton.shape
        latent = self.tcn(fold_joints(skeleton), joint_frame_mask(mask, v, m))
        return joint_batch_to_tokens(latent, v, m)
