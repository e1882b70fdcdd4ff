"""``python -m histvq.benchmark train``: training and inference speed and peak memory.

Runs the training step of :class:`~histvq.models.HiSTVQ` (micro-batches when configured,
codebook step, optimiser step) over the batches of one or more epochs, then predicts every
sequence, and reports frames per second (real frames, padding excluded), peak memory and
the padding overhead. Every run is a fresh worker process (:mod:`.worker`), so its peak
memory is its own; ``--parallel N`` starts N identical workers at once and reports their
aggregate throughput (several seeds or ablation jobs sharing one GPU).

Runs are the product of ``--models`` x ``--precisions`` x ``--variants`` x ``--parallel``:

- ``ours``: the configuration as given (on a CPU: micro-batches, activation checkpointing;
  on a GPU: whole batches, ladder padding, features resident on the device);
- ``bucketed``: length-bucketed batches instead of the reference's random ones;
- ``broadcast_distances``: patch distances through the (N, K, P, E) difference tensor;
- ``whole_batch``: no micro-batching (the whole batch through the network at once).

Each worker also checks, on its trained model and real latents, that the matmul distances
agree with the direct formula and pick the same codes (the run stops when fewer than
99.9 % of the assignments agree). Ratios are against the first run and against a reference
throughput (``--reference-fps``: by default the SMQ reference code's, measured on the same
data: 700 frames/s on a 2-core CPU, 340,000 frames/s on an H200).

Without data options it uses the setting of the SMQ reference figures: every ``--every``-th
of the 364 sorted HuGaDB v1 ``various`` recordings (default 10: 37 files, 100,052 frames on
a CPU; 1: all 364, 1,137,986 frames, the GPU setting), batch 8, patch 60, prepared from
``../shared/data/hugadb_v1.tar.xz`` into ``outputs/benchmark/`` on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from histvq.errors import ConfigError, HistvqError

NAME = "train"
HELP = "training/inference frames per second and peak memory, with in-run ratios"

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "hugadb_v1.tar.xz"
CACHE = ROOT / "outputs" / "benchmark"
VARIANTS: dict[str, list[str]] = {
    "ours": [],
    "bucketed": ["dataset.bucket_by_length=true"],
    "broadcast_distances": [],
    "whole_batch": ["model.micro_batch_joint_frames=null"],
}
MIN_ASSIGNMENT_AGREEMENT = 0.999
# The SMQ reference code's training throughput on the HuGaDB v1 various recordings (batch
# 8, patch 60): 2-core CPU (37 files) and one H200 (364 files).
REFERENCE_FPS = {"cpu": 700.0, "cuda": 340_000.0}
REFERENCE_RSS_GB = 9.0


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data comes from, where it runs and extra overrides: the options every
    benchmark subcommand shares."""
    parser.add_argument("--data-dir", type=Path, help="root of prepared datasets")
    parser.add_argument("--dataset", default=None, help="dataset config (default: hugadb)")
    parser.add_argument("--name", default=None, help="prepared folder under --data-dir")
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"),
        help="where to train (auto: cuda when available)",
    )  # fmt: skip
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="extra Hydra override (repeatable)",
    )  # fmt: skip
    parser.add_argument("--hugadb-archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--every", type=int, default=10, help="HuGaDB subset: every Nth file")


