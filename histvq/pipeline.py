"""What ``train.py`` and ``evaluate.py`` do, as functions of their composed configs."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from histvq.callbacks.checkpoint import RunCheckpoint
from histvq.callbacks.evaluation import SegmentationEvaluation
from histvq.callbacks.runtime import ProcessSetup, SharedRunSetup
from histvq.config import instantiate_node, required, to_plain
from histvq.data.datamodule import LayoutDataModule
from histvq.errors import ConfigError
from histvq.evaluation import (
    evaluate_module,
    format_metrics_table,
    write_evaluated_dataset,
    write_evaluation,
)
from histvq.loggers import finish_wandb
from histvq.metrics.names import MATCHINGS, METRIC_KEYS, METRICS_FILE
from histvq.models import build_model
from histvq.models.checkpoint import load_trained
from histvq.runtime import destroy_process_group_if_initialized, quiet_third_party_notices
from histvq.spec import DataSpec

log = logging.getLogger(__name__)

# Jobs that a Hydra launcher runs in worker processes (joblib, submitit) import this module
# but never run train.py's top level.
quiet_third_party_notices()


# A dataset key of older run configs that configured the model, not the DataModule (it is
# dataset.model_defaults.lambda_temp now).
LEGACY_DATASET_KEYS = ("lambda_temp",)
# ckpt_path value that resumes the run folder's own last checkpoint when there is one.
RESUME_LAST = "last"
# Loggers that continue a resumed run's log (their ``resume`` argument) instead of starting
# a new one.
RESUMABLE = ("histvq.loggers.ResumableCSVLogger", "histvq.loggers.wandb_logger")
# Exit status of a run stopped by SIGTERM: 128 + 15, as shells report a process it ended.
SIGTERM_EXIT_STATUS = 143


def _instantiate_group(group: DictConfig | None, key: str, resume: bool | None = None) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers); with
    ``resume`` given, the loggers that can continue a resumed run's log are told whether
    this run resumes."""
    if not group:
        return []
    objects = []
    for name, node in group.items():
        if node is None or "_target_" not in node:
            continue
        extra = {"resume": resume} if resume is not None and node._target_ in RESUMABLE else {}
        objects.append(instantiate_node(node, f"{key}.{name}", **extra))
    return objects


def build_datamodule(cfg: DictConfig) -> LayoutDataModule:
    if cfg.get("dataset") is None:
        raise ConfigError("no dataset selected (dataset=<name>)")
    values = OmegaConf.to_container(cfg.dataset, resolve=True, throw_on_missing=False)
    assert isinstance(values, dict)
    for key in LEGACY_DATASET_KEYS:
        values.pop(key, None)
    datamodule = instantiate_node(OmegaConf.create(values), "dataset")
    if not isinstance(datamodule, LayoutDataModule):
        raise ConfigError(f"dataset._target_ must build a LayoutDataModule, got {type(datamodule)}")
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def train_and_evaluate(cfg: DictConfig) -> dict[str, Any] | None:
    """Fit the model on every sequence, then evaluate it (transductive protocol).

    Returns the metrics written to ``<output_dir>/metrics.json`` (None on non-zero ranks of a
    multi-process run, which write nothing). A W&B run started here is always finished,
    marked failed when training raised, so multirun jobs never merge.
    """
    failed = True
    try:
        metrics = _train_and_evaluate(cfg)
        failed = False
        return metrics
    except SIGTERMException:
        # Lightning's SIGTERMException is a SystemExit with status 0: a run cut short would
        # look like a success to the shell, SLURM and Hydra's launchers.
        log.warning(
            "stopped by SIGTERM before training ended; the same command with ckpt_path=last "
            "(and the same run folder) continues it"
        )
        raise SystemExit(SIGTERM_EXIT_STATUS) from None
    finally:
        finish_wandb(failed)


def parse_objective(objective: Any) -> tuple[str, str]:
    """``"global/mof"`` -> ("global", "mof"): a matching of metrics.json and one of its
    metrics. Raises :class:`ConfigError` for anything else."""
    text = str(objective).strip().lower()
    matching, sep, metric = text.partition("/")
    if not sep or matching not in MATCHINGS or metric not in METRIC_KEYS:
        raise ConfigError(
            f"objective: unknown value {objective!r} (<matching>/<metric> with matching "
            f"{' | '.join(MATCHINGS)} and metric {' | '.join(METRIC_KEYS)}, "
            f"e.g. global/mof)"
        )
    return matching, metric


