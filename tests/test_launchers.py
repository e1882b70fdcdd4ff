"""Experiments beyond one process: Hydra launchers (joblib, submitit), the Optuna sweeper,
multi-node DDP started from outside (torchrun-style environment), missing-plugin messages."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, compose_config, run_script
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from histvq.cluster import missing_plugin_message, selected_plugins, shared_run_id
from histvq.errors import ConfigError
from histvq.metrics import METRIC_KEYS
from histvq.pipeline import objective_value, parse_objective
from histvq.report import collect_runs, find_studies, report, summarize

# TINY with one epoch and no plots: launcher tests are about processes, not models.
QUICK = (
    *(o for o in TINY if not o.startswith(("trainer.max_epochs", "callbacks."))),
    "trainer.max_epochs=1",
    "callbacks.segmentation_evaluation.plots=false",
)
PLUGIN_MODULES = (
    "hydra_plugins.hydra_joblib_launcher",
    "hydra_plugins.hydra_submitit_launcher",
    "hydra_plugins.hydra_optuna_sweeper",
)
needs_plugins = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in PLUGIN_MODULES),
    reason='Hydra plugins not installed (pip install -e ".[cluster]")',
)


def hydra_config(overrides: list[str]):
    """The composed config including its ``hydra`` node."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


# ----------------------------------------------------------------------------- objective


def test_objective_value_picks_the_named_metric() -> None:
    metrics = {
        "global": dict(zip(METRIC_KEYS, [81.5, 70.25, 60.0, 50.0, 40.0, 12.5], strict=True)),
        "local": dict(zip(METRIC_KEYS, [90.0, 85.0, 1.0, 2.0, 3.0, 4.0], strict=True)),
        "num_sequences": 3,
        "num_frames": 100,
    }
    assert objective_value(metrics, "global/mof") == 81.5
    assert objective_value(metrics, "global/edit") == 70.25
    assert objective_value(metrics, "local/f1@50") == 3.0
    assert objective_value(metrics, "Global/JSD") == 12.5
    assert parse_objective("local/f1@10") == ("local", "f1@10")
    for bad in ("mof", "global/accuracy", "best/mof", "global/", "num_frames"):
        with pytest.raises(ConfigError, match=r"objective: unknown value .*global/mof"):
            objective_value(metrics, bad)
    with pytest.raises(ConfigError, match="no number local/mof"):
        objective_value({"global": metrics["global"]}, "local/mof")


def test_train_main_returns_the_objective(tiny_train_config, tmp_path: Path) -> None:
    """What the Optuna sweeper receives: train.py's main returns the objective of the run."""
    from histvq import apps

    main = apps._train.__wrapped__  # train.py's task function under @hydra.main
    cfg = tiny_train_config("run", "trainer.max_epochs=1", "objective=local/edit")
    value = main(cfg)
    metrics = metrics_of(tmp_path / "run")
    assert isinstance(value, float) and value == metrics["local"]["edit"]
    # an unknown objective stops before training, with the one-line error of the CLI
    bad = tiny_train_config("bad", "objective=global/accuracy")
    with pytest.raises(SystemExit) as stopped:
        main(bad)
    assert stopped.value.code == 2 and not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- configs


@needs_plugins
def test_our_launcher_configs_take_effect() -> None:
    joblib = hydra_config(["hydra/launcher=joblib"]).hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher")
    assert joblib.n_jobs == 2  # ours; the plugin's own default is -1
    slurm = hydra_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]).hydra.launcher
    assert slurm._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (slurm.partition, slurm.gpus_per_node, slurm.tasks_per_node) == ("gpu", 1, 1)
    assert (slurm.timeout_min, slurm.array_parallelism) == (240, 32)
    assert slurm.qos is None  # the plugin's keys are still there
    local = hydra_config(["hydra/launcher=local"]).hydra.launcher
    assert local._target_.endswith("submitit_launcher.LocalLauncher")
    assert local.gpus_per_node == 0