def add_single_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model`` for the subcommands that study one model (``--models`` is accepted as an
    alias, one name only)."""
    parser.add_argument("--model", "--models", dest="model", default="smq", help="model config")


def single_model(args: argparse.Namespace) -> str:
    """The one model a profile or diagnosis studies; a list is an error, not its first item."""
    models = _listed(args.model, "model")
    if len(models) > 1:
        raise ConfigError(f"--model: one model at a time, got {args.model!r}")
    return models[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--model", default=None, help="alias of --models with one model")
    parser.add_argument("--models", default="smq", help="comma-separated model configs")
    parser.add_argument(
        "--precisions", default="32-true", help="comma-separated: 32-true, bf16-mixed"
    )
    parser.add_argument(
        "--parallel", default="1", help="comma-separated numbers of simultaneous workers"
    )
    parser.add_argument(
        "--reference-fps", type=float, default=None,
        help="reference training frames/s for the ratio column (default: SMQ's on the device)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-batches", type=int, default=None, help="stop each epoch early")
    parser.add_argument(
        "--variants", default=None,
        help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all on a CPU, "
        "ours on a GPU)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def _listed(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"--{what}: give at least one value")
    return items


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    return name


def plan_runs(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    """One entry per (model, precision, variant, parallel) run, in table order."""
    models = _listed(args.model or args.models, "models")
    precisions = _listed(args.precisions, "precisions")
    default_variants = ",".join(VARIANTS) if device == "cpu" else "ours"
    variants = _listed(args.variants or default_variants, "variants")
    unknown = sorted(set(variants) - VARIANTS.keys())
    if unknown:
        raise ConfigError(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    try:
        parallel = [int(n) for n in _listed(args.parallel, "parallel")]
    except ValueError:
        raise ConfigError(f"--parallel: expected integers, got {args.parallel!r}") from None
    if any(n < 1 for n in parallel):
        raise ConfigError("--parallel: every value must be >= 1")
    runs = []
    for model in models:
        for precision in precisions:
            for variant in variants:
                for count in parallel:
                    label = "/".join(
                        part for part, shown in (
                            (model, len(models) > 1), (precision, len(precisions) > 1),
                            (variant, True), (f"x{count}", len(parallel) > 1),
                        ) if shown
                    )  # fmt: skip
                    runs.append({"label": label, "model": model, "precision": precision,
                                 "variant": variant, "parallel": count})  # fmt: skip
    return runs


def run(args: argparse.Namespace) -> int:
    if args.worker:
        from histvq.benchmark.worker import run_worker

        print(json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return 0
    device = _device(args.device)
    runs = plan_runs(args, device)
    overrides, setting = _data_overrides(args)
    reference = args.reference_fps or REFERENCE_FPS[device]
    results: dict[str, dict[str, Any]] = {}
    for entry in runs:
        spec = {
            "overrides": [
                *overrides,
                f"model={entry['model']}",
                *args.override,
                *VARIANTS[entry["variant"]],
            ],
            "broadcast": entry["variant"] == "broadcast_distances",
            "epochs": args.epochs,
            "max_batches": args.max_batches,
            "device": device,
            "precision": entry["precision"],
        }
        print(f"[benchmark] {entry['label']} ...", file=sys.stderr, flush=True)
        workers = run_workers([spec] * entry["parallel"])
        for worker in workers:
            _check_distances(entry["label"], worker)
        results[entry["label"]] = aggregate(workers)
    report = {
        "setting": setting,
        "overrides": overrides,
        "epochs": args.epochs,
        "device": device,
        "reference_fps": reference,
        "machine": _machine(),
        "runs": results,
    }
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


# ----------------------------------------------------------------------------- data


def _data_overrides(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.data_dir is not None:
        dataset = args.dataset or "hugadb"
        overrides = [f"dataset={dataset}", f"paths.data_dir={args.data_dir}"]
        if args.name:
            overrides.append(f"dataset.name={args.name}")
        return overrides, "custom"
    if args.dataset not in (None, "hugadb"):
        raise ConfigError("--dataset without --data-dir: only the default HuGaDB subset is built")
    name = f"hugadb_v1_every{args.every}"
    data_dir = prepare_hugadb_subset(args.hugadb_archive, args.every, CACHE, name)
    return ["dataset=hugadb", f"paths.data_dir={data_dir}", f"dataset.name={name}"], name


def prepare_hugadb_subset(archive: Path, every: int, cache: Path, name: str) -> Path:
    """Every ``every``-th of the sorted HuGaDB v1 ``various`` recordings, prepared once under
    ``cache/data/<name>`` (``archive``: the release's .tar.xz or an extracted folder)."""
    data_dir = cache / "data"
    if (data_dir / name / "features").is_dir():
        return data_dir
    from histvq.data.preparation import prepare_dataset

    source = archive
    if archive.is_file():
        extracted = cache / "raw"
        if not extracted.is_dir():
            print(f"[benchmark] extracting {archive} ...", file=sys.stderr, flush=True)
            with tarfile.open(archive) as tar:
                tar.extractall(extracted, filter="data")
        found = sorted(extracted.rglob("HuGaDB_v1_various_*.txt"))
        source = found[0].parent if found else extracted
    elif not archive.is_dir():
        raise ConfigError(f"--hugadb-archive: {archive} does not exist")
    files = sorted(source.glob("HuGaDB_v1_various_*.txt"))[::every]
    if not files:
        raise ConfigError(f"--hugadb-archive: no HuGaDB_v1_various_*.txt files in {source}")
    prepare_dataset("hugadb", files, data_dir, name=name, progress=False)
    return data_dir


# ----------------------------------------------------------------------------- workers


def run_workers(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run one worker process per spec, all at the same time; their results in order."""
    command = [sys.executable, "-m", "histvq.benchmark", NAME, "--worker"]
    env = {**os.environ, "PROJECT_ROOT": str(ROOT)}
    processes = [
        subprocess.Popen(
            [*command, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for spec in specs
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
            raise HistvqError(f"benchmark worker failed: {tail[0]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def aggregate(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's figures: a single worker's, or for parallel workers their total frames
    over the span from the first start to the last end (memory: the largest worker's)."""
    first = dict(workers[0])
    first["workers"] = len(workers)
    first["job_train_fps"] = first["train_fps"]
    if len(workers) > 1:
        span = max(w["train_ended"] for w in workers) - min(w["train_started"] for w in workers)
        first["train_fps"] = sum(w["train_frames"] for w in workers) / span
        first["job_train_fps"] = sum(w["train_fps"] for w in workers) / len(workers)
        for key in ("peak_rss_gb", "peak_gpu_memory_gb"):
            if key in first:
                first[key] = max(w[key] for w in workers)
    return first


def _check_distances(label: str, result: dict[str, Any]) -> None:
    agreement = result["distance_check"]["assignment_agreement"]
    if agreement < MIN_ASSIGNMENT_AGREEMENT:
        raise HistvqError(
            f"benchmark ({label}): matmul and direct patch distances pick the same code for "
            f"only {100 * agreement:.2f} % of the patches"
        )


def _machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average": os.getloadavg()[0],
    }


# ----------------------------------------------------------------------------- report


def format_report(report: dict[str, Any]) -> str:
    """The runs as a table with ratios against the first run and the reference figure."""
    runs = report["runs"]
    first = next(iter(runs.values()))
    on_gpu = report["device"] == "cuda"
    memory_key = "peak_gpu_memory_gb" if on_gpu else "peak_rss_gb"
    header = ["run", "train fr/s", "per job", "infer fr/s",
              "peak GPU GB" if on_gpu else "peak RSS GB", "padding",
              "vs first", "vs reference"]  # fmt: skip
    rows = [header]
    for name, r in runs.items():
        rows.append([
            name, f"{r['train_fps']:,.0f}", f"{r['job_train_fps']:,.0f}", f"{r['infer_fps']:,.0f}",
            f"{r[memory_key]:.2f}", f"{r['padding']:.2f}",
            f"{r['train_fps'] / first['train_fps']:.2f}x",
            f"{r['train_fps'] / report['reference_fps']:.2f}x",
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    machine = report["machine"]
    device = first.get("gpu", first["device"])
    lines = [
        f"training benchmark ({report['setting']}, {report['epochs']} epoch(s), "
        f"{first['train_frames']:,} frames in {first['steps']} steps per job, {device}, "
        f"{machine['cpus']} CPUs, load {machine['load_average']:.1f})",
        "overrides: " + " ".join(report["overrides"]),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    check = first["distance_check"]
    lines.append(
        f"matmul vs direct patch distances on {check['patches']} trained patches: max relative "
        f"difference {check['max_relative_difference']:.1e}, same code for "
        f"{100 * check['assignment_agreement']:.2f} %"
    )
    lines.append(
        f"reference: {report['reference_fps']:,.0f} training frames/s"
        + ("" if on_gpu else f"; its peak RSS {REFERENCE_RSS_GB} GB on the 37-file set")
    )
    return "\n".join(lines)
