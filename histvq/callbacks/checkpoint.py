"""Lightning's ModelCheckpoint with one switch between epoch and step checkpoints."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` that checkpoints every
    ``every_n_epochs`` epochs, or every ``every_n_train_steps`` steps when that is set
    (Lightning accepts only one of the two), so ``every_n_train_steps=N`` alone switches a
    run to step checkpoints."""

    def __init__(
        self,
        *args: Any,
        every_n_train_steps: int | None = None,
        every_n_epochs: int | None = 1,
        **kwargs: Any,
    ):
        if every_n_train_steps:
            every_n_epochs = None
        super().__init__(
            *args, every_n_train_steps=every_n_train_steps, every_n_epochs=every_n_epochs, **kwargs
        )
