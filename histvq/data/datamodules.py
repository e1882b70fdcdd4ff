"""The dataset-specific DataModules: how each prepared folder comes to exist (generated,
or prepared from a raw release on first use) and the dataset's kind; everything else is
:class:`~histvq.data.datamodule.LayoutDataModule`'s (re-exported here, the configs' target
for ``dataset=folder``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from histvq.data.datamodule import LayoutDataModule, preparation_lock
from histvq.errors import ConfigError, LayoutError

log = logging.getLogger(__name__)

__all__ = [
    "BABELDataModule",
    "HuGaDBDataModule",
    "LARaDataModule",
    "LayoutDataModule",
    "NTUDataModule",
    "PKUMMDDataModule",
    "RawDataModule",
    "SyntheticDataModule",
]


class SyntheticDataModule(LayoutDataModule):
    """The embedded default dataset: skeletons generated deterministically on first use.

    Extra args are the generator's settings (see :class:`histvq.data.synthetic.SyntheticSpec`);
    an existing folder generated with other settings is regenerated.
    """

    kind = "synthetic"

    def __init__(self, *args: Any, generator: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.generator_settings = dict(generator or {})
        self._ensured = False

    def prepare_data(self) -> None:
        """Generate the data, or check that the folder matches the settings (once)."""
        if self._ensured:
            return
        from omegaconf import DictConfig, ListConfig, OmegaConf

        from histvq.data.synthetic import SyntheticSpec, ensure_synthetic_dataset

        # Hydra hands list-valued settings over as OmegaConf containers: make them plain.
        settings = {
            key: OmegaConf.to_container(value, resolve=True)
            if isinstance(value, DictConfig | ListConfig)
            else value
            for key, value in self.generator_settings.items()
        }
        try:
            spec = SyntheticSpec.from_dict(settings)
        except ConfigError as error:
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

    kind: str = "raw"

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
        from histvq.data.preparation import prepare_dataset

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
