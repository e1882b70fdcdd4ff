"""Sweep files (dry runs), logger configs, a real multirun with offline W&B, and logs
continued by a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, TINY, compose_config, data_spec, run_script
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import OmegaConf

from histvq.data.datamodules import LayoutDataModule
from histvq.loggers import (
    WANDB_RUN_ID_FILE,
    ResumableCSVLogger,
    _hydra_context,
    wandb_logger,
)
from histvq.models import build_model
from histvq.pipeline import train_and_evaluate

# Basic-sweeper grids; files that select another sweeper (Optuna searches) are tested with
# the launchers (test_launchers.py).
SWEEPS = sorted(
    p.stem
    for p in (ROOT / "conf" / "sweeps").glob("*.yaml")
    if "/hydra/sweeper" not in p.read_text()
)
SPEC = data_spec(num_classes=3, patch_size=5, num_joints=4)


def sweep_jobs(name: str, extra: list[str] = ()) -> list[list[str]]:
    """The override lists Hydra's basic sweeper would launch for ``+sweeps=name``."""
    params = OmegaConf.load(ROOT / "conf" / "sweeps" / f"{name}.yaml").hydra.sweeper.params
    arguments = [f"{key}={value}" for key, value in params.items()] + list(extra)
    parsed = OverridesParser.create().parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [job for batch in batches for job in batch]


def test_there_is_a_sweep_per_paper_table() -> None:
    tables = {name.split("_")[0] for name in SWEEPS if name.startswith("table")}
    assert tables == {f"table{i}" for i in range(1, 11)}


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_composes_and_builds(name: str) -> None:
    jobs = sweep_jobs(name)
    assert len(jobs) >= 3
    for job in jobs:
        cfg = compose_config("train", [f"+sweeps={name}", *job])
        assert cfg.hydra.sweeper.params if "hydra" in cfg else True
        module = build_model(cfg.model, SPEC)
        assert module.quantizer.levels == cfg.model.levels
        assert isinstance(instantiate(cfg.dataset), LayoutDataModule)


def test_table4_ablations_switch_off_one_loss_each() -> None:
    weights = {}
    for job in sweep_jobs("table4_components", ["seed=0", "dataset=hugadb"]):
        cfg = compose_config("train", job)
        weights[cfg.ablation_name] = (
            cfg.model.lambda_spat,
            cfg.model.lambda_commit,
            cfg.model.lambda_temp,
        )
    assert weights == {
        "all": (0.001, 1.0, 0.2),
        "no_spatial": (0.0, 1.0, 0.2),
        "no_commitment": (0.001, 0.0, 0.2),
        "no_temporal": (0.001, 1.0, 0.0),
    }


def test_command_line_axis_replaces_the_sweep_files_axis() -> None:
    jobs = sweep_jobs("table5_alpha", ["seed=0", "dataset=hugadb"])
    assert sorted(job for job in map(sorted, jobs)) == sorted(
        sorted(["dataset=hugadb", f"model.alpha={a}", "seed=0"]) for a in (1, 2, 3)
    )


def test_wandb_logger_offline_without_credentials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    logger = wandb_logger(save_dir=str(tmp_path / "wb"), name="x")
    assert logger._offline is True
    assert _hydra_context() == (None, None)


def test_multirun_with_offline_wandb_gives_one_run_per_job(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_script(
        [
            "train.py",
            "-m",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep_dir}",
            "logger=wandb",
            "logger.wandb.offline=true",
            "model.levels=1,2",
            "seed=0,1",
            *TINY,
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / "metrics.json").is_file())
    assert [p.name for p in runs] == ["0", "1", "2", "3"]
    offline = [list((run / "wandb").glob("offline-run-*")) for run in runs]
    assert all(len(found) == 1 for found in offline)
    ids = {found[0].name.rsplit("-", 1)[-1] for found in offline}
    assert len(ids) == 4  # every job is its own W&B run
    axes = set()
    for run in runs:
        overrides = list(OmegaConf.load(run / ".hydra" / "overrides.yaml"))
        axes.add(tuple(o for o in overrides if o.startswith(("model.levels=", "seed="))))
        media = run / "wandb" / offline[runs.index(run)][0].name / "files" / "media"
        assert list(media.rglob("*.png")), "plots were not logged as images"
        assert list(media.rglob("*.table.json")), "the metrics table was not logged"
    assert axes == {(f"model.levels={lv}", f"seed={s}") for lv in (1, 2) for s in (0, 1)}
    for run in runs:
        assert set(json.loads((run / "metrics.json").read_text())) >= {"global", "local"}


def _write_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")


KEPT_LOG = ["epoch,step,train/a,train/b", "0,3,1.5,", "1,7,2.5,", "2,11,,4.0"]
NEW_LOG = ["epoch,step,train/b", "2,11,4.0"]


@pytest.mark.parametrize(("resume", "expected"), [(True, KEPT_LOG), (False, NEW_LOG)])
def test_csv_logger_continues_a_resumed_runs_log_only_when_told(
    tmp_path: Path, resume: bool, expected: list[str]
) -> None:
    log = tmp_path / "csv" / "metrics.csv"
    _write_log(log, "epoch,step,train/a\n0,3,1.5\n1,7,2.5\n")
    logger = ResumableCSVLogger(save_dir=tmp_path, name="csv", version="", resume=resume)
    logger.log_metrics({"train/b": 4.0, "epoch": 2}, step=11)
    logger.save()
    # kept: one header over the old and new columns, the old lines under their own columns
    assert log.read_text().splitlines() == expected


def test_a_run_resumed_in_place_continues_its_wandb_run(tiny_train_config, tmp_path) -> None:
    kept_id = tmp_path / "run" / "wandb" / WANDB_RUN_ID_FILE
    wandb_run = ("logger=wandb", "logger.wandb.offline=true", "eval.plots=false")

    def train(*overrides: str) -> str:
        train_and_evaluate(tiny_train_config("run", *wandb_run, *overrides))
        return kept_id.read_text().strip()

    first = train("trainer.max_epochs=1", "ckpt_path=last")  # nothing to resume: a new run
    assert train("trainer.max_epochs=2", "ckpt_path=last") == first  # resumed: the same run
    assert train("trainer.max_epochs=1") not in ("", first)  # trained again: a new run
