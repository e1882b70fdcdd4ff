"""LightningDataModules over the prepared on-disk layout.

:class:`LayoutDataModule` reads any prepared folder (``dataset=folder``); the dataset-specific
modules only add how the folder comes to exist (generated, or prepared from raw files) and
carry the paper's settings through their configs. Under the transductive protocol the same
sequences are used for training and for prediction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from histvq.data.dataset import PAD_TO, PadCollate, ResidentFeatures, SequenceDataset
from histvq.data.loaders import ResumableLoader, private_generator
from histvq.data.layout import LayoutDataset, dataset_dir, read_layout
from histvq.data.sampler import TrainBatchSampler, ShardedEvalBatchSampler
from histvq.errors import ConfigError, LayoutError

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


@dataclass(frozen=True)
class DataSpec:
    """What the model needs to know about the data to build itself."""

    num_channels: int
    num_joints: int
    num_persons: int
    num_classes: int
    patch_size: int
    label_names: dict[int, str]
    fps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_channels": self.num_channels,
            "num_joints": self.num_joints,
            "num_persons": self.num_persons,
            "num_classes": self.num_classes,
            "patch_size": self.patch_size,
            "label_names": {int(k): v for k, v in self.label_names.items()},
            "fps": self.fps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        values = dict(data)
        values["label_names"] = {int(k): v for k, v in values["label_names"].items()}
        return cls(**values)


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
        lambda_temp: the paper's temporal-loss weight for this dataset; model configs read it
            as ``${dataset.lambda_temp}`` so ``model=smq`` or an explicit override still wins.
        num_workers: DataLoader workers (data lives in memory, 0 is usually fastest).
        seed: seeds the batch order.
        pad_to: batch lengths: ``patch`` (the longest sequence rounded up to the patch size),
            ``ladder`` (a few fixed lengths, so shapes repeat on a GPU) or ``auto`` (ladder
            when training on an accelerator, patch on a CPU).
        resident: keep the features on the training device and build batches there
            (``auto``: when training on an accelerator and they take under a quarter of its
            memory).
    """

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
        lambda_temp: float = 0.2,
        num_workers: int = 0,
        seed: int = 0,
        pad_to: str = "auto",
        resident: str | bool = "auto",
    ):
        super().__init__()
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
        self.group_regex, self.fps, self.lambda_temp = group_regex, fps, lambda_temp
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
        self.dataset = SequenceDataset(self.layout.sequences, groups)
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
        c, v, m = self.layout.shape
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
            total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
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


