"""Experiment loggers configured for Hydra runs and sweeps.

The CSV log of a run resumed into its own folder continues the interrupted run's log
(:class:`ResumableCSVLogger`).

W&B runs are named from the run's command-line overrides and grouped by sweep, so every job
of a multirun is its own run and a sweep shows up as one group on the dashboard.
"""

from __future__ import annotations

import csv
import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

log = logging.getLogger(__name__)


def _hydra_context() -> tuple[str | None, str | None]:
    """(override_dirname, sweep group) of the current Hydra job, if any."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    name = hydra_cfg.job.override_dirname or None
    group = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        group = f"{sweep_dir.parent.name}/{sweep_dir.name}"
    return name, group


def wandb_credentials_available() -> bool:
    """Whether W&B can log online: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(
    project: str = "histvq",
    entity: str | None = None,
    offline: bool = False,
    save_dir: str = ".",
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    job_type: str = "train",
    log_model: bool = False,
) -> Any:
    """A Lightning ``WandbLogger`` for this run.

    ``name`` defaults to the run's overrides (``dataset=hugadb,model.alpha=3``) and ``group``
    to the sweep folder in multirun. Without credentials an online request falls back to
    offline mode (synchronise later with ``wandb sync <save_dir>/wandb/offline-run-*``).
    """
    from lightning.pytorch.loggers import WandbLogger

    default_name, default_group = _hydra_context()
    if not offline and not wandb_credentials_available():
        log.warning("no W&B credentials (WANDB_API_KEY or ~/.netrc): logging offline instead")
        offline = True
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        entity=entity,
        offline=offline,
        save_dir=save_dir,
        name=name or default_name,
        group=group or default_group,
        tags=list(tags),
        job_type=job_type,
        log_model=log_model,
    )


def finish_wandb(failed: bool) -> None:
    """End this process's W&B run, if one is active, marking it failed when ``failed``.

    Called in a ``finally`` after each job so multirun jobs never merge into one run.
    """
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger that keeps the log of the run it resumes.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts, so a run resumed
    into its own folder (``ckpt_path=last``, a requeued or preempted job) would lose the
    history of every epoch before the interruption (codebook use, losses: ``python -m
    histvq.report --history``). With ``append`` set (the training pipeline sets it when it
    resumes) the new lines go after the old ones under one header that covers both. Steps
    trained again after the checkpoint log their lines again; readers merge lines per (epoch,
    step) with the later ones winning (:func:`histvq.report.history.read_log`).
    """

    def __init__(self, *args: Any, append: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.append = append

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.append:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return super().experiment


class _AppendingWriter(ExperimentWriter):
    """An experiment writer that continues an existing ``metrics.csv`` instead of deleting
    it, starting from the columns its header already has."""

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
            header = next(csv.reader(handle), [])
        self.metrics_keys = sorted(header)
