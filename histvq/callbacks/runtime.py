"""Per-process setup of a training run, in every training process (DDP workers included)."""

from __future__ import annotations

import atexit
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from histvq.errors import ConfigError
from histvq.runtime import (
    RUN_ID_VARIABLE,
    destroy_process_group_if_initialized,
    keep_cpu_memory_in_process,
)


class ProcessSetup(Callback):
    """In each process that trains (spawned DDP workers start as fresh interpreters):

    - applies :func:`histvq.runtime.keep_cpu_memory_in_process`;
    - in a multi-process run, destroys the process group when the process exits. Lightning
      does this for NCCL only; a gloo group left to the interpreter's shutdown can abort a
      spawned worker ("terminate called without an active exception") after a successful run.
    """

    def __init__(self, keep_cpu_memory: bool = True):
        super().__init__()
        self.keep_cpu_memory = keep_cpu_memory

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.keep_cpu_memory and trainer.strategy.root_device.type == "cpu":
            keep_cpu_memory_in_process()
        if trainer.world_size > 1:
            atexit.unregister(destroy_process_group_if_initialized)  # once per process
            atexit.register(destroy_process_group_if_initialized)


class SharedRunSetup(Callback):
    """Once every process knows its global rank (``setup``, after the processes started):

    - checks that all processes of a multi-process run write to the same run folder (each
      process composes its own config; under ``srun``/``torchrun`` a time-stamped folder name
      would differ between them) and stops every rank with one message if not;
    - logs the composed run config to the loggers from global rank 0 only. Before ``setup``
      the rank comes from environment variables, which on the first process of a node
      other than node 0 can still read 0.
    """

    def __init__(self, output_dir: str, run_config: dict[str, Any] | None = None):
        super().__init__()
        self.output_dir = str(output_dir)
        self.run_config = run_config

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            import torch

            chosen = trainer.strategy.broadcast(self.output_dir, src=0)
            differs = torch.tensor(
                float(chosen != self.output_dir), device=trainer.strategy.root_device
            )
            if float(trainer.strategy.reduce(differs, reduce_op="sum")) > 0:
                raise ConfigError(
                    f"the processes of this run chose different run folders (rank 0: {chosen}, "
                    f"rank {trainer.global_rank}: {self.output_dir}); give them one with "
                    f"hydra.run.dir=<folder> or the environment variable {RUN_ID_VARIABLE} "
                    f"(srun steps and torchrun with --rdzv-id get one automatically)"
                )
        if self.run_config is not None and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_hyperparams(self.run_config)