class SyntheticDataModule(LayoutDataModule):
    """The embedded default dataset: skeletons generated deterministically on first use.

    Extra args are the generator's settings (see :class:`histvq.data.synthetic.SyntheticSpec`);
    an existing folder generated with other settings is regenerated.
    """

    def __init__(self, *args: Any, generator: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.generator_settings = dict(generator or {})
        self._ensured = False

    def prepare_data(self) -> None:
        """Generate the data, or check that the folder matches the settings (once)."""
        if self._ensured:
            return
        from histvq.data.synthetic import SyntheticSpec, ensure_synthetic_dataset

        try:
            spec = SyntheticSpec(**self.generator_settings)
        except TypeError as error:
            raise ConfigError(f"dataset.generator: {error}") from None
        root = Path(self.data_dir).expanduser()
        with preparation_lock(root, self.name):
            ensure_synthetic_dataset(root, self.name, spec)
        self._ensured = True

    def prepare_data_if_missing(self) -> None:
        self.prepare_data()


class RawDataModule(LayoutDataModule):
    """A dataset prepared from its raw release by ``python -m histvq.prepare <kind>``.

    When the prepared folder is missing and ``raw_dir`` is set, ``prepare_data`` runs the
    preparation; otherwise it says which command to run.
    """

    kind: str = ""

    def __init__(
        self,
        *args: Any,
        raw_dir: str | None = None,
        prepare_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.raw_dir = raw_dir
        self.prepare_options = dict(prepare_options or {})

    def raw_inputs(self) -> list[Path]:
        assert self.raw_dir is not None
        return [Path(self.raw_dir).expanduser()]

    def prepare_data(self) -> None:
        if self.path.is_dir():
            return
        if not self.raw_dir:
            raise LayoutError(self.missing_message())
        from histvq.prepare import prepare_dataset

        root = Path(self.data_dir).expanduser()
        with preparation_lock(root, self.name):
            if self.path.is_dir():  # prepared by another process meanwhile
                return
            summary = prepare_dataset(
                self.kind, self.raw_inputs(), root, name=self.name, **self.prepare_options
            )
        log.info("prepared %s", summary)

    def missing_message(self) -> str:
        return (
            f"{self.path}: prepared dataset not found; run `python -m histvq.prepare {self.kind} "
            f"--input <raw files> --output {self.data_dir}` or set dataset.raw_dir=<raw files> "
            f"to prepare it on first use"
        )


class HuGaDBDataModule(RawDataModule):
    """HuGaDB: 6 inertial sensors on the legs (C=6 acc+gyro, V=6, M=1), ~60 Hz."""

    kind = "hugadb"


class LARaDataModule(RawDataModule):
    """LARa OMoCap: 22 joints x (3 orientation + 3 hip-centred position), 50 fps."""

    kind = "lara"


class BABELDataModule(RawDataModule):
    """A BABEL subset (1-3): NTU-style 25-joint skeletons in millimetres, 30 fps.

    ``raw_dir`` is the folder holding ``train_split<subset>.pkl`` and ``val_split<subset>.pkl``
    written by the Skeleton-Temporal-Action-Localization pipeline.
    """

    kind = "babel"

    def __init__(self, *args: Any, subset: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if subset not in (1, 2, 3):
            raise ConfigError(f"dataset.subset must be 1, 2 or 3, got {subset}")
        self.subset = subset
        self.prepare_options.setdefault("subset", subset)

    def raw_inputs(self) -> list[Path]:
        assert self.raw_dir is not None
        folder = Path(self.raw_dir).expanduser()
        files = [folder / f"{split}_split{self.subset}.pkl" for split in ("train", "val")]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise LayoutError(f"dataset.raw_dir: missing BABEL pickle(s) {missing}")
        return files

    def missing_message(self) -> str:
        return (
            f"{self.path}: prepared dataset not found; run `python -m histvq.prepare babel "
            f"--subset {self.subset} --input train_split{self.subset}.pkl "
            f"val_split{self.subset}.pkl --output {self.data_dir}` or set dataset.raw_dir=<folder "
            f"with the pickles> to prepare it on first use"
        )


class PKUMMDDataModule(RawDataModule):
    """PKU-MMD: long Kinect v2 recordings, 25 joints x 3D, up to 2 bodies, 30 fps.

    ``raw_dir`` is the folder of skeleton files; ``prepare_options.labels`` the folder of the
    per-video label files (both needed to prepare on first use).
    """

    kind = "pkummd"

    def prepare_data(self) -> None:
        if not self.path.is_dir() and self.raw_dir and not self.prepare_options.get("labels"):
            raise ConfigError(
                "dataset.prepare_options.labels: set it to the folder of the PKU-MMD label "
                "files to prepare the skeletons of dataset.raw_dir"
            )
        super().prepare_data()

    def missing_message(self) -> str:
        return (
            f"{self.path}: prepared dataset not found; run `python -m histvq.prepare pkummd "
            f"--input <skeleton folder> --labels <label folder> --output {self.data_dir}` or "
            f"set dataset.raw_dir=<skeleton folder> dataset.prepare_options.labels=<label "
            f"folder> to prepare it on first use"
        )


class NTUDataModule(RawDataModule):
    """NTU RGB+D clips concatenated into long sequences (25 joints x 3D, 2 bodies, 30 fps).

    ``raw_dir`` is the folder of ``.skeleton`` clips; ``prepare_options`` says how many clips
    make a sequence and the seed of the draw.
    """

    kind = "ntu"
