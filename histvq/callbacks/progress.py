"""One log line per training epoch, for runs that nobody watches through a progress bar."""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

log = logging.getLogger(__name__)

# What :func:`epoch_line` writes, read back by ``python -m histvq.report DIR --progress``.
EPOCH_LINE_PATTERN = re.compile(
    r"epoch (?P<epoch>\d+)(?:/(?P<epochs>\d+))? \(step (?P<step>\d+)\) in (?P<took>[^:]+): "
    r".*?(?:; about (?P<left>.+) left|; (?P<done>done))?$"
)


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min 12 s`` or ``7 h 53 min``: as precise as a progress line needs."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    minutes = seconds // 60
    return f"{minutes // 60} h {minutes % 60} min"


def epoch_line(
    epoch: int,
    max_epochs: int | None,
    step: int,
    means: dict[str, float],
    epoch_seconds: float,
    seconds_left: float | None,
) -> str:
    """The summary of one finished epoch (``epoch`` counts from 0): its mean loss, loss
    terms (keys without a ``/``) and codes used per level (``level1/used_codes``) per batch,
    how long it took and, when the run has an epoch limit, ``seconds_left``."""
    of = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    terms = ", ".join(f"{k} {v:.4g}" for k, v in means.items() if "/" not in k and k != "loss")
    used = ", ".join(f"{k.split('/')[0]} {v:.1f}" for k, v in means.items() if "/" in k)
    line = f"epoch {epoch + 1}{of} (step {step}) in {format_duration(epoch_seconds)}: "
    line += f"loss {means['loss']:.4g}" if "loss" in means else "no loss"
    if terms:
        line += f" (unweighted terms: {terms})"
    if used:
        line += f"; codes used per batch: {used}"
    if of:
        done = epoch + 1 >= max_epochs
        line += "; done" if done else f"; about {format_duration(seconds_left or 0)} left"
    return line


class EpochSummary(Callback):
    """Logs one line when a training epoch ends: the mean over its batches of every loss
    term the model logs and of the codes each quantizer level used, the epoch's duration and
    an estimate of the time left (the remaining batches at the pace per batch so far). The
    values stay on the device until the epoch ends (no host synchronisation per step); only
    global rank 0 writes the line."""

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[str, Tensor] = {}
        self._batches = 0
        self._started = 0.0
        self._seconds_trained = 0.0
        self._batches_trained = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A run resumed mid-epoch continues that epoch without an epoch start: its clock
        starts here, and its line covers the batches this process trained."""
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sums, self._batches, self._started = {}, 0, time.monotonic()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        step = getattr(pl_module, "last_step", None)
        if step is None:
            return
        values = dict(step.logged)
        values.update({k: v for k, v in (step.usage or {}).items() if k.endswith("/used_codes")})
        for key, value in values.items():
            value = value.detach().float()
            self._sums[key] = self._sums[key] + value if key in self._sums else value
        self._batches += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.monotonic() - self._started
        self._seconds_trained += seconds
        self._batches_trained += self._batches
        if not trainer.is_global_zero or not self._batches:
            return
        means = {k: float(v) / self._batches for k, v in self._sums.items()}
        epoch, step = trainer.current_epoch, trainer.global_step
        line = epoch_line(
            epoch, trainer.max_epochs, step, means, seconds, self._seconds_left(trainer)
        )
        log.info(line)

    def _seconds_left(self, trainer: L.Trainer) -> float | None:
        """The remaining epochs' batches at this process's pace per batch so far (an epoch
        resumed midway counts only its own batches), None without an epoch limit."""
        per_epoch = trainer.num_training_batches
        if not trainer.max_epochs or trainer.max_epochs < 0 or not math.isfinite(per_epoch):
            return None
        remaining = (trainer.max_epochs - trainer.current_epoch - 1) * per_epoch
        return remaining * self._seconds_trained / max(self._batches_trained, 1)
