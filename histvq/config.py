"""Hydra/OmegaConf helpers shared by the entry points."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from histvq.errors import ConfigError, HistvqError


def instantiate_node(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that reports problems as one-line :class:`ConfigError`s.

    Hydra wraps constructor errors in InstantiationException; our own HistvqErrors are
    unwrapped unchanged, anything else is reported with the config ``key`` it came from.
    """
    if isinstance(node, DictConfig):
        missing = sorted(OmegaConf.missing_keys(node) - set(kwargs))
        if missing:
            given = " ".join(f"{key}.{name}=..." for name in missing)
            raise ConfigError(f"{key}: {', '.join(missing)} must be given ({given})")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, HistvqError):
            raise cause from None
        detail = cause if cause is not None else error
        raise ConfigError(f"{key}: {type(detail).__name__}: {detail}".replace("\n", " ")) from None


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers (what checkpoints and run dirs store)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def required(cfg: DictConfig, key: str, usage: str) -> Any:
    """``cfg[key]``, or a :class:`ConfigError` saying it must be given (``usage``: how)."""
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise ConfigError(f"{key} is required: {usage}")
    return cfg[key]
