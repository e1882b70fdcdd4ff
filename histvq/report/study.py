"""Optimisation sweeps (``hydra/sweeper=optuna``) in a report: their best parameters and value.

An Optuna sweep folder holds ``optimization_results.yaml`` beside one run folder per trial.
The report reads that file rather than Optuna's storage, so it needs neither Optuna nor a
database, and names the trial that ran the best parameters so its folder can be found.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from histvq.report.runs import MISSING, Run, canonical, walk_folders

STUDY_FILE = "optimization_results.yaml"


@dataclass
class Study:
    """An optimisation sweep (``hydra/sweeper=optuna``): the sweep folder holds
    ``optimization_results.yaml`` with the best parameters and value (or, for several
    objectives, the Pareto front) beside one run folder per trial."""

    path: Path
    trials: list[Run]
    best_params: dict[str, str] = field(default_factory=dict)
    best_value: float | None = None
    solutions: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    direction: str | None = None
    objective: str | None = None
    problem: str | None = None

    @property
    def best_run(self) -> Run | None:
        """The trial whose overrides are the best parameters (the first one, on repeats)."""
        if not self.best_params:
            return None
        for run in self.trials:
            if all(run.value(k) == canonical(v) for k, v in self.best_params.items()):
                return run
        return None

    def text(self) -> str:
        if self.problem:
            return f"Study {self.path}: {self.problem}"
        name = self.name or self.path.name
        what = f"{self.direction or 'optimise'} {self.objective or 'the objective'}"
        head = f"Study {name} ({self.path}): {len(self.trials)} trials, {what}"
        if self.solutions:
            lines = [f"{head}; Pareto front of {len(self.solutions)}:"]
            for solution in self.solutions:
                values = ", ".join(f"{float(v):.2f}" for v in solution.get("values") or [])
                lines.append(f"  [{values}] {_params_text(solution.get('params') or {})}")
            return "\n".join(lines)
        value = MISSING if self.best_value is None else f"{self.best_value:.2f}"
        best = self.best_run
        where = f" (trial {best.path.name})" if best is not None else ""
        return f"{head}\n  best {value}{where}: {_params_text(self.best_params)}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={canonical(v)}" for k, v in params.items())


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _sweeper_settings(runs: Sequence[Run]) -> tuple[str | None, str | None]:
    """(study name, direction) from a trial's ``.hydra/hydra.yaml``."""
    for run in runs:
        try:
            data = yaml.safe_load((run.path / ".hydra" / "hydra.yaml").read_text("utf-8"))
            sweeper = data["hydra"]["sweeper"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        direction = sweeper.get("direction")
        if isinstance(direction, list):
            direction = ", ".join(map(str, direction))
        name = sweeper.get("study_name")
        return _text_or_none(name), _text_or_none(direction)
    return None, None


def load_study(path: Path, runs: Sequence[Run]) -> Study:
    """The study of the sweep folder ``path``; ``runs``: all runs found by the report (its
    trials are those under ``path``)."""
    trials = [r for r in runs if path in r.path.parents]
    study = Study(path=path, trials=trials)
    try:
        data = yaml.safe_load((path / STUDY_FILE).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        study.best_params = {str(k): str(v) for k, v in (data.get("best_params") or {}).items()}
        if data.get("best_value") is not None:
            study.best_value = float(data["best_value"])
        study.solutions = list(data.get("solutions") or [])
    except (OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as error:
        study.problem = f"{STUDY_FILE} unreadable ({error})".replace("\n", " ")
        return study
    study.name, study.direction = _sweeper_settings(trials)
    objectives = {r.value("objective") for r in trials} - {None}
    if len(objectives) == 1:
        study.objective = objectives.pop()
    return study


def find_studies(root: str | os.PathLike[str], runs: Sequence[Run]) -> list[Study]:
    """Every optimisation sweep under ``root`` (``root`` itself included), sorted by path."""
    found = [load_study(here, runs) for here, files in walk_folders(root) if STUDY_FILE in files]
    return sorted(found, key=lambda study: study.path)
