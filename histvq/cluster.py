"""Experiments beyond one process: multi-node runs.

Launching is left to the ecosystem's engines (SLURM's ``srun``, ``torchrun``). This module
only makes them pleasant: :func:`shared_run_id` gives the processes of one multi-process run
started by SLURM or torchrun a common run folder name, where each would otherwise take its
own time stamp.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

RUN_ID_VARIABLE = "HISTVQ_RUN_ID"


# ----------------------------------------------------------------------------- run folders


def _count(value: str | None) -> int:
    try:
        return int(str(value).split("(")[0])
    except ValueError:
        return 0


def shared_run_id(environ: Mapping[str, str] | None = None) -> str | None:
    """A run folder name that every process of one externally started multi-process run
    agrees on, or None for a single process (which names its folder by the time).

    - ``HISTVQ_RUN_ID`` when set (any launcher: export the same value on every node);
    - an ``srun`` step with more than one task: ``slurm-<job id>.<step id>``;
    - ``torchrun`` with a rendezvous id (``--rdzv-id``, or ``--standalone``) and more than
      one process: ``torchrun-<id>``.
    """
    env = os.environ if environ is None else environ
    if env.get(RUN_ID_VARIABLE):
        return env[RUN_ID_VARIABLE]
    job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
    tasks = _count(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS"))
    if job and step and tasks > 1:
        return f"slurm-{job}.{step}"
    run_id = env.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none" and _count(env.get("WORLD_SIZE")) > 1:
        return f"torchrun-{run_id}"
    return None


def pin_shared_run_id(environ: dict[str, str] | None = None) -> str | None:
    """Export :func:`shared_run_id` as ``HISTVQ_RUN_ID``, which the run and sweep folder
    names in ``conf/hydra/default.yaml`` use instead of the time when it is set."""
    env = os.environ if environ is None else environ
    run_id = shared_run_id(env)
    if run_id is not None:
        env[RUN_ID_VARIABLE] = run_id
    return run_id
