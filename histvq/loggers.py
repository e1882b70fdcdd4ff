"""Experiment loggers configured for Hydra runs and sweeps.

W&B runs are named from the run's command-line overrides and grouped by sweep, so every job
of a multirun is its own run and a sweep shows up as one group on the dashboard.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
