"""One log line per training epoch, for runs that nobody watches through a progress bar."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

log = logging.getLogger(__name__)


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
    mean_epoch_seconds: float,
) -> str:
    """The summary of one finished epoch (``epoch`` counts from 0): its mean loss, loss
    terms (keys without a ``/``) and codes used per level (``level1/used_codes``) per batch, how long it took and, when the run has an epoch limit, about how
    long the remaining epochs take at the mean pace so far."""
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
        left = (max_epochs - epoch - 1) * mean_epoch_seconds
        line += f"; about {format_duration(left)} left" if left > 0 else "; done"
    return line


class EpochSummary(Callback):
    """Logs one line when a training epoch ends: the mean over its batches of every loss
    term the model logs and of the codes each quantizer level used, the epoch's duration and
    an estimate of the time left. The values stay on the device until the epoch ends (no host
    synchronisation per step); only global rank 0 writes the line."""

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[str, Tensor] = {}
        self._batches = 0
        self._started = 0.0
        self._durations: list[float] = []

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
        self._durations.append(seconds)
        if not trainer.is_global_zero or not self._batches:
            return
        means = {k: float(v) / self._batches for k, v in self._sums.items()}
        mean_seconds = sum(self._durations) / len(self._durations)
        epoch, max_epochs, step = trainer.current_epoch, trainer.max_epochs, trainer.global_step
        log.info(epoch_line(epoch, max_epochs, step, means, seconds, mean_seconds))
