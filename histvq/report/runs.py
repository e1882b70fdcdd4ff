"""Finished runs as the report sees them: :class:`Run` and how run folders are found and read.

A run is a folder holding ``.hydra/`` (written by Hydra) and ``metrics.json`` (written by the
evaluation). Reading one never raises: unreadable parts become :attr:`Run.problem`, so one
broken folder in a sweep is a note in the report instead of the end of it. Values are
compared in :func:`canonical` spelling, so an override ``1e-3`` equals a config ``0.001``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from histvq.errors import HistvqError
from histvq.metrics.names import METRIC_KEYS

TRAINING_TASK = "train"
EVALUATION_TASK = "evaluate"
CHECKPOINT_KEY = "ckpt_path"
MISSING = "-"


def canonical(value: Any) -> str:
    """One spelling per value, so ``1e-3`` (an override) equals ``0.001`` (a config value)
    and ``2.0`` equals ``2``; anything that is not a number or a boolean is kept as text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in {"true", "false"}:
            return text.lower()
        if text in {"null", "Null", "NULL", "None", "~"}:  # "none" is a real choice (normalize)
            return "null"
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number) or "_" in text:
            return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def sort_key(value: str | None) -> tuple[int, float, str]:
    """Numbers in numeric order first, then text in lexical order, missing values last."""
    if value is None or value == MISSING:
        return (2, 0.0, "")
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _override_key(text: str) -> tuple[str, str]:
    """``+model.x=3`` -> (``model.x``, ``3``); ``~key`` -> (``key``, ``<deleted>``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if key.startswith("~"):
        return key.lstrip("~"), "<deleted>"
    return key.lstrip("+"), value if sep else ""


@dataclass
class Run:
    """One run folder: its command-line overrides, composed config and metrics.

    ``problem`` says why the run has no usable metrics (None when it has them).
    """

    path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    config: Any = None
    choices: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    problem: str | None = None
    cwd: Path | None = None

    @property
    def task(self) -> str | None:
        value = self._config_value("task_name")
        return None if value is None else str(value)

    def value(self, key: str) -> str | None:
        """The run's value of ``key`` (an override key such as ``model.alpha`` or a config
        group such as ``dataset``), canonical text; None when the run does not have it."""
        if key in self.overrides:
            return canonical(self.overrides[key])
        if key in self.choices:
            return canonical(self.choices[key])
        found = self._config_value(key)
        if found is _ABSENT:
            return None
        if isinstance(found, dict | list):
            return json.dumps(found, sort_keys=True)
        return canonical(found)

    def _config_value(self, key: str) -> Any:
        if self.config is None:
            return _ABSENT
        from omegaconf import DictConfig, ListConfig, OmegaConf

        try:
            found = OmegaConf.select(
                self.config, key, default=_ABSENT, throw_on_resolution_failure=False
            )
        except Exception:
            return _ABSENT
        if isinstance(found, DictConfig | ListConfig):
            try:
                return OmegaConf.to_container(found, resolve=True)
            except Exception:
                return OmegaConf.to_container(found, resolve=False)
        return found

    def scores(self, matching: str = "global") -> dict[str, float]:
        """``{metric: value}`` of the chosen matching; raises :class:`HistvqError` with the
        reason when metrics.json does not hold them."""
        if self.metrics is None:
            raise HistvqError(self.problem or "no metrics.json")
        block = self.metrics.get(matching)
        if not isinstance(block, dict):
            raise HistvqError(f"metrics.json has no {matching!r} block")
        out = {}
        for key in METRIC_KEYS:
            value = block.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HistvqError(f"metrics.json has no number {matching}.{key}")
            out[key] = float(value)
        return out


_ABSENT: Any = object()


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "metrics.json").is_file()


def walk_folders(root: str | os.PathLike[str]) -> Iterator[tuple[Path, list[str]]]:
    """Every folder under ``root`` (itself included) with its file names, in sorted order,
    as a report searches them: linked folders are followed (a table can be assembled from
    links to runs kept elsewhere) but each real folder is visited once, so link loops end;
    hidden folders, ``wandb`` and the inside of run folders are skipped."""
    seen: set[str] = set()
    for current, dirs, files in os.walk(Path(root).expanduser(), followlinks=True):
        here = Path(current)
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        yield here, files
        if is_run_dir(here):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "wandb")


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders under ``root`` (``root`` itself included, links followed), sorted by
    path; the inside of a run folder and hidden folders are not searched."""
    return sorted(here for here, _ in walk_folders(root) if is_run_dir(here))


