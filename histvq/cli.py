"""Checks the entry points run on their command line before handing it to Hydra.

Hydra reports a config it cannot compose (``dataset=<unknown>``, an unknown key) with a
multi-line message and a hint about stack traces, before any code of ours runs. The entry
points call :func:`preflight` first, which composes the same config itself and turns such a
failure into one line naming the override and what is wrong (with the valid choices), and
reports a missing launcher/sweeper plugin the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from histvq.cluster import missing_plugin_message
from histvq.errors import ConfigError, exit_with_error

_MISSING = re.compile(r"Could not find '([^']+)'")
_OVERRIDE = re.compile(r"Could not override '([^']+)'")


def _plain_overrides(argv: Sequence[str]) -> list[str] | None:
    """The overrides of a single run, or None when Hydra should see the command line as is
    (a multirun, whose comma lists are sweeps, or Hydra's own flags such as --cfg)."""
    if any(arg.startswith("-") for arg in argv):
        return None
    return list(argv)


def composition_error(config_dir: Path, config_name: str, overrides: Sequence[str]) -> str | None:
    """One line saying why ``config_name`` cannot be composed with ``overrides``, or None."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            compose(config_name, overrides=list(overrides))
    except MissingConfigException as error:
        match = _MISSING.search(str(error))
        missing = match.group(1) if match else str(error).splitlines()[0]
        group, _, option = missing.rpartition("/")
        choices = ", ".join(error.options or [])
        return f"{group}={option}: no such config (choose from {choices})"
    except (HydraException, OmegaConfBaseException) as error:
        text = str(error)
        match = _OVERRIDE.search(text)
        if match:
            return (
                f"{match.group(1)}: unknown config key (to add a new key write "
                f"+{match.group(1)}=...)"
            )
        return "; ".join(line.strip() for line in text.splitlines() if line.strip())
    finally:
        GlobalHydra.instance().clear()
    return None


def preflight(argv: Sequence[str], root: Path, config_name: str) -> None:
    """Exit with one line when the command line selects a missing Hydra plugin or names a
    config Hydra cannot compose; return otherwise."""
    problem = missing_plugin_message(argv, root)
    overrides = _plain_overrides(argv)
    if problem is None and overrides is not None:
        problem = composition_error(root / "conf", config_name, overrides)
    if problem:
        exit_with_error(ConfigError(problem))
