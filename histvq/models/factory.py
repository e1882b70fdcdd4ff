"""Builds a HiST-VQ/SMQ module from its Hydra config and the data's shape."""

from __future__ import annotations

from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig

from histvq.config import instantiate_node
from histvq.errors import ConfigError
from histvq.models.histvq import HiSTVQ
from histvq.spec import DataSpec

# Memory knobs left to the device (``auto``). A CPU trains in micro-batches; with the
# reference's codebook step every micro-batch's encoder graph is kept until the step, so
# the encoder recomputes its activations in the backward pass (activation checkpointing)
# to keep memory bounded. The decoders run one micro-batch at a time and keep theirs. An
# accelerator keeps whole batches and all activations (memory to spare, fewer kernels).
CPU_MICRO_BATCH_JOINT_FRAMES = 16384


def _streams(which: str) -> int:
    return 2 if which == "both" else 1


def _flag(value: Any, key: str, auto: bool) -> bool:
    if value == "auto":
        return auto
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true, false or auto, got {value!r}")
    return value


def memory_settings(cfg: DictConfig, device_type: str) -> tuple[int | None, bool, bool]:
    """(micro_batch_joint_frames, encoder checkpointing, decoder checkpointing) for
    ``device_type``, resolving ``auto`` (the default) as described above; explicit values
    are kept."""
    on_cpu = device_type == "cpu"
    budget = cfg.get("micro_batch_joint_frames")
    if budget == "auto":
        budget = CPU_MICRO_BATCH_JOINT_FRAMES if on_cpu else None
    elif budget is not None and not isinstance(budget, int):
        raise ConfigError(
            f"model.micro_batch_joint_frames: expected an integer, null or auto, got {budget!r}"
        )
    encoder = _flag(
        cfg.encoder.get("activation_checkpointing", False),
        "model.encoder.activation_checkpointing",
        auto=on_cpu,
    )
    spatial = (cfg.get("decoder") or {}).get("spatial") or {}
    decoder = _flag(
        spatial.get("activation_checkpointing", False),
        "model.decoder.spatial.activation_checkpointing",
        auto=False,
    )
    return budget, encoder, decoder


def build_model(cfg: DictConfig, spec: DataSpec, device_type: str = "cpu") -> HiSTVQ:
    """Instantiate the components of ``cfg`` (the ``model`` node) sized for ``spec`` and pass
    them into the LightningModule named by ``cfg._target_``; ``device_type`` (``cpu``,
    ``cuda``, ...) resolves the ``auto`` memory settings.

    A decoder whose loss weight is 0 is not built at all, so ablations such as "without the
    temporal loss" carry no unused parameters (which DDP would reject).
    """
    latent_dim = int(cfg.latent_dim)
    token_dim = spec.num_joints * spec.num_persons * latent_dim
    budget, encoder_checkpointing, decoder_checkpointing = memory_settings(cfg, device_type)
    encoder = instantiate_node(
        cfg.encoder, "model.encoder", in_channels=spec.num_channels, latent_dim=latent_dim,
        activation_checkpointing=encoder_checkpointing,
    )  # fmt: skip
    quantizer = instantiate_node(
        cfg.quantizer,
        "model.quantizer",
        num_classes=spec.num_classes,
        patch_size=spec.patch_size,
        dim=token_dim,
    )
    decoders = cfg.get("decoder") or {}
    spatial_cfg, temporal_cfg = decoders.get("spatial"), decoders.get("temporal")
    spatial = temporal = None
    if float(cfg.lambda_spat) > 0:
        if spatial_cfg is None:
            raise ConfigError(
                "model.lambda_spat > 0 needs a spatial decoder (model.decoder.spatial)"
            )
        spatial = instantiate_node(
            spatial_cfg,
            "model.decoder.spatial",
            out_channels=spec.num_channels,
            latent_dim=latent_dim,
            inputs=_streams(cfg.spatial_input),
            activation_checkpointing=decoder_checkpointing,
        )
    if float(cfg.lambda_temp) > 0:
        if temporal_cfg is None:
            raise ConfigError(
                "model.lambda_temp > 0 needs a temporal decoder (model.decoder.temporal); "
                "model=smq has none"
            )
        temporal = instantiate_node(
            temporal_cfg,
            "model.decoder.temporal",
            in_features=spec.patch_size * token_dim * _streams(cfg.temporal_input),
        )
    optimizer = instantiate_node(cfg.optimizer, "model.optimizer")
    try:
        module_class = get_class(cfg._target_)
    except Exception as error:
        raise ConfigError(f"model._target_: cannot import {cfg._target_!r} ({error})") from None
    return module_class(
        encoder=encoder,
        quantizer=quantizer,
        spatial_decoder=spatial,
        temporal_decoder=temporal,
        optimizer=optimizer,
        lambda_commit=float(cfg.lambda_commit),
        lambda_spat=float(cfg.lambda_spat),
        lambda_temp=float(cfg.lambda_temp),
        spatial_input=str(cfg.spatial_input),
        temporal_input=str(cfg.temporal_input),
        micro_batch_joint_frames=budget,
        spatial_loss_normalization=str(cfg.get("spatial_loss_normalization", "padded")),
    )
