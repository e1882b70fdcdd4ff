"""Process-level settings that must hold in every training process, DDP workers included."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from histvq.runtime import keep_cpu_memory_in_process


class ProcessSetup(Callback):
    """Applies :func:`histvq.runtime.keep_cpu_memory_in_process` in each process that trains
    (spawned DDP workers start as fresh interpreters and would otherwise miss it)."""

    def __init__(self, keep_cpu_memory: bool = True):
        super().__init__()
        self.keep_cpu_memory = keep_cpu_memory

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.keep_cpu_memory and trainer.strategy.root_device.type == "cpu":
            keep_cpu_memory_in_process()
