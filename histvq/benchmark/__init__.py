"""Benchmarks, run as ``python -m histvq.benchmark <subcommand>``.

Each subcommand is a module of this package listed in :data:`SUBCOMMAND_MODULES` that
defines ``NAME`` (the subcommand), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Adding a benchmark means adding its module and its name here; a
listed module that does not exist yet is skipped.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

SUBCOMMAND_MODULES = ("metrics", "training", "profile", "diagnose")


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


def subcommands() -> dict[str, Subcommand]:
    """The available subcommands by name, in :data:`SUBCOMMAND_MODULES` order."""
    found = {}
    for module_name in SUBCOMMAND_MODULES:
        qualified = f"{__name__}.{module_name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as error:
            if error.name == qualified:
                continue
            raise
        found[module.NAME] = Subcommand(module.NAME, module.HELP, module.add_arguments, module.run)
    return found
