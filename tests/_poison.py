"""Test-only callbacks: one makes a training step diverge, one stops the run as SIGTERM does."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


class PoisonAt(Callback):
    """Sets the spatial decoder's output bias to NaN for the batch that makes optimizer step
    number ``step``: that step's spatial loss is NaN, its other terms are still finite."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step - 1:
            with torch.no_grad():
                pl_module.spatial_decoder.tcn.stages[-1].conv_out.bias.fill_(float("nan"))


class SigtermAt(Callback):
    """Marks the run as having received SIGTERM after optimizer step number ``step``, as
    Lightning's signal handler does: the run stops when that batch ends."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if trainer.global_step == self.step:
            trainer._signal_connector.received_sigterm = True