def load_run(path: Path) -> Run:
    """Read one run folder; unreadable parts become ``problem`` instead of exceptions."""
    run = Run(path=path)
    hydra_dir = path / ".hydra"
    problems = []
    overrides_file = hydra_dir / "overrides.yaml"
    if overrides_file.is_file():
        try:
            items = yaml.safe_load(overrides_file.read_text(encoding="utf-8")) or []
            if not isinstance(items, list):
                raise ValueError("not a list")
            run.overrides = dict(_override_key(str(item)) for item in items)
        except (yaml.YAMLError, ValueError) as error:
            problems.append(f".hydra/overrides.yaml unreadable ({error})".replace("\n", " "))
    config_file = hydra_dir / "config.yaml"
    if config_file.is_file():
        from omegaconf import OmegaConf

        try:
            run.config = OmegaConf.load(config_file)
        except Exception as error:
            problems.append(f".hydra/config.yaml unreadable ({type(error).__name__})")
    hydra_file = hydra_dir / "hydra.yaml"
    if hydra_file.is_file():
        try:
            data = yaml.safe_load(hydra_file.read_text(encoding="utf-8")) or {}
            choices = data.get("hydra", {}).get("runtime", {}).get("choices", {}) or {}
            run.choices = {str(k): str(v) for k, v in choices.items() if v is not None}
            cwd = data["hydra"]["runtime"].get("cwd")
            run.cwd = Path(cwd) if isinstance(cwd, str) else None
        except (yaml.YAMLError, AttributeError, KeyError, TypeError):
            pass
    metrics_file = path / "metrics.json"
    if not metrics_file.is_file():
        problems.append("metrics.json missing")
    else:
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            if not isinstance(metrics, dict):
                raise ValueError("not a JSON object")
            run.metrics = metrics
        except (ValueError, UnicodeDecodeError) as error:
            problems.append(f"metrics.json unreadable ({error})".replace("\n", " "))
    if problems:
        run.problem = "; ".join(problems)
        if run.metrics is not None and "metrics.json" not in run.problem:
            run.problem = None  # config trouble only: the metrics are still usable
    return run


def evaluated_checkpoint(evaluation: Run) -> Path | None:
    """The checkpoint an ``evaluate.py`` run evaluated (a relative path counts from where
    evaluate.py ran), or None when its config names none."""
    value = evaluation.overrides.get(CHECKPOINT_KEY)
    if value is None:
        found = evaluation._config_value(CHECKPOINT_KEY)
        value = None if found is _ABSENT else found
    if not isinstance(value, str) or not value:
        return None
    checkpoint = Path(value).expanduser()
    if not checkpoint.is_absolute() and evaluation.cwd is not None:
        checkpoint = evaluation.cwd / checkpoint
    return checkpoint


def as_trained(evaluation: Run) -> Run:
    """An ``evaluate.py`` run seen as the training run of its checkpoint
    (``<run>/checkpoints/<file>``): that run's overrides, config and config-group choices,
    overlaid with the evaluation's own overrides, and the evaluation's metrics. So evaluations
    of a sweep's checkpoints on other data group and aggregate over seeds like the sweep
    itself. ``ckpt_path`` keeps only the checkpoint's file name: it becomes a column where
    evaluations of one run's different checkpoints (``last.ckpt``, an epoch's) sit side by
    side. An evaluation whose checkpoint lies outside a training run folder is kept as it is
    (its whole ``ckpt_path`` then tells the rows apart)."""
    checkpoint = evaluated_checkpoint(evaluation)
    if checkpoint is None or not (checkpoint.parent.parent / ".hydra").is_dir():
        return evaluation
    trained = load_run(checkpoint.parent.parent)
    if trained.task not in (None, TRAINING_TASK):
        return evaluation
    return Run(
        path=evaluation.path,
        overrides={**trained.overrides, **evaluation.overrides, CHECKPOINT_KEY: checkpoint.name},
        config=trained.config,
        choices={**trained.choices, **evaluation.choices},
        metrics=evaluation.metrics,
        problem=evaluation.problem,
        cwd=evaluation.cwd,
    )


def collect_runs(directory: str | os.PathLike[str]) -> list[Run]:
    """Every run under ``directory`` (a run folder, a sweep folder or any tree of them),
    sorted by path; runs without usable metrics are included with ``problem`` set.

    The training runs when the tree holds any; otherwise its ``python evaluate.py`` runs,
    each seen through the training run of its checkpoint (:func:`as_trained`), so a table
    of the same checkpoints evaluated on other data comes out as the sweep's would. Folders
    of other tasks (``python -m histvq.predict``) are left out. Raises :class:`HistvqError`
    when there is neither.
    """
    root = Path(directory).expanduser()
    if not root.exists():
        raise HistvqError(f"{root}: does not exist")
    if not root.is_dir():
        raise HistvqError(f"{root}: not a folder")
    found = [load_run(p) for p in find_run_dirs(root)]
    runs = [r for r in found if r.task in (None, TRAINING_TASK)]
    if not runs:
        runs = [as_trained(r) for r in found if r.task == EVALUATION_TASK]
    if not runs:
        raise HistvqError(
            f"{root}: no runs found (a run is a folder with .hydra/ and metrics.json, "
            f"as written by train.py or evaluate.py)"
        )
    return runs
