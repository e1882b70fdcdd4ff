"""Random-number state in checkpoints, so a resumed run continues exactly where it stopped.

Lightning's checkpoints hold the weights, the optimizer, the loop counters and the
callbacks' states, but not the random generators. Dropout masks come from torch's global
generators, so a run resumed from a checkpoint would draw other masks than the run that
continued. :class:`RNGStates` saves every process's torch (CPU and CUDA), numpy and Python
generator states with the checkpoint and puts them back when training resumes from it.
Everything else that feeds randomness or order has its own seeded state: the batch order
is a function of (seed, epoch) and the number of batches consumed (see
:class:`histvq.data.loaders.ResumableLoader`), the dead-code draws use the reference's fixed
seed or (seed, step, level) with the step stored in the codebook buffers.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


def collect_rng_states() -> dict[str, Any]:
    """This process's generator states: torch CPU (and CUDA when present), numpy, Python;
    as tensors and plain values, which checkpoints load with ``weights_only=True``."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_states` (CUDA states only where CUDA is in use)."""
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RNGStates(Callback):
    """Saves the random generators of every process with each checkpoint and restores them
    on resume (each process gets its own states back; with another number of processes
    the states are left as seeded, and a warning says the resume is not exact)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        states = collect_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)
            return {"per_rank": gathered}
        return {"per_rank": [states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = list(state_dict.get("per_rank") or [])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Restore right before the first resumed batch, after everything that draws
        random numbers while setting up (model building, data loading)."""
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        if len(pending) != trainer.world_size:
            log.warning(
                "checkpoint holds random states of %d process(es) but this run has %d: the "
                "resumed run will not draw the same dropout masks as an uninterrupted one",
                len(pending),
                trainer.world_size,
            )
            return
        restore_rng_states(pending[trainer.global_rank])
