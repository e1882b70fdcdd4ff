"""Lightning's ModelCheckpoint with one switch between epoch and step checkpoints, which
also writes the last checkpoint when SIGTERM stops the run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` that checkpoints every
    ``every_n_epochs`` epochs, or every ``every_n_train_steps`` steps when that is set
    (Lightning accepts only one of the two), so ``every_n_train_steps=N`` alone switches a
    run to step checkpoints.

    With ``save_on_sigterm`` (and ``save_last``) a run stopped by SIGTERM (a cluster's time
    limit or preemption, ``kill``) writes ``last.ckpt`` before it exits, so ``ckpt_path=last``
    loses no finished batch. Lightning turns SIGTERM into an exception at the end of the
    batch being trained, when model, optimizer, codebooks and data position agree. Other
    exceptions write nothing: a diverged or crashed model never replaces the last good
    checkpoint."""

    def __init__(
        self,
        *args: Any,
        every_n_train_steps: int | None = None,
        every_n_epochs: int | None = 1,
        save_on_sigterm: bool = True,
        **kwargs: Any,
    ):
        if every_n_train_steps:
            every_n_epochs = None
        super().__init__(
            *args, every_n_train_steps=every_n_train_steps, every_n_epochs=every_n_epochs, **kwargs
        )
        self.save_on_sigterm = save_on_sigterm

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not (
            isinstance(exception, SIGTERMException)
            and self.save_on_sigterm
            and self.save_last
            and self.dirpath
        ):
            return
        path = Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
        trainer.save_checkpoint(path, self.save_weights_only)
        log.info("stopped by SIGTERM after step %d; %s written", trainer.global_step, path)
