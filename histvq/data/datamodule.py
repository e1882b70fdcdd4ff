"""The LightningDataModule over a prepared folder in the SMQ-compatible layout.

:class:`LayoutDataModule` reads any prepared folder (``dataset=folder``): loaders for
training (reshuffled every epoch, resumable mid-epoch) and for evaluation (every sequence
once, sharded by process), the data spec a model is built from, and the device-dependent
batch shapes. The dataset-specific modules in :mod:`histvq.data.datamodules` only add how
the folder comes to exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from histvq.data.dataset import PAD_TO, PadCollate, ResidentFeatures, SequenceDataset
from histvq.data.layout import LayoutDataset, dataset_dir, read_layout
from histvq.data.normalize import channel_statistics, check_normalization, standardize
from histvq.data.loaders import ResumableLoader, private_generator
from histvq.data.sampler import ShardedEvalBatchSampler, TrainBatchSampler
from histvq.data.streams import apply_streams, check_streams
from histvq.errors import ConfigError, LayoutError
from histvq.spec import DataSpec

log = logging.getLogger(__name__)


@contextmanager
def preparation_lock(root: Path, name: str) -> Iterator[None]:
    """Let one process at a time prepare ``<root>/<name>``.

    Every job of a parallel sweep and every rank of a run started by ``srun`` or ``torchrun``
    prepares its data before training; with this lock the first one writes the folder and the
    others wait, then find it ready. The lock is an exclusive ``flock`` on
    ``<root>/.<name>.lock`` (POSIX; without ``fcntl`` no lock is taken).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LayoutDataModule(L.LightningDataModule):
    """Sequences of ``<data_dir>/<name>`` in the SMQ-compatible layout.

    Args:
        data_dir: root holding prepared datasets (``paths.data_dir``).
        name: the dataset's folder under ``data_dir``.
        patch_size: frames per patch P; batches are padded to a multiple of it.
        batch_size: training sequences per batch (per process under DDP).
        eval_batch_size: sequences per prediction batch (default: ``batch_size``).
        num_classes: K, the top codebook size; default the number of distinct labels present.
        bucket_by_length: group similar lengths in training batches (less padding, faster);
            False (the reference): random batches, reshuffled every epoch.
        ignore_labels: label names left out of the metrics (e.g. a background class).
        group_regex: regex whose first group, applied to sequence names, gives the activity
            group used by the JSD metric (default: one group).
        fps: frames per second, for plots and reports.
        num_channels, num_joints: what the dataset should hold (C, V); checked against the
            arrays when set, so a wrong folder fails with a clear message.
        num_workers: DataLoader workers (data lives in memory, 0 is usually fastest).
        seed: seeds the batch order.
        pad_to: batch lengths: ``patch`` (the longest sequence rounded up to the patch size),
            ``ladder`` (a few fixed lengths, so shapes repeat on a GPU) or ``auto`` (ladder
            when training on an accelerator, patch on a CPU).
        stream: the model's input streams, computed from the prepared joints: ``joint``
            (default), ``bone`` (joint minus its parent; needs a skeleton tree), ``motion``
            (frame differences), ``bone_motion``, or several joined by ``+``, stacked as
            channels (e.g. ``joint+motion``).
        normalize: ``none`` (the reference: raw inputs) or ``channel`` (every input channel
            to zero mean and unit variance over the dataset; see :mod:`histvq.data.normalize`).
        input_stats: fixed ``{"mean": [...], "std": [...]}`` for ``normalize=channel`` instead
            of this dataset's (evaluation of a trained model on other data uses its own).
        model_defaults: the paper's model settings for this dataset (``lambda_temp``); the
            model config reads them, the DataModule does not.
        resident: keep the features on the training device and build batches there
            (``auto``: when training on an accelerator and they take under a quarter of its
            memory).
    """

    # The kind of data, stored in the spec (and so in checkpoints): the raw format it was
    # prepared from, or "layout" for a folder prepared elsewhere.
    kind: str = "layout"

    def __init__(
        self,
        data_dir: str,
        name: str,
        patch_size: int,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_classes: int | None = None,
        bucket_by_length: bool = False,
        ignore_labels: Sequence[str] = (),
        group_regex: str | None = None,
        fps: float | None = None,
        num_channels: int | None = None,
        num_joints: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pad_to: str = "auto",
        resident: str | bool = "auto",
        stream: str = "joint",
        normalize: str = "none",
        input_stats: dict[str, list[float]] | None = None,
        model_defaults: dict[str, Any] | None = None,
    ):
        super().__init__()
        check_streams(stream, self.kind, name)
        self.stream = stream
        self.normalize = check_normalization(normalize)
        self.input_stats = dict(input_stats) if input_stats else None
        if pad_to not in ("auto", *PAD_TO):
            raise ConfigError(f"dataset.pad_to: unknown value {pad_to!r} (auto | patch | ladder)")
        if resident not in ("auto", True, False):
            raise ConfigError(f"dataset.resident: expected auto, true or false, got {resident!r}")
        self.pad_to, self.resident = pad_to, resident
        self._resident_features: ResidentFeatures | None = None
        # The device batches are built for when no trainer is attached (benchmarks).
        self.device_override: torch.device | None = None
        if patch_size < 1:
            raise ConfigError(f"dataset.patch_size must be >= 1, got {patch_size}")
        if batch_size < 1:
            raise ConfigError(f"dataset.batch_size must be >= 1, got {batch_size}")
        self.data_dir, self.name = data_dir, name
        self.patch_size, self.batch_size = patch_size, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_classes_override = num_classes
        self.bucket_by_length = bucket_by_length
        self.ignore_label_names = list(ignore_labels)
        self.group_regex, self.fps = group_regex, fps
        self.expected_channels, self.expected_joints = num_channels, num_joints
        self.num_workers, self.seed = num_workers, seed
        self.layout: LayoutDataset | None = None
        self.dataset: SequenceDataset | None = None
        self.group_names: list[str] = []

    # ---------------------------------------------------------------- preparation
    @property
    def path(self) -> Path:
        return dataset_dir(self.data_dir, self.name)

    def prepare_data(self) -> None:
        """Make sure the prepared folder exists (subclasses create it when they can)."""
        if not self.path.is_dir():
            raise LayoutError(self.missing_message())

    def missing_message(self) -> str:
        return (
            f"{self.path}: prepared dataset not found; prepare it with "
            f"`python -m histvq.prepare <dataset> --input <raw files> --output {self.data_dir}` "
            f"or point paths.data_dir / dataset.name at an existing folder"
        )

    def setup(self, stage: str | None = None) -> None:
        if self.layout is not None:
            return
        self.prepare_data_if_missing()
        self.layout = read_layout(self.path)
        self._check_shape()
        negative = [k for k in self.layout.mapping if k < 0]
        if negative:
            raise LayoutError(
                f"{self.path}/mapping/mapping.txt: label ids must be >= 0, got {negative}"
            )
        groups = self._groups([s.name for s in self.layout.sequences])
        records = self.layout.sequences
        if self.stream != "joint":
            records = [
                replace(r, features=apply_streams(r.features, self.stream, self.kind, self.name))
                for r in records
            ]
        if self.normalize == "channel":
            if self.input_stats is None:
                mean, std = channel_statistics([r.features for r in records])
                self.input_stats = {"mean": mean, "std": std}
            stats = self.input_stats
            records = [
                replace(r, features=standardize(r.features, stats["mean"], stats["std"]))
                for r in records
            ]
        self.dataset = SequenceDataset(records, groups)
        log.info(
            "dataset %s: %d sequences, %d frames, (C, V, M) = %s, K = %d",
            self.name,
            len(self.dataset),
            self.layout.num_frames,
            self.layout.shape,
            self.spec.num_classes,
        )

    def _check_shape(self) -> None:
        assert self.layout is not None
        c, v, _ = self.layout.shape
        for key, expected, found in (
            ("num_channels", self.expected_channels, c),
            ("num_joints", self.expected_joints, v),
        ):
            if expected is not None and expected != found:
                raise LayoutError(
                    f"{self.path}: dataset.{key} is {expected} but the prepared arrays have "
                    f"{found} (C, T, V, M = {self.layout.sequences[0].features.shape})"
                )

    def prepare_data_if_missing(self) -> None:
        """``setup`` may run without ``prepare_data`` (e.g. in evaluate.py); prepare then."""
        if not self.path.is_dir():
            self.prepare_data()

    def _groups(self, names: list[str]) -> list[int]:
        if not self.group_regex:
            self.group_names = ["all"]
            return [0] * len(names)
        pattern = re.compile(self.group_regex)
        keys = []
        for name in names:
            match = pattern.search(name)
            if match is None:
                raise ConfigError(
                    f"dataset.group_regex {self.group_regex!r} does not match sequence {name!r}"
                )
            keys.append(match.group(1) if match.groups() else match.group(0))
        self.group_names = sorted(set(keys))
        return [self.group_names.index(k) for k in keys]

    # ---------------------------------------------------------------- description
    @property
    def spec(self) -> DataSpec:
        if self.layout is None:
            raise RuntimeError("call setup() before reading the data spec")
        c, _, v, m = (self.dataset.records if self.dataset else self.layout.sequences)[
            0
        ].features.shape
        present = self.layout.present_label_ids()
        k = self.num_classes_override or len(present)
        return DataSpec(
            num_channels=c,
            num_joints=v,
            num_persons=m,
            num_classes=int(k),
            patch_size=self.patch_size,
            label_names=dict(self.layout.mapping),
            fps=self.fps,
            kind=self.kind,
            input_stats=self.input_stats if self.normalize == "channel" else None,
        )

    @property
    def ignore_label_ids(self) -> list[int]:
        if self.layout is None:
            raise RuntimeError("call setup() first")
        by_name = {name: i for i, name in self.layout.mapping.items()}
        unknown = [n for n in self.ignore_label_names if n not in by_name]
        if unknown:
            raise ConfigError(f"dataset.ignore_labels: {unknown} are not labels of {self.name}")
        return [by_name[n] for n in self.ignore_label_names]

    # ---------------------------------------------------------------- loaders
    def _replicas(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def train_dataloader(self) -> DataLoader:
        assert self.dataset is not None, "setup() first"
        replicas, rank = self._replicas()
        sampler = TrainBatchSampler(
            self.dataset.lengths,
            self.batch_size,
            bucket=self.bucket_by_length,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
        )
        self._resident_features = self._make_resident()
        return ResumableLoader(
            self.dataset,
            batch_sampler=sampler,
            consumed=self._batches_consumed,
            **self._loader_options(with_features=self._resident_features is None),
        )

    def _training_device(self) -> torch.device:
        if self.device_override is not None:
            return self.device_override
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _make_resident(self) -> ResidentFeatures | None:
        assert self.dataset is not None
        device = self._training_device()
        wanted = self.resident
        if wanted == "auto":
            if device.type == "cpu":
                return None
            total = (
                torch.cuda.get_device_properties(device).total_memory
                if device.type == "cuda"
                else 0
            )
            wanted = ResidentFeatures.nbytes(self.dataset.records) < total / 4
        if not wanted:
            return None
        if self._resident_features is not None and self._resident_features.device == device:
            return self._resident_features
        return ResidentFeatures(self.dataset.records, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches of a device-resident dataset get their features here."""
        if self._resident_features is not None and "features" not in batch:
            return self._resident_features.fill(batch)
        return batch

    def _batches_consumed(self) -> int:
        """Training batches of the current epoch the trainer has taken (for checkpoints)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader()

    def eval_dataloader(
        self, num_replicas: int | None = None, rank: int | None = None
    ) -> DataLoader:
        """Every sequence once over all processes (no padding copies), sorted by length."""
        assert self.dataset is not None, "setup() first"
        default_replicas, default_rank = self._replicas()
        sampler = ShardedEvalBatchSampler(
            self.dataset.lengths,
            self.eval_batch_size,
            num_replicas=num_replicas or default_replicas,
            rank=default_rank if rank is None else rank,
        )
        return self._loader(sampler)

    def _loader(self, batch_sampler: Any) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_sampler=batch_sampler,
            generator=private_generator(),
            **self._loader_options(),
        )

    def resolved_pad_to(self) -> str:
        if self.pad_to != "auto":
            return self.pad_to
        return "patch" if self._training_device().type == "cpu" else "ladder"

    def _loader_options(self, with_features: bool = True) -> dict[str, Any]:
        return {
            "collate_fn": PadCollate(self.patch_size, self.resolved_pad_to(), with_features),
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
        }
