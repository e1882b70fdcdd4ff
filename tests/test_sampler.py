"""Training batch order: reshuffled every epoch, reproducible, and resumed where it stopped."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY, compose_config
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.callbacks import Callback

from histvq.config import instantiate_node
from histvq.data.sampler import EpochOrder, TrainBatchSampler
from histvq.models import build_model
from histvq.pipeline import build_datamodule


def test_random_batches_are_consecutive_groups_of_a_permutation() -> None:
    sampler = TrainBatchSampler([5] * 10, 4, bucket=False, seed=2)
    sampler.set_epoch(3)
    batches = list(sampler)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(2 * 100_003 + 3)).tolist()
    # the reference's batches: the shuffled list cut into groups, the last one smaller
    assert batches == [order[:4], order[4:8], order[8:]]


def test_the_epoch_order_depends_only_on_seed_and_epoch() -> None:
    lengths = list(range(10, 40))
    a, b = EpochOrder(lengths, seed=1), EpochOrder(lengths, seed=1)
    a.set_epoch(5)
    for epoch in (2, 9, 5):  # whatever came before
        b.set_epoch(epoch)
    assert list(a) == list(b)
    b.set_epoch(6)
    assert list(a) != list(b)
    assert list(EpochOrder(lengths, seed=2)) != list(EpochOrder(lengths, seed=1))


def test_lightning_sets_the_epoch_on_the_training_loader() -> None:
    cfg = compose_config("train", ["paths.data_dir=unused"])
    datamodule = instantiate_node(cfg.dataset, "dataset")
    datamodule.dataset = torch.utils.data.TensorDataset(torch.zeros(9))
    datamodule.dataset.lengths = list(range(9))
    loader = datamodule.train_dataloader()
    first = list(loader.batch_sampler)
    _set_sampler_epoch(loader, 1)  # what Lightning's fit loop calls at every epoch start
    assert loader.batch_sampler.epoch == 1
    assert list(loader.batch_sampler) != first


class BatchRecorder(Callback):
    """Records the dataset indices of every training batch, per epoch."""

    def __init__(self) -> None:
        self.epochs: dict[int, list[list[int]]] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.epochs.setdefault(trainer.current_epoch, []).append(batch["index"].tolist())


def _fit(cfg, epochs: int, ckpt_path: Path | None = None) -> BatchRecorder:
    datamodule = build_datamodule(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, datamodule.spec)
    recorder = BatchRecorder()
    trainer: L.Trainer = instantiate_node(
        cfg.trainer,
        "trainer",
        callbacks=[recorder],
        logger=False,
        max_epochs=epochs,
        enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    if ckpt_path is None:
        trainer.save_checkpoint(Path(cfg.paths.output_dir) / f"epoch{epochs}.ckpt")
    return recorder


@pytest.mark.parametrize("bucket", [False, True])
def test_training_reshuffles_every_epoch_and_resumes_the_order(
    tmp_path: Path, bucket: bool
) -> None:
    cfg = compose_config(
        "train",
        [
            f"paths.data_dir={tmp_path / 'data'}",
            f"paths.output_dir={tmp_path / 'run'}",
            *TINY,
            "dataset.generator.num_sequences=9",
            "dataset.batch_size=2",
            f"dataset.bucket_by_length={bucket}",
        ],
    )
    straight = _fit(cfg, epochs=3).epochs
    assert sorted(straight) == [0, 1, 2]
    assert straight[0] != straight[1] and straight[1] != straight[2]
    assert all(
        sorted(i for b in batches for i in b) == list(range(9)) for batches in straight.values()
    )
    again = _fit(cfg, epochs=3).epochs
    assert again == straight  # the same seed gives the same sequence of epochs
    (tmp_path / "run").mkdir(exist_ok=True)
    _fit(cfg, epochs=1)
    resumed = _fit(cfg, epochs=3, ckpt_path=tmp_path / "run" / "epoch1.ckpt").epochs
    assert resumed == {1: straight[1], 2: straight[2]}
