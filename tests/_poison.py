"""A test-only callback that makes one training step diverge."""

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
