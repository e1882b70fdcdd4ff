"""The HuGaDB reproduction recipe runs end to end on a small subset on the CPU."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, run_script
from test_report import make_run, scores

from histvq.prepare import prepare_dataset
from histvq.report.history import read_log
from histvq.reproduce import build_parser, first_seed_runs, sweep_environment

HUGADB = SHARED_DATA / "hugadb"


def _recipe(tmp_path: Path, *options: str, results: str = "results") -> list[str]:
    """The recipe's command line on the two prepared recordings under ``tmp_path``."""
    return [
        "-m", "histvq.reproduce", "--device", "cpu", "--jobs", "1", "--seeds", "0", *options,
        "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "sweep"),
        "--results", str(tmp_path / results), "--sequence", "HuGaDB_v2_various_01_00", "--",
        "model.encoder.hidden_channels=8", "eval.plots=false", "trainer.log_every_n_steps=1",
    ]  # fmt: skip


@pytest.mark.skipif(not HUGADB.is_dir(), reason="needs ../shared/data/hugadb")
def test_recipe_on_two_recordings_one_epoch(tmp_path: Path) -> None:
    raw = HUGADB / "HuGaDB_v2_various_01_00.txt"
    copy = tmp_path / "raw" / "HuGaDB_v2_various_01_01.txt"  # a second recording
    copy.parent.mkdir()
    copy.write_text(raw.read_text())
    prepare_dataset("hugadb", [raw, copy], tmp_path / "data", progress=False)
    results = tmp_path / "results"
    result = run_script(_recipe(tmp_path, "--epochs", "1"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with (results / "hugadb_table1.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Method"] for r in rows] == ["SMQ", "HiST-VQ"]
    assert all(float(r["HuGaDB MoF"]) > 0 for r in rows), rows
    assert [r["HuGaDB MoF paper"] for r in rows] == ["42.0000", "48.2000"]
    assert (results / "hugadb_table1.png").stat().st_size > 0
    with (results / "hugadb_table3_jsd.csv").open() as handle:
        assert [r["HuGaDB JSD paper"] for r in csv.DictReader(handle)] == ["87.1000", "89.0000"]
    assert (results / "hugadb_segment_lengths.png").stat().st_size > 0
    with (results / "hugadb_segments.csv").open() as handle:
        sources = [row["source"] for row in csv.DictReader(handle)]
    assert sources == ["ground truth", "SMQ", "HiST-VQ"]
    with (results / "hugadb_patch_oracle.csv").open() as handle:
        (oracle,) = list(csv.DictReader(handle))
    assert oracle["patch_size"] == "60" and 80 < float(oracle["mof"]) <= 100
    with (results / "hugadb_short_segments.csv").open() as handle:
        short = list(csv.DictReader(handle))
    assert [(row["source"], row["max_length"]) for row in short] == [
        ("ground truth", "60"), ("SMQ", "60"), ("HiST-VQ", "60"),
    ]  # fmt: skip
    assert (results / "hugadb_HuGaDB_v2_various_01_00.png").stat().st_size > 0
    with (results / "hugadb_codebook_use.csv").open() as handle:
        logged = list(csv.DictReader(handle))
    # one logged step per run (2 recordings, batch 8); SMQ has one level, HiST-VQ two
    assert [row["experiment"] for row in logged] == ["hugadb_paper", "hugadb_paper_smq"]
    assert [row["level2_used_codes"] != "" for row in logged] == [True, False]
    assert all(1 <= int(row["level1_used_codes"]) <= 20 for row in logged), logged
    assert (results / "hugadb_codebook_use.png").stat().st_size > 0
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit())
    assert jobs == ["0", "1"]
    # --resume with one more epoch: each job continues from its own checkpoint, its log kept
    resumed = run_script(_recipe(tmp_path, "--epochs", "2", "--resume"), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for job in jobs:
        run = tmp_path / "sweep" / job
        assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
        log = read_log(run / "csv" / "metrics.csv")
        trained = [(line["epoch"], line["step"]) for line in log if "epoch" in line]
        assert trained == [("0", "0"), ("1", "1")], log  # one step per epoch, both kept
    # --report-only: the tables of the runs already there (now trained 2 epochs), no training
    only = run_script(_recipe(tmp_path, "--report-only", results="again"))
    assert only.returncode == 0, only.stderr[-3000:]
    again = (tmp_path / "again" / "hugadb_table1.csv").read_text()
    assert again == (results / "hugadb_table1.csv").read_text()
    for job in jobs:
        last = tmp_path / "sweep" / job / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=False)["epoch"] == 1


def test_report_only_without_runs_and_with_resume_are_one_line_errors(tmp_path: Path) -> None:
    missing = run_script(
        ["-m", "histvq.reproduce", "--report-only", "--out", str(tmp_path / "x"),
         "--results", str(tmp_path / "results")]
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].endswith(f"{tmp_path / 'x'}: does not exist")
    assert not (tmp_path / "results").exists()
    both = run_script(["-m", "histvq.reproduce", "--report-only", "--resume"])
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


@pytest.mark.parametrize(
    ("options", "threads"),
    [(["--jobs", "2"], "4"), (["--jobs", "1"], "8"), (["--jobs", "3"], "2"),
     (["--jobs", "6", "--seeds", "0"], "4"), (["--jobs", "16"], "1")],
)  # fmt: skip
def test_cpu_jobs_share_the_cores(options: list[str], threads: str) -> None:
    """8 cores; two models x three seeds unless --seeds says otherwise."""
    args = build_parser().parse_args(["--device", "cpu", *options])
    assert sweep_environment(args, {}, cores=8)["OMP_NUM_THREADS"] == threads


def test_thread_counts_set_by_the_user_or_on_a_gpu_are_left_alone() -> None:
    cpu = build_parser().parse_args(["--device", "cpu", "--jobs", "2"])
    assert sweep_environment(cpu, {"OMP_NUM_THREADS": "3"}, cores=8)["OMP_NUM_THREADS"] == "3"
    gpu = build_parser().parse_args(["--jobs", "6"])
    assert "OMP_NUM_THREADS" not in sweep_environment(gpu, {}, cores=8)


def test_the_figures_come_from_each_models_lowest_finished_seed(tmp_path: Path) -> None:
    """An unfinished run (seed 0, no metrics yet) is passed over, not drawn."""
    make_run(tmp_path, "smq0", ["experiment=hugadb_paper_smq", "seed=0"], scores(40.0))
    make_run(tmp_path, "histvq0", ["experiment=hugadb_paper", "seed=0"], None)
    make_run(tmp_path, "histvq2", ["experiment=hugadb_paper", "seed=2"], scores(45.0))
    make_run(tmp_path, "histvq1", ["experiment=hugadb_paper", "seed=1"], scores(44.0))
    assert first_seed_runs(tmp_path) == {
        "SMQ": tmp_path / "smq0", "HiST-VQ": tmp_path / "histvq1"
    }  # fmt: skip
