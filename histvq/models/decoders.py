"""Decoders: the spatial one reconstructs skeletons, the temporal one patch timestamps."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from histvq.models.joints import joint_frame_mask, tokens_to_joint_batch, unfold_to_skeleton
from histvq.models.quantizers.distances import check_choice
from histvq.models.tcn import MultiStageTCN, stage_widths


class JointTCNDecoder(nn.Module):
    """Mirror of :class:`~histvq.models.encoders.JointTCNEncoder`: per-joint latent -> C channels.

    ``inputs`` is how many quantized streams are concatenated per joint (2 when the decoder
    is fed both the first and the top quantization level).
    """

    def __init__(
        self,
        out_channels: int,
        latent_dim: int = 16,
        inputs: int = 1,
        hidden_channels: int = 128,
        num_stages: int = 2,
        num_layers: int = 3,
        dropout: float = 0.5,
        activation_checkpointing: bool = False,
    ):
        super().__init__()
        self.tcn = MultiStageTCN(
            latent_dim * inputs,
            stage_widths(latent_dim // 2, out_channels, num_stages),
            hidden=hidden_channels,
            num_layers=num_layers,
            dropout=dropout,
            activation_checkpointing=activation_checkpointing,
        )

    def forward(
        self, tokens: list[Tensor], mask: Tensor, num_joints: int, num_persons: int
    ) -> Tensor:
        """tokens: list of (N, T, M*V*D) streams; mask (N, T) -> skeleton (N, C, T, V, M)."""
        joint_batch = torch.cat(
            [tokens_to_joint_batch(t, num_joints, num_persons) for t in tokens], dim=1
        )
        out = self.tcn(joint_batch, joint_frame_mask(mask, num_joints, num_persons))
        return unfold_to_skeleton(out, num_joints, num_persons)


TIMESTAMP_INPUT_NORMS = ("none", "layer")


class TimestampMLP(nn.Module):
    """MLP with ``num_hidden_layers`` hidden layers: one quantized patch -> one timestamp.

    ``in_features`` is the flattened patch size P*E times the number of concatenated
    quantized streams. ``input_norm`` is what the MLP sees: ``none`` (the paper's plain MLP)
    takes the quantized patch as it is; ``layer`` standardises each flattened patch first
    (a LayerNorm). On raw, unnormalised inputs the codes take the inputs' scale (hundreds
    on HuGaDB), where a plain MLP's predictions are off by tens to thousands on a [0, 1]
    target; the standardised input lets it learn the timestamps whatever that scale.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int = 128,
        num_hidden_layers: int = 2,
        input_norm: str = "none",
    ):
        super().__init__()
        check_choice("model.decoder.temporal.input_norm", input_norm, TIMESTAMP_INPUT_NORMS)
        layers: list[nn.Module] = [nn.LayerNorm(in_features)] if input_norm == "layer" else []
        width = in_features
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, patches: list[Tensor]) -> Tensor:
        """patches: list of (N, Np, P, E) streams -> predicted timestamps (N, Np)."""
        flat = torch.cat([p.flatten(start_dim=2) for p in patches], dim=-1)
        return self.net(flat).squeeze(-1)
