"""Experiments beyond one process: Hydra launcher/sweeper plugins and multi-node runs.

Launching is left to the ecosystem's engines (Hydra's joblib and submitit launchers, the
Optuna sweeper, SLURM's ``srun``, ``torchrun``). This module only makes them pleasant:

- :func:`missing_plugin_message` says in one line which package to install when the command
  line selects a launcher or sweeper whose Hydra plugin is missing (Hydra itself would stop
  with a long error while composing the config, or instantiating the launcher, before any
  code of ours runs);
- :func:`shared_run_id` gives the processes of one multi-process run started by SLURM or
  torchrun a common run folder name, where each would otherwise take its own time stamp.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from histvq.runtime import RUN_ID_VARIABLE

CLUSTER_EXTRA = 'pip install -e ".[cluster]"'


@dataclass(frozen=True)
class Plugin:
    """A Hydra plugin: the module Hydra discovers, the library it drives, its PyPI name."""

    module: str
    library: str
    package: str


JOBLIB = Plugin("hydra_plugins.hydra_joblib_launcher", "joblib", "hydra-joblib-launcher")
SUBMITIT = Plugin("hydra_plugins.hydra_submitit_launcher", "submitit", "hydra-submitit-launcher")
OPTUNA = Plugin("hydra_plugins.hydra_optuna_sweeper", "optuna", "hydra-optuna-sweeper")

# Config choices of the groups hydra/launcher and hydra/sweeper (ours under conf/hydra/ and
# the plugins' own names) and the plugin each one needs.
PLUGIN_CHOICES: dict[str, dict[str, Plugin]] = {
    "hydra/launcher": {
        "joblib": JOBLIB,
        "slurm": SUBMITIT,
        "local": SUBMITIT,
        "submitit_slurm": SUBMITIT,
        "submitit_local": SUBMITIT,
    },
    "hydra/sweeper": {"optuna": OPTUNA},
}
# Config groups whose files may select a launcher or sweeper in their defaults list
# (``override /hydra/sweeper: optuna``), and the folder (under the project root) they live in.
PRESET_GROUPS: dict[str, str] = {"sweeps": "conf/sweeps", "experiment": "conf/experiment"}


def importable(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _choices(value: str) -> list[str]:
    """``a``, ``a,b`` or ``choice(a,b)`` -> the option names."""
    text = value.strip()
    if text.startswith("choice(") and text.endswith(")"):
        text = text[len("choice(") : -1]
    return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]


def _preset_selections(group: str, name: str, root: Path) -> list[tuple[str, str]]:
    """(group, choice) pairs that the defaults list of ``<group>/<name>.yaml`` overrides."""
    path = root / PRESET_GROUPS[group] / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    found = []
    defaults = data.get("defaults") if isinstance(data, dict) else None
    for entry in defaults or []:
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            key = str(key).removeprefix("override").strip().lstrip("/")
            if key in PLUGIN_CHOICES and value is not None:
                found.append((key, str(value)))
    return found


def selected_plugins(argv: Sequence[str], root: Path) -> list[tuple[str, Plugin]]:
    """The plugins that the command-line overrides ``argv`` select, as ("group=choice", plugin),
    including those selected by a preset such as ``+sweeps=<file>``."""
    selections: list[tuple[str, str]] = []
    for argument in argv:
        key, sep, value = argument.partition("=")
        if not sep:
            continue
        key = key.lstrip("+~").strip()
        for choice in _choices(value):
            if key in PLUGIN_CHOICES:
                selections.append((key, choice))
            elif key in PRESET_GROUPS:
                selections.extend(_preset_selections(key, choice, root))
    found = []
    for group, choice in selections:
        plugin = PLUGIN_CHOICES[group].get(choice)
        if plugin is not None:
            found.append((f"{group}={choice}", plugin))
    return found


def missing_plugin_message(
    argv: Sequence[str], root: Path, available: Iterable[str] | None = None
) -> str | None:
    """One line naming the package to install when ``argv`` selects a launcher or sweeper
    whose plugin (or the library behind it) is not importable; None when all are there.

    ``available``: importable module names (default: ask the import system).
    """
    known = set(available) if available is not None else None

    def present(module: str) -> bool:
        return module in known if known is not None else importable(module)

    for selection, plugin in selected_plugins(argv, root):
        if not (present(plugin.module) and present(plugin.library)):
            return (
                f"{selection} needs the Hydra plugin {plugin.package}, which is not installed: "
                f"install the cluster extra with `{CLUSTER_EXTRA}` (or `pip install "
                f"{plugin.package}`)"
            )
    return None


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