@needs_plugins
def test_search_file_selects_optuna_with_an_objective() -> None:
    cfg = hydra_config(["+sweeps=search_hugadb"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == 0
    assert set(sweeper.params) == {"model.lambda_temp", "model.lambda_spat", "model.alpha"}
    assert cfg.objective == "global/mof" and cfg.dataset.name == "hugadb"
    parse_objective(cfg.objective)


def test_multinode_trainer_config() -> None:
    cfg = compose_config("train", ["trainer=ddp_multinode"])
    assert (cfg.trainer.num_nodes, cfg.trainer.accelerator) == (2, "gpu")
    assert cfg.trainer.strategy._target_ == "lightning.pytorch.strategies.DDPStrategy"
    assert "start_method" not in cfg.trainer.strategy  # processes come from srun / torchrun


def test_shared_run_folder_names() -> None:
    slurm = {"SLURM_JOB_ID": "812", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "8"}
    assert shared_run_id(slurm) == "slurm-812.0"
    assert shared_run_id({**slurm, "SLURM_STEP_NUM_TASKS": "1"}) is None  # one process
    assert shared_run_id({"SLURM_JOB_ID": "812", "SLURM_NTASKS": "8"}) is None  # no srun step
    torchrun = {"TORCHELASTIC_RUN_ID": "exp7", "WORLD_SIZE": "4"}
    assert shared_run_id(torchrun) == "torchrun-exp7"
    assert shared_run_id({**torchrun, "TORCHELASTIC_RUN_ID": "none"}) is None
    assert shared_run_id({**slurm, "HISTVQ_RUN_ID": "mine"}) == "mine"
    assert shared_run_id({}) is None
    cfg = hydra_config(["paths.log_dir=/x"])
    assert cfg.hydra.run.dir.startswith("/x/runs/train/")
    os.environ["HISTVQ_RUN_ID"] = "slurm-812.0"
    try:
        cfg = hydra_config(["paths.log_dir=/x"])
        assert cfg.hydra.run.dir == "/x/runs/train/slurm-812.0"
        assert cfg.hydra.sweep.dir == "/x/multirun/train/slurm-812.0"
    finally:
        del os.environ["HISTVQ_RUN_ID"]


# ----------------------------------------------------------------------------- missing plugins


def test_missing_plugin_message_names_package_and_extra() -> None:
    everything = {
        *PLUGIN_MODULES,
        "joblib",
        "submitit",
        "optuna",
    }
    cases = {
        ("hydra/launcher=joblib",): "hydra-joblib-launcher",
        ("-m", "hydra/launcher=slurm", "seed=0,1"): "hydra-submitit-launcher",
        ("hydra/launcher=submitit_local",): "hydra-submitit-launcher",
        ("hydra/sweeper=optuna",): "hydra-optuna-sweeper",
        ("-m", "+sweeps=search_hugadb"): "hydra-optuna-sweeper",  # selected by the file
    }
    for argv, package in cases.items():
        plugin = next(p for p in PLUGIN_MODULES if package.replace("-", "_") in p)
        message = missing_plugin_message(argv, ROOT, available=everything - {plugin})
        assert message is not None and package in message, argv
        assert '".[cluster]"' in message and "\n" not in message
        assert missing_plugin_message(argv, ROOT, available=everything) is None
        library = {"joblib", "submitit", "optuna"} & set(package.split("-"))
        message = missing_plugin_message(argv, ROOT, available=everything - library)
        assert message is not None and package in message, argv  # plugin without its library
    for argv in (["-m", "seed=0,1", "+sweeps=table5_alpha"], ["hydra/launcher=basic"], []):
        assert not selected_plugins(argv, ROOT)
        assert missing_plugin_message(argv, ROOT, available=set()) is None


BLOCKED_RUN = """
import runpy, sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[:2] == {blocked!r}.split("."):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None
sys.meta_path.insert(0, Missing())
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.mark.parametrize(
    ("blocked", "args", "package"),
    [
        ("hydra_plugins.hydra_joblib_launcher", ["hydra/launcher=joblib"], "hydra-joblib-launcher"),
        ("hydra_plugins.hydra_optuna_sweeper", ["+sweeps=search_hugadb"], "hydra-optuna-sweeper"),
    ],
)
def test_cli_missing_plugin_is_one_line(
    tmp_path: Path, blocked: str, args: list[str], package: str
) -> None:
    """The plugin made unimportable: train.py stops before Hydra composes anything."""
    result = run_script(
        ["-c", BLOCKED_RUN.format(blocked=blocked), "-m", *args, f"paths.log_dir={tmp_path}/out"]
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert package in lines[0] and 'pip install -e ".[cluster]"' in lines[0]
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- launchers


# Job logs that name the process writing them.
PID_LOG_FORMAT = "hydra.job_logging.formatters.simple.format='pid=%(process)d %(message)s'"


def _log_pids(run: Path) -> set[str]:
    lines = (run / "train.log").read_text().splitlines()
    return {line.split()[0] for line in lines if line.startswith("pid=")}


@needs_plugins
def test_joblib_launcher_runs_a_2x2_sweep_in_parallel(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_script(
        ["train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}", *QUICK,
         "model.levels=1,2", "seed=0,1", PID_LOG_FORMAT],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validated against ConfigStore schema" not in result.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0", "1", "2", "3"]
    for job in jobs:
        assert set(metrics_of(sweep / job)) >= {"global", "local", "num_sequences"}
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    # the jobs ran in joblib's two worker processes (one process for all under the basic
    # launcher)
    pids = [_log_pids(sweep / job) for job in jobs]
    assert all(len(p) == 1 for p in pids) and len(set.union(*pids)) == 2
    assert "Joblib.Parallel(n_jobs=2" in result.stdout
    summary = summarize(collect_runs(sweep), aggregate=False)
    assert [tuple(r.values.values()) for r in summary.rows] == [
        ("1", "0"), ("1", "1"), ("2", "0"), ("2", "1"),
    ]  # fmt: skip


@needs_plugins
def test_submitit_local_launcher_runs_two_jobs(tmp_path: Path) -> None:
    """hydra/launcher=local: submitit's local executor, one subprocess per job."""
    sweep = tmp_path / "sweep"
    result = run_script(
        ["train.py", "-m", "hydra/launcher=local", f"hydra.sweep.dir={sweep}",
         f"paths.data_dir={tmp_path / 'data'}", *QUICK, "seed=0,1"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [".submitit", "0", "1"]
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
    runs = collect_runs(sweep)
    assert [r.path.name for r in runs] == ["0", "1"] and all(r.metrics for r in runs)
    assert [r.value("seed") for r in runs] == ["0", "1"]


@needs_plugins
def test_optuna_sweeper_runs_three_trials_on_the_returned_objective(tmp_path: Path) -> None:
    """+sweeps=search_hugadb on the tiny synthetic data: 3 trials, one folder each; the study's
    best value is the best returned objective (global MoF), and the report shows it."""
    sweep = tmp_path / "sweep"
    result = run_script(
        ["train.py", "-m", "+sweeps=search_hugadb", "dataset=synthetic",
         "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}",
         f"paths.data_dir={tmp_path / 'data'}", *QUICK, "objective=global/edit"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trials = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in trials] == ["0", "1", "2"]
    edits = [metrics_of(p)["global"]["edit"] for p in trials]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(edits))
    assert set(results["best_params"]) == {"model.lambda_temp", "model.lambda_spat", "model.alpha"}
    [study] = find_studies(sweep, collect_runs(sweep))
    assert (study.name, study.direction, study.objective) == (
        "search_hugadb",
        "maximize",
        "global/edit",
    )
    assert len(study.trials) == 3 and study.best_run is not None
    assert study.best_run.metrics["global"]["edit"] == pytest.approx(results["best_value"])
    text, _ = report(sweep)
    assert text.count("\n| ") == 4  # header rule and three trials
    assert f"best {max(edits):.2f}" in text and "3 trials, maximize global/edit" in text


def _fake_trial(folder: Path, overrides: list[str], mof: float) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text("task_name: train\nobjective: global/mof\n")
    sweeper = {"study_name": "s", "direction": "maximize"}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": sweeper}}))
    block = dict.fromkeys(METRIC_KEYS, 10.0) | {"mof": mof}
    (folder / "metrics.json").write_text(json.dumps({"global": block, "local": block}))


def test_report_shows_each_study_with_its_best_trial(tmp_path: Path) -> None:
    one, two = tmp_path / "a", tmp_path / "b"
    _fake_trial(one / "0", ["model.alpha=1", "model.lambda_temp=0.5"], 40.0)
    _fake_trial(one / "1", ["model.alpha=3", "model.lambda_temp=0.05"], 60.0)
    (one / "optimization_results.yaml").write_text(
        "name: optuna\nbest_params:\n  model.alpha: 3\n  model.lambda_temp: 0.05\n"
        "best_value: 60.0\n"
    )
    _fake_trial(two / "0", ["model.alpha=2"], 50.0)
    (two / "optimization_results.yaml").write_text(": not yaml [")
    studies = find_studies(tmp_path, collect_runs(tmp_path))
    assert [s.path for s in studies] == [one, two]
    first = studies[0]
    assert (first.best_value, first.best_run.path, len(first.trials)) == (60.0, one / "1", 2)
    assert first.text().splitlines() == [
        f"Study s ({one}): 2 trials, maximize global/mof",
        "  best 60.00 (trial 1): model.alpha=3, model.lambda_temp=0.05",
    ]
    assert "optimization_results.yaml unreadable" in studies[1].text()
    text, notes = report(tmp_path)
    assert text.count("\n| ") == 4 and first.text() in text and notes == []
    table, notes = report(tmp_path, as_csv=True)
    assert "Study" not in table and first.text() in notes


# ----------------------------------------------------------------------------- multi-node DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_nodes(tmp_path: Path, run_id: str | None) -> list[subprocess.CompletedProcess]:
    """Two single-process "nodes" with the environment torchrun gives its workers."""
    port = _free_port()
    processes = []
    for rank in range(2):
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": "0",
            "LOCAL_WORLD_SIZE": "1",
            "GROUP_RANK": str(rank),
            "NODE_RANK": str(rank),
        }
        if run_id is not None:
            env["TORCHELASTIC_RUN_ID"] = run_id
        command = [
            sys.executable, "train.py", "trainer=ddp_multinode", "trainer.accelerator=cpu",
            "trainer.num_nodes=2", "trainer.devices=1", "trainer.strategy.process_group_backend=gloo",
            f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={tmp_path / 'logs'}", *QUICK,
        ]  # fmt: skip
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, text=True, **pipes))
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.mark.ddp
def test_two_nodes_train_and_evaluate_once_from_global_rank_0(tmp_path: Path) -> None:
    """num_nodes=2 x 1 process, started like torchrun would (gloo, CPU): both ranks share the
    run folder named after the rendezvous id, the data is prepared once, and global rank 0
    alone evaluates, prints and writes metrics.json."""
    rank0, rank1 = _start_nodes(tmp_path, run_id="exp1")
    assert rank0.returncode == 0, rank0.stderr[-3000:]
    assert rank1.returncode == 0, rank1.stderr[-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in rank0.stderr + rank0.stdout
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in rank1.stderr + rank1.stdout
    runs = tmp_path / "logs" / "runs" / "train"
    assert [p.name for p in runs.iterdir()] == ["torchrun-exp1"]
    written = list((tmp_path / "logs").rglob("metrics.json"))
    assert written == [runs / "torchrun-exp1" / "metrics.json"]
    metrics = metrics_of(runs / "torchrun-exp1")
    assert metrics["num_sequences"] == 4  # both ranks' shards, gathered
    assert "run folder:" in rank0.stdout and "matching" in rank0.stdout
    assert "run folder:" not in rank1.stdout and "matching" not in rank1.stdout
    assert (runs / "torchrun-exp1" / "checkpoints" / "last.ckpt").is_file()
    assert (runs / "torchrun-exp1" / "csv" / "hparams.yaml").read_text().startswith("task_name:")


@pytest.mark.ddp
def test_ranks_with_different_run_folders_stop_with_one_line(tmp_path: Path) -> None:
    """Without a shared run id each process would name its folder by its own clock: every rank
    stops before training with the same one-line error, and no metrics are written."""
    results = _start_nodes(tmp_path, run_id=None)
    for result in results:
        assert result.returncode == 2, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "chose different run folders" in errors[0]
        assert "hydra.run.dir" in errors[0] and "HISTVQ_RUN_ID" in errors[0]
    assert not list((tmp_path / "logs").rglob("metrics.json"))
