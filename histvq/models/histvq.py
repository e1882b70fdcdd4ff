"""The HiST-VQ LightningModule: encoder -> patches -> hierarchical VQ -> decoders.

The module only composes components it is given (built from config by
:func:`histvq.models.factory.build_model`) and owns the loss of the paper (eq. 9):

    L = lambda_commit * sum_l L_commit_l + lambda_spat * L_spat + lambda_temp * L_temp

SMQ is the same module with one quantization level and no temporal decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from histvq.errors import ConfigError
from histvq.models.decoders import JointTCNDecoder, TimestampMLP
from histvq.models.losses import inter_joint_distance_mse, timestamp_mse
from histvq.models.patching import (
    Patches,
    expand_patch_codes,
    patch_timestamps,
    patchify,
    unpatchify,
)
from histvq.models.quantizers import HierarchicalQuantizer, QuantizerOutput

SPATIAL_INPUTS = ("top", "first", "both")
TEMPORAL_INPUTS = ("first", "top", "both")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass
class ModelOutput:
    """Everything one forward pass produces (decoder outputs are None when not computed)."""

    patches: Patches
    quantizer: QuantizerOutput
    reconstruction: Tensor | None
    timestamps: Tensor | None

    def frame_codes(self, num_frames: int, level: int = -1) -> Tensor:
        """(N, T) code of ``level`` (default: top) for every frame."""
        codes = self.quantizer.indices[level]
        return expand_patch_codes(codes, self.patches.patch_size, num_frames)


def select_levels(streams: list[Tensor], which: str) -> list[Tensor]:
    """The quantized stream(s) a decoder reads: ``first``, ``top`` or ``both``."""
    if which == "first":
        return [streams[0]]
    if which == "top":
        return [streams[-1]]
    return [streams[0], streams[-1]]


class HiSTVQ(L.LightningModule):
    """Hierarchical spatiotemporal vector quantization for unsupervised action segmentation.

    Args:
        encoder: skeleton (N, C, T, V, M) + mask -> tokens (N, T, E).
        quantizer: the codebook stack; its patch size is the model's.
        spatial_decoder: quantized tokens -> skeleton; None drops the spatial loss.
        temporal_decoder: quantized patches -> timestamps; None drops the temporal loss.
        optimizer: factory called with the parameters (a Hydra ``_partial_`` optimizer).
        lambda_commit, lambda_spat, lambda_temp: loss weights of eq. 9.
        spatial_input: quantization level(s) fed to the spatial decoder: top | first | both.
        temporal_input: level(s) fed to the temporal decoder: first | top | both.
    """

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: HierarchicalQuantizer,
        spatial_decoder: JointTCNDecoder | None,
        temporal_decoder: TimestampMLP | None = None,
        optimizer: OptimizerFactory | None = None,
        lambda_commit: float = 1.0,
        lambda_spat: float = 0.001,
        lambda_temp: float = 0.2,
        spatial_input: str = "top",
        temporal_input: str = "first",
    ):
        super().__init__()
        if spatial_input not in SPATIAL_INPUTS:
            raise ConfigError(
                f"model.spatial_input: unknown value {spatial_input!r} (choose from {SPATIAL_INPUTS})"
            )
        if temporal_input not in TEMPORAL_INPUTS:
            raise ConfigError(
                f"model.temporal_input: unknown value {temporal_input!r} "
                f"(choose from {TEMPORAL_INPUTS})"
            )
        self.save_hyperparameters(
            ignore=["encoder", "quantizer", "spatial_decoder", "temporal_decoder", "optimizer"]
        )
        self.encoder = encoder
        self.quantizer = quantizer
        self.spatial_decoder = spatial_decoder
        self.temporal_decoder = temporal_decoder
        self.optimizer_factory = optimizer
        self.lambda_commit, self.lambda_spat, self.lambda_temp = (
            lambda_commit,
            lambda_spat,
            lambda_temp,
        )
        self.spatial_input, self.temporal_input = spatial_input, temporal_input
        # Filled by the entry points so a checkpoint can rebuild its run on its own.
        self.run_config: dict[str, Any] | None = None
        self.data_spec: dict[str, Any] | None = None

    @property
    def patch_size(self) -> int:
        return self.quantizer.patch_size

    # ------------------------------------------------------------------ forward
    def forward(self, features: Tensor, mask: Tensor, decode: bool = True) -> ModelOutput:
        """features (N, C, T, V, M), mask (N, T) bool."""
        _, _, t, v, m = features.shape
        tokens = self.encoder(features, mask)
        patches = patchify(tokens, mask, self.patch_size)
        quantized = self.quantizer(patches.values, patches.frame_mask, patches.valid)
        reconstruction = timestamps = None
        if decode and self.spatial_decoder is not None:
            streams = [unpatchify(q, t) for q in quantized.quantized]
            reconstruction = self.spatial_decoder(
                select_levels(streams, self.spatial_input), mask, v, m
            )
        if decode and self.temporal_decoder is not None:
            timestamps = self.temporal_decoder(
                select_levels(quantized.quantized, self.temporal_input)
            )
        return ModelOutput(patches, quantized, reconstruction, timestamps)

    def losses(self, features: Tensor, mask: Tensor, output: ModelOutput) -> dict[str, Tensor]:
        """Every loss term (unweighted) and the weighted total under ``loss``."""
        terms: dict[str, Tensor] = {}
        total = features.new_zeros((), dtype=torch.float32)
        for level, commit in enumerate(output.quantizer.commitment, start=1):
            terms[f"commit_l{level}"] = commit
            total = total + self.lambda_commit * commit
        if output.reconstruction is not None:
            terms["spatial"] = inter_joint_distance_mse(features, output.reconstruction, mask)
            total = total + self.lambda_spat * terms["spatial"]
        if output.timestamps is not None:
            target = patch_timestamps(output.patches.valid)
            terms["temporal"] = timestamp_mse(output.timestamps, target, output.patches.valid)
            total = total + self.lambda_temp * terms["temporal"]
        terms["loss"] = total
        return terms

    # ------------------------------------------------------------------ lightning
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        features, mask = batch["features"], batch["mask"]
        output = self(features, mask)
        terms = self.losses(features, mask, output)
        n = features.shape[0]
        for key, value in terms.items():
            self.log(
                f"train/{key}",
                value,
                on_step=True,
                on_epoch=True,
                batch_size=n,
                prog_bar=key == "loss",
            )
        for key, value in output.quantizer.stats.items():
            self.log(f"codebook/{key}", value, on_step=True, on_epoch=False, batch_size=n)
        return terms["loss"]

    @torch.no_grad()
    def segment(self, features: Tensor, mask: Tensor) -> list[Tensor]:
        """Per level (bottom first), the (N, T) frame codes; no decoding."""
        output = self(features, mask, decode=False)
        t = features.shape[2]
        return [output.frame_codes(t, level) for level in range(len(output.quantizer.indices))]

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        codes = self.segment(batch["features"], batch["mask"])[-1]
        return {
            "index": batch["index"],
            "names": batch["names"],
            "lengths": batch["lengths"],
            "codes": codes,
        }

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.parameters(), lr=5e-4)
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["histvq"] = {"config": self.run_config, "data_spec": self.data_spec}
