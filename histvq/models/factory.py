"""Builds a HiST-VQ/SMQ module from its Hydra config and the data's shape."""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig

from histvq.config import instantiate_node
from histvq.data.datamodules import DataSpec
from histvq.errors import ConfigError
from histvq.models.histvq import HiSTVQ


def _streams(which: str) -> int:
    return 2 if which == "both" else 1


def build_model(cfg: DictConfig, spec: DataSpec) -> HiSTVQ:
    """Instantiate the components of ``cfg`` (the ``model`` node) sized for ``spec`` and pass
    them into the LightningModule named by ``cfg._target_``.

    A decoder whose loss weight is 0 is not built at all, so ablations such as "without the
    temporal loss" carry no unused parameters (which DDP would reject).
    """
    latent_dim = int(cfg.latent_dim)
    token_dim = spec.num_joints * spec.num_persons * latent_dim
    encoder = instantiate_node(
        cfg.encoder, "model.encoder", in_channels=spec.num_channels, latent_dim=latent_dim
    )
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
        micro_batch_joint_frames=cfg.get("micro_batch_joint_frames"),
        spatial_loss_normalization=str(cfg.get("spatial_loss_normalization", "padded")),
    )
