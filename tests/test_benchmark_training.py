"""python -m histvq.benchmark train: runs its variants and checks they agree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from conftest import run_script

from histvq.benchmark.training import _data_overrides


def test_training_benchmark_runs_variants_in_workers(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run_script(
        [
            "-m",
            "histvq.benchmark",
            "train",
            "--data-dir",
            str(tmp_path / "data"),
            "--dataset",
            "synthetic",
            "--model",
            "histvq",
            "--variants",
            "broadcast_distances,whole_batch",
            "--max-batches",
            "2",
            "--json",
            str(out),
            "--override",
            "dataset.generator.num_sequences=6",
            "--override",
            "dataset.generator.max_actions=3",
            "--override",
            "dataset.batch_size=3",
            "--override",
            "model.encoder.hidden_channels=8",
            "--override",
            "model.latent_dim=4",
            "--override",
            "model.micro_batch_joint_frames=20000",
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert list(runs) == ["broadcast_distances", "whole_batch"]
    for r in runs.values():
        assert r["steps"] == 2 and r["train_fps"] > 0 and r["infer_fps"] > 0
        assert r["peak_rss_gb"] >= r["rss_before_training_gb"] > 0
        assert r["padding"] >= 1.0 and r["workers"] == 1
    for r in runs.values():
        assert r["distance_check"]["assignment_agreement"] >= 0.999
        assert r["distance_check"]["max_relative_difference"] < 1e-4
    assert report["device"] == "cpu" and report["reference_fps"] == 700.0
    assert "vs reference" in result.stdout


def test_parallel_jobs_and_the_run_matrix(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run_script(
        [
            "-m", "histvq.benchmark", "train", "--data-dir", str(tmp_path / "data"),
            "--dataset", "synthetic", "--models", "smq,histvq", "--variants", "ours",
            "--parallel", "1,2", "--max-batches", "1", "--device", "cpu",
            "--reference-fps", "1000", "--json", str(out),
            "--override", "dataset.generator.num_sequences=4",
            "--override", "dataset.generator.max_actions=3",
            "--override", "model.encoder.hidden_channels=8",
            "--override", "model.latent_dim=4",
        ],
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    assert list(runs) == ["smq/ours/x1", "smq/ours/x2", "histvq/ours/x1", "histvq/ours/x2"]
    assert [r["workers"] for r in runs.values()] == [1, 2, 1, 2]
    pair = runs["smq/ours/x2"]
    # aggregate throughput: both jobs' frames over the span they ran in together
    assert pair["train_frames"] > 0 and pair["train_fps"] > 0 and pair["job_train_fps"] > 0
    assert "smq/ours/x2" in result.stdout


def test_profile_reports_the_parts_of_a_training_step(tmp_path: Path) -> None:
    result = run_script(
        [
            "-m", "histvq.benchmark", "profile", "--data-dir", str(tmp_path / "data"),
            "--dataset", "synthetic", "--model", "histvq", "--steps", "2", "--warmup", "1",
            "--device", "cpu", "--trace", str(tmp_path / "trace.json"),
            "--override", "dataset.generator.num_sequences=4",
            "--override", "dataset.generator.max_actions=3",
            "--override", "model.encoder.hidden_channels=8",
            "--override", "model.latent_dim=4",
        ],
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    parts = [line.split()[0] for line in result.stdout.splitlines()[2:8]]
    assert sorted(parts) == sorted(
        ["encode", "codebook_step", "quantize_decode", "losses", "backward", "optimizer"]
    )
    assert "host synchronisations per step:" in result.stdout
    assert (tmp_path / "trace.json").stat().st_size > 0


def test_diagnose_reports_terms_and_codebook_use(tmp_path: Path) -> None:
    result = run_script(
        [
            "-m", "histvq.benchmark", "diagnose", "--data-dir", str(tmp_path / "data"),
            "--dataset", "synthetic", "--model", "histvq", "--steps", "2",
            "--report-every", "1", "--device", "cpu",
            "--override", "dataset.generator.num_sequences=4",
            "--override", "dataset.generator.max_actions=3",
            "--override", "model.encoder.hidden_channels=8",
            "--override", "model.latent_dim=4",
        ],
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line for line in result.stdout.splitlines() if line.startswith("step")]
    assert [line.split()[1] for line in steps] == ["0", "1", "2"]
    for line in steps:
        for term in ("commit_l1", "commit_l2", "spatial", "temporal"):
            assert f"{term} " in line and "(grad " in line
        assert " L1 " in line and " L2 " in line and "/12 ppl" in line  # 2K = 12 codes


@pytest.mark.parametrize(
    ("subcommand", "options", "message"),
    [
        ("profile", ["--models", "smq,histvq"], "--model: one model at a time"),
        ("diagnose", ["--model", "smq,histvq"], "--model: one model at a time"),
        ("profile", ["--parallel", "2"], "unrecognized arguments: --parallel 2"),
        ("diagnose", ["--precisions", "bf16-mixed"], "unrecognized arguments: --precisions"),
        ("profile", ["--precision", "16-mixed"], "invalid choice: '16-mixed'"),
    ],
)
def test_profile_and_diagnose_refuse_options_they_would_ignore(
    tmp_path: Path, subcommand: str, options: list[str], message: str
) -> None:
    """A list of models, or a training-benchmark option (parallel jobs, several precisions),
    is an error naming the option, not silently reduced to its first item or dropped."""
    result = run_script(
        ["-m", "histvq.benchmark", subcommand, "--data-dir", str(tmp_path), "--device", "cpu",
         *options],
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_prepared_data_is_read_as_hugadb_unless_told_otherwise(tmp_path: Path) -> None:
    """``--data-dir`` with a prepared HuGaDB folder needs no ``--dataset`` (HuGaDB is the
    default, as without it); another dataset config is passed through."""

    def overrides(**given: object) -> list[str]:
        args = argparse.Namespace(data_dir=tmp_path, dataset=None, name=None, every=1)
        vars(args).update(given)
        return _data_overrides(args)[0]

    assert overrides(name="hugadb") == [
        "dataset=hugadb",
        f"paths.data_dir={tmp_path}",
        "dataset.name=hugadb",
    ]
    assert overrides(dataset="synthetic") == ["dataset=synthetic", f"paths.data_dir={tmp_path}"]
