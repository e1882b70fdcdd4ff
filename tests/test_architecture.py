"""The package map as a rule: layers import only downwards, modules stay small.

Reading order, lowest layer first (README, "Development"):

0. base: errors, spec (the data-model contract), config, distributed, runtime, metric names
1. data (layout, raw sources, preparation, datasets, samplers, DataModules) and metrics
2. models
3. evaluation (segmentation, scores, outputs, plots)
4. callbacks and loggers
5. entry points: pipeline (train/evaluate), predict, report, benchmark, prepare, cli, apps
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "histvq"
MAX_LINES = 400

BASE = {"errors", "spec", "config", "distributed", "runtime", "metrics.names"}
LEVELS = {"data": 1, "metrics": 1, "models": 2, "evaluation": 3, "callbacks": 4, "loggers": 4}
ENTRY = 5


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit(name: str) -> tuple[str, int]:
    """(the unit a module belongs to, its layer)."""
    if name in BASE:
        return "base", 0
    top = name.split(".")[0]
    if top in LEVELS:
        return top, LEVELS[top]
    return "entry", ENTRY


def histvq_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (module level or in functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(n.removeprefix("histvq.") for n in names if n.startswith("histvq."))
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_layers_import_only_downwards() -> None:
    problems = []
    for path in sources():
        name = module_name(path)
        own_unit, own_level = unit(name)
        for imported in histvq_imports(path):
            other_unit, other_level = unit(imported)
            if other_unit == own_unit or other_level < own_level:
                continue
            if own_unit == "entry" and other_level <= ENTRY:
                continue
            problems.append(f"{name} ({own_unit}) imports {imported} ({other_unit})")
    assert problems == []


def test_modules_stay_small() -> None:
    too_long = {
        module_name(p): n
        for p in sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_the_report_and_the_metric_names_do_not_need_torch() -> None:
    for path in [*PACKAGE.joinpath("report").rglob("*.py"), PACKAGE / "metrics" / "names.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "torch" not in imported and "lightning" not in imported, path
