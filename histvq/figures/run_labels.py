"""A training or evaluation run's predictions and its dataset's ground truth, as label ids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from histvq.data.layout import LABELS_DIR, MAPPING_DIR, MAPPING_FILE, read_labels, read_mapping
from histvq.errors import ConfigError
from histvq.metrics.names import EVALUATED_DATASET_FILE, unmatched_id

PREDICTIONS_DIR = "predictions"


@dataclass
class RunLabels:
    """A run's per-frame predictions (label ids after matching; unmatched clusters negative)
    and the ground truth of its dataset, by sequence name, with the patch size it labels."""

    name: str
    label_names: dict[int, str]
    predictions: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    patch_size: int | None = None


def _dataset_folder(run: Path) -> tuple[Path, int | None]:
    """The prepared dataset of a run and its patch size: an ``evaluate.py`` folder's record
    of the dataset it evaluated, else the training run's saved config (``${oc.env:
    PROJECT_ROOT}`` is this checkout; a relative path resolves against the folder training
    was started from, which Hydra records, so the figures can be drawn from anywhere)."""
    config = run / EVALUATED_DATASET_FILE
    if not config.is_file():
        config = run / ".hydra" / "config.yaml"
    if not config.is_file():
        raise ConfigError(
            f"--run {run}: neither a training run folder (no .hydra/config.yaml) nor an "
            f"evaluate.py folder (no {EVALUATED_DATASET_FILE})"
        )
    os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
    saved = OmegaConf.load(config)
    try:
        data_dir = OmegaConf.select(saved, "dataset.data_dir")
        name = OmegaConf.select(saved, "dataset.name")
        patch_size = OmegaConf.select(saved, "dataset.patch_size")
    except OmegaConfBaseException as error:
        raise ConfigError(f"{config}: cannot resolve the dataset folder ({error})") from None
    if not data_dir or not name:
        raise ConfigError(f"{config}: no dataset.data_dir / dataset.name")
    if patch_size is not None and (not isinstance(patch_size, int) or patch_size < 1):
        raise ConfigError(f"{config}: dataset.patch_size must be a positive integer")
    folder = Path(str(data_dir)).expanduser() / str(name)
    return (folder if folder.is_absolute() else _launch_folder(run) / folder), patch_size


def _launch_folder(run: Path) -> Path:
    """The working folder of the process that trained ``run`` (Hydra's ``runtime.cwd``), or
    the current one when the run does not record it."""
    hydra_file = run / ".hydra" / "hydra.yaml"
    if hydra_file.is_file():
        try:
            cwd = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.cwd")
        except OmegaConfBaseException:
            cwd = None
        if cwd:
            return Path(str(cwd))
    return Path.cwd()


def load_run_labels(name: str, run: Path) -> RunLabels:
    """Read a run's predictions and its dataset's ground truth as label ids."""
    folder, patch_size = _dataset_folder(run)
    label_names = read_mapping(folder / MAPPING_DIR / MAPPING_FILE)
    ids = {label: i for i, label in label_names.items()}
    files = sorted((run / PREDICTIONS_DIR).glob("*.txt"))
    if not files:
        raise ConfigError(f"--run {run}: no {PREDICTIONS_DIR}/*.txt (eval.write_predictions?)")
    predictions, targets = {}, {}
    for file in files:
        names = read_labels(file)
        predictions[file.stem] = np.array([_label_id(n, ids, file) for n in names], np.int64)
        truth = folder / LABELS_DIR / file.name
        if not truth.is_file():
            raise ConfigError(f"{file}: the run's dataset has no ground truth {truth}")
        target = read_labels(truth)
        unknown = sorted(set(target) - ids.keys())
        if unknown:
            raise ConfigError(f"{truth}: labels {unknown} are not in the dataset's mapping")
        targets[file.stem] = np.array([ids[n] for n in target], dtype=np.int64)
        if targets[file.stem].size != predictions[file.stem].size:
            raise ConfigError(f"{file}: {len(names)} frames but the ground truth has {len(target)}")
    return RunLabels(name, label_names, predictions, targets, patch_size)


def _label_id(name: str, ids: dict[str, int], file: Path) -> int:
    if name in ids:
        return ids[name]
    if name.startswith("cluster_") and name[len("cluster_") :].isdigit():
        return unmatched_id(int(name[len("cluster_") :]))
    raise ConfigError(f"{file}: {name!r} is neither a label of the dataset nor cluster_<id>")
