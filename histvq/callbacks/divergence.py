"""Stop a diverging run with one line, before a non-finite model reaches a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from histvq.errors import HistvqError


class DivergenceError(HistvqError):
    """A loss term or a codebook became NaN or infinite during training."""


class DivergenceGuard(Callback):
    """Watches every loss term of every training step and the codebooks.

    For each term the first step with a non-finite value is recorded on the device (no
    host synchronisation per step); every ``every_n_steps`` steps, at the end of every
    epoch and before any checkpoint is written, the guard reads the records and the
    codebooks and, if anything is non-finite, stops training with a
    :class:`DivergenceError` naming the step, the loss term or codebook level, and the last
    checkpoint written before (which is kept: the failing model is never saved).

    Args:
        every_n_steps: how often to check between epochs and checkpoints (1: every step).
            None: every step on a CPU, every 50 steps on an accelerator (each check waits
            for the device).
    """

    def __init__(self, every_n_steps: int | None = None):
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._first_bad: dict[str, Tensor] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.every_n_steps is None:
            self.every_n_steps = 1 if trainer.strategy.root_device.type == "cpu" else 50

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        step = getattr(pl_module, "last_step", None)
        if step is None:
            return
        number = trainer.global_step
        for key, value in step.logged.items():
            bad = ~torch.isfinite(value.detach()).all()
            first = self._first_bad.get(key)
            if first is None:
                first = torch.full((), -1, dtype=torch.long, device=value.device)
            self._first_bad[key] = torch.where((first < 0) & bad, number, first)
        if number % (self.every_n_steps or 1) == 0:
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.check(trainer, pl_module)

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Raise :class:`DivergenceError` if a loss term or a codebook is non-finite."""
        keys = list(self._first_bad)
        flags = [self._first_bad[k].to(torch.long).cpu() for k in keys]
        books = getattr(getattr(pl_module, "quantizer", None), "codebooks", [])
        finite_books = [bool(torch.isfinite(book.codes).all()) for book in books]
        first = {k: int(f) for k, f in zip(keys, flags, strict=True) if int(f) >= 0}
        if not first and all(finite_books):
            return
        if first:
            key = min(first, key=first.get)
            what = f"at step {first[key]}: loss term {key!r} is not finite"
        else:
            level = finite_books.index(False) + 1
            what = f"by step {trainer.global_step}: codebook level {level} holds NaN or inf"
        raise DivergenceError(
            f"training diverged {what} (epoch {trainer.current_epoch}); "
            f"{_last_checkpoint(trainer)}. Resume from it with a lower model.optimizer.lr "
            f"or check the input features for extreme values"
        )


def _last_checkpoint(trainer: L.Trainer) -> str:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    if path:
        return f"last good checkpoint: {path} (kept)"
    return "no checkpoint was written before it"