def objective_value(metrics: dict[str, Any], objective: Any) -> float:
    """The number that ``objective`` (``"<matching>/<metric>"``) names in a metrics dict as
    written to metrics.json."""
    matching, metric = parse_objective(objective)
    block = metrics.get(matching)
    value = block.get(metric) if isinstance(block, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"objective: the metrics hold no number {matching}/{metric}")
    return float(value)


def train_for_objective(cfg: DictConfig) -> float | None:
    """What ``train.py`` runs: :func:`train_and_evaluate`, returning the value of
    ``cfg.objective`` (e.g. ``global/mof``) to the Hydra sweeper, which optimises it
    (``hydra/sweeper=optuna``). None on non-zero ranks and when nothing was evaluated."""
    objective = cfg.get("objective", "global/mof")
    parse_objective(objective)  # fail before training, not after
    metrics = train_and_evaluate(cfg)
    if metrics is None:
        return None
    return objective_value(metrics, objective)


def _train_and_evaluate(cfg: DictConfig) -> dict[str, Any] | None:
    output_dir = Path(cfg.paths.output_dir)
    resume_from = checkpoint_to_resume(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    spec = datamodule.spec
    model = build_model(cfg.model, spec, training_device_type(cfg.trainer))
    run_config = to_plain(cfg)
    model.run_config = run_config
    model.data_spec = spec.to_dict()
    callbacks = _instantiate_group(cfg.get("callbacks"), "callbacks")
    callbacks.append(ProcessSetup(keep_cpu_memory=bool(cfg.get("keep_cpu_memory", True))))
    # Checks that all ranks share the run folder and logs the config from global rank 0.
    callbacks.append(SharedRunSetup(str(output_dir), run_config))
    loggers = _instantiate_group(cfg.get("logger"), "logger", resume=resume_from is not None)
    trainer: L.Trainer = instantiate_node(
        cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False
    )
    log.info("output dir: %s", output_dir)
    with relaunch_pinned_to(output_dir):
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    if not trainer.is_global_zero:
        return None
    metrics = final_metrics(callbacks, output_dir)
    if metrics is None:
        log.warning("nothing was evaluated (is callbacks.segmentation_evaluation disabled?)")
        return None
    title = f"{cfg.model.get('name', 'model')} on {spec_name(cfg)}"
    print(format_metrics_table(metrics, title=title))
    print(f"run folder: {output_dir}")
    return metrics


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """The checkpoint training resumes from, or None to start from scratch.

    ``ckpt_path`` names a checkpoint file; ``ckpt_path=last`` names this run folder's own
    ``last.ckpt`` when it has one and starts from scratch when not, so the same command run
    again in the same folder (a fixed ``hydra.run.dir``, a sweep run again with
    ``python -m histvq.reproduce --resume``, a preempted job) continues where it stopped.
    """
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path:
        return None
    if str(ckpt_path) != RESUME_LAST:
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path: {ckpt_path} does not exist")
        return str(ckpt_path)
    checkpointing = (cfg.get("callbacks") or {}).get("model_checkpoint")
    if not checkpointing:
        raise ConfigError(
            "ckpt_path=last: callbacks.model_checkpoint is disabled, so this run folder "
            "has no checkpoint to resume from"
        )
    if not checkpointing.get("dirpath"):
        raise ConfigError("ckpt_path=last: callbacks.model_checkpoint.dirpath must be set")
    last = Path(checkpointing.dirpath) / (
        RunCheckpoint.CHECKPOINT_NAME_LAST + RunCheckpoint.FILE_EXTENSION
    )
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    log.info("ckpt_path=last: no %s yet, training from the start", last)
    return None


def final_metrics(callbacks: list[Any], output_dir: Path) -> dict[str, Any] | None:
    """The final evaluation's metrics: the evaluation callback's result when training ran in
    this process, else (DDP workers spawned as separate processes) its metrics.json."""
    for callback in callbacks:
        if isinstance(callback, SegmentationEvaluation) and callback.last_result is not None:
            return callback.last_result.to_json()
    path = output_dir / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


@contextmanager
def relaunch_pinned_to(output_dir: Path) -> Iterator[None]:
    """Make DDP processes started by re-running the command line join *this* job.

    Lightning's subprocess launcher (``strategy=ddp``) starts ranks > 0 by re-running
    ``sys.argv`` with ``hydra.run.dir`` set to the configured run dir. Under a multirun that
    would re-launch the whole sweep in every child, and the run dir is not this job's folder.
    So, while training, the command line is this job's own overrides and the run dir its
    output folder: children then log into the same folder and write nothing else (only
    rank 0 writes files). Afterwards the launcher's environment variables (LOCAL_RANK,
    WORLD_SIZE, MASTER_PORT, ...) are removed again and any process group is destroyed, or
    the next job of a multirun would believe its ranks were started externally.
    """
    saved_env = dict(os.environ)
    hydra_cfg = _hydra_config()
    saved_argv = sys.argv
    saved_dir = hydra_cfg.run.dir if hydra_cfg is not None else None
    if hydra_cfg is not None:
        sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
        with open_dict(hydra_cfg), read_write(hydra_cfg):
            hydra_cfg.run.dir = str(output_dir)
    try:
        yield
    finally:
        sys.argv = saved_argv
        if hydra_cfg is not None:
            with open_dict(hydra_cfg), read_write(hydra_cfg):
                hydra_cfg.run.dir = saved_dir
        os.environ.clear()
        os.environ.update(saved_env)
        destroy_process_group_if_initialized()


def _hydra_config() -> DictConfig | None:
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def spec_name(cfg: DictConfig) -> str:
    return str(cfg.dataset.get("name", "data")) if cfg.get("dataset") else "data"


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Rebuild model and data from a checkpoint's run config (dataset=... may replace the
    data), predict every sequence and write metrics.json, predictions and plots."""
    ckpt_path = Path(
        required(cfg, "ckpt_path", "python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt")
    ).expanduser()
    trained = load_trained(ckpt_path, str(cfg.get("device", "auto")))
    run_cfg = OmegaConf.create(trained.run_config)
    data_cfg = OmegaConf.create({"dataset": run_cfg.dataset})
    if cfg.get("dataset") is not None:
        data_cfg = OmegaConf.create({"dataset": to_plain(cfg)["dataset"]})
        # the model reads the input streams it was trained on, standardised as in training
        data_cfg.dataset.stream = run_cfg.dataset.get("stream", "joint")
        data_cfg.dataset.normalize = run_cfg.dataset.get("normalize", "none")
        data_cfg.dataset.input_stats = trained.spec.input_stats
    datamodule = build_datamodule(data_cfg)
    shape, trained_shape = _shape(datamodule.spec), _shape(trained.spec)
    if shape != trained_shape:
        raise ConfigError(
            f"dataset {spec_name(data_cfg)}: (C, V, M, patch) = {shape} but the checkpoint was "
            f"trained on {trained_shape}"
        )
    model = trained.model
    result = evaluate_module(
        model,
        datamodule,
        bin_width=int(cfg.eval.bin_width),
        unmatched=str(cfg.eval.get("unmatched", "square_assignment")),
    )
    output_dir = Path(cfg.paths.output_dir)
    write_evaluation(
        result,
        output_dir,
        plots=bool(cfg.eval.plots),
        max_sequence_plots=int(cfg.eval.max_sequence_plots),
        write_predictions=bool(cfg.eval.write_predictions),
    )
    write_evaluated_dataset(
        output_dir, datamodule.data_dir, datamodule.name, datamodule.spec.patch_size
    )
    metrics = result.to_json()
    print(format_metrics_table(metrics, title=f"{ckpt_path} on {spec_name(data_cfg)}"))
    print(f"evaluation folder: {output_dir}")
    return metrics


def _shape(spec: DataSpec) -> tuple[int, int, int, int]:
    return (spec.num_channels, spec.num_joints, spec.num_persons, spec.patch_size)


def training_device_type(trainer_cfg: DictConfig) -> str:
    """The device type (``cpu``, ``cuda``, ``mps``) a trainer config trains on."""
    accelerator = str(trainer_cfg.get("accelerator", "cpu"))
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return {"gpu": "cuda"}.get(accelerator, accelerator)
