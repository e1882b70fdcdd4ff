"""The one way to load a trained model: from a checkpoint written by ``train.py``.

A histvq checkpoint is Lightning's, plus a ``histvq`` entry holding the run's composed
config and the :class:`~histvq.spec.DataSpec` of the data it was trained on (its shape,
labels and dataset kind), so the model can be rebuilt, checked against new data and named
without anything else from the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from histvq.errors import ConfigError
from histvq.models.factory import build_model
from histvq.models.histvq import HiSTVQ
from histvq.spec import DataSpec

META_KEY = "histvq"


def resolve_device(name: str | torch.device) -> torch.device:
    """``cpu``, ``cuda[:i]`` or ``auto`` (CUDA when available) as a torch device."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in {"cpu", "cuda"} and not name.startswith("cuda:"):
        raise ConfigError(f"device: unknown value {name!r} (cpu | cuda | auto)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available")
    return torch.device(name)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (on the CPU), checked to be one written by ``train.py``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path: {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ConfigError(f"ckpt_path: {path} is not a readable checkpoint ({error})") from None
    meta = checkpoint.get(META_KEY) if isinstance(checkpoint, dict) else None
    if not meta or not meta.get("config") or not meta.get("data_spec"):
        raise ConfigError(f"ckpt_path: {path} was not written by histvq's train.py (no run config)")
    return checkpoint


@dataclass
class TrainedModel:
    """A trained model (in eval mode, on its device) with the run it came from."""

    model: HiSTVQ
    run_config: dict[str, Any]
    spec: DataSpec
    path: Path

    @property
    def kind(self) -> str | None:
        """The kind of data it was trained on (``hugadb``, ``lara``, ..., ``layout``)."""
        return self.spec.kind


def load_trained(path: str | Path, device: str | torch.device = "auto") -> TrainedModel:
    """Rebuild the model of a ``train.py`` checkpoint from its saved config and weights."""
    checkpoint = read_checkpoint(path)
    meta = checkpoint[META_KEY]
    spec = DataSpec.from_dict(meta["data_spec"])
    target = resolve_device(device)
    model = build_model(OmegaConf.create(meta["config"]["model"]), spec, target.type)
    model.load_state_dict(checkpoint["state_dict"])
    model.to(target).eval()
    return TrainedModel(model, meta["config"], spec, Path(path).expanduser())
