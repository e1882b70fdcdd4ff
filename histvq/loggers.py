"""Experiment loggers configured for Hydra runs and sweeps.

W&B runs are named from the run's command-line overrides and grouped by sweep, so every job
of a multirun is its own run and a sweep shows up as one group on the dashboard.

A run resumed into its own folder (``ckpt_path=last``) continues its logs: the CSV log
(:class:`ResumableCSVLogger`) and the W&B run (:func:`wandb_logger`). Both take a
``resume`` argument, which the training pipeline sets when it resumes.
"""

from __future__ import annotations

import csv
import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

log = logging.getLogger(__name__)

# Where a run folder keeps the id of its W&B run, for a resumed run to continue it.
WANDB_RUN_ID_FILE = "run_id.txt"


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
    resume: bool = False,
) -> Any:
    """A Lightning ``WandbLogger`` for this run.

    ``name`` defaults to the run's overrides (``dataset=hugadb,model.alpha=3``) and ``group``
    to the sweep folder in multirun. Without credentials an online request falls back to
    offline mode (synchronise later with ``wandb sync <save_dir>/wandb/offline-run-*``).
    With ``resume`` the run continues the W&B run this folder logged to before (its id is
    kept in ``<save_dir>/wandb/run_id.txt``), so an interrupted and resumed run is one run
    on the dashboard; without it, or without a kept id, it is a new W&B run.
    """
    default_name, default_group = _hydra_context()
    if not offline and not wandb_credentials_available():
        log.warning("no W&B credentials (WANDB_API_KEY or ~/.netrc): logging offline instead")
        offline = True
    id_file = Path(save_dir) / "wandb" / WANDB_RUN_ID_FILE
    kept_id = id_file.read_text(encoding="utf-8").strip() if resume and id_file.is_file() else ""
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return _KeptIdWandbLogger(
        id_file,
        id=kept_id or None,  # None: W&B draws a new one
        resume="allow",
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


class _KeptIdWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` that writes the id of its W&B run into ``id_file`` once
    the run exists (on global rank 0), for a resumed run to continue it."""

    def __init__(self, id_file: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._id_file = id_file

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        starting = self._experiment is None
        experiment = super().experiment
        if starting:
            self._id_file.parent.mkdir(parents=True, exist_ok=True)
            self._id_file.write_text(f"{experiment.id}\n", encoding="utf-8")
        return experiment


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
    histvq.report --history``). With ``resume`` set the new lines go after the old ones,
    under one header that covers both. Steps trained again after the checkpoint log their
    lines again; readers merge lines per (epoch, step) with the later ones winning
    (:func:`histvq.report.history.read_log`).
    """

    def __init__(self, *args: Any, resume: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.resume:
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
