"""``python -m histvq.benchmark train``: training and inference speed and peak memory.

Runs the training step of :class:`~histvq.models.HiSTVQ` (micro-batches, codebook update,
optimiser step) over the batches of one or more epochs, then predicts every sequence, and
reports frames per second (real frames, padding excluded), peak memory and the padding
overhead. Each variant runs in a fresh worker process so its peak memory is its own:

- ``ours``: the configuration as given (length bucketing, matmul distances, micro-batches);
- ``no_bucketing``: random batches padded to their longest sequence (the reference's);
- ``broadcast_distances``: patch distances through the (N, K, P, E) difference tensor;
- ``whole_batch``: no micro-batching (the whole batch through the network at once).

Each worker also checks, on its trained model and real latents, that the matmul distances
agree with the direct formula and pick the same codes (reported, and the run stops when
fewer than 99.9 % of the assignments agree). Final losses of the variants are not compared:
at initialisation the codes are nearly equidistant from every patch, so rounding alone
changes early assignments and the runs drift apart.

Without data options it benchmarks the setting of the SMQ reference figures: ``model=smq``
on every 10th of the 364 sorted HuGaDB v1 ``various`` recordings (37 files, 100,052
frames), batch 8, patch 60, prepared from ``../shared/data/hugadb_v1.tar.xz`` into
``outputs/benchmark/`` on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
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
    "no_bucketing": ["dataset.bucket_by_length=false"],
    "broadcast_distances": [],
    "whole_batch": ["model.micro_batch_joint_frames=null"],
}
MIN_ASSIGNMENT_AGREEMENT = 0.999
# Measured with the SMQ reference code on a 2-core CPU (design notes, section 7): training on
# the 37-file HuGaDB v1 set, batch 8, patch 60.
SMQ_REFERENCE = {"train_fps": 700.0, "peak_rss_gb": 9.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="root of prepared datasets")
    parser.add_argument("--dataset", default=None, help="dataset config (default: hugadb)")
    parser.add_argument("--name", default=None, help="prepared folder under --data-dir")
    parser.add_argument("--model", default="smq", help="model config (default: smq)")
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="extra Hydra override (repeatable)",
    )  # fmt: skip
    parser.add_argument("--hugadb-archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--every", type=int, default=10, help="HuGaDB subset: every Nth file")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-batches", type=int, default=None, help="stop each epoch early")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS),
        help=f"comma-separated subset of {', '.join(VARIANTS)}",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - VARIANTS.keys())
    if unknown or not variants:
        raise ConfigError(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    if "ours" not in variants:
        variants.insert(0, "ours")
    overrides, setting = _data_overrides(args)
    overrides += [f"model={args.model}", *args.override]
    results: dict[str, dict[str, Any]] = {}
    for variant in variants:
        spec = {
            "overrides": overrides + VARIANTS[variant],
            "broadcast": variant == "broadcast_distances",
            "epochs": args.epochs,
            "max_batches": args.max_batches,
        }
        print(f"[benchmark] {variant} ...", file=sys.stderr, flush=True)
        results[variant] = _run_worker(spec)
        _check_distances(variant, results[variant])
    report = {
        "setting": setting,
        "overrides": overrides,
        "epochs": args.epochs,
        "machine": _machine(),
        "variants": results,
    }
    if setting == "smq_reference":
        report["smq_reference"] = SMQ_REFERENCE
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


# ----------------------------------------------------------------------------- data


def _data_overrides(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.data_dir is not None:
        dataset = args.dataset or "folder"
        overrides = [f"dataset={dataset}", f"paths.data_dir={args.data_dir}"]
        if args.name:
            overrides.append(f"dataset.name={args.name}")
        return overrides, "custom"
    if args.dataset not in (None, "hugadb"):
        raise ConfigError("--dataset without --data-dir: only the default HuGaDB subset is built")
    name = f"hugadb_v1_every{args.every}"
    data_dir = prepare_hugadb_subset(args.hugadb_archive, args.every, CACHE, name)
    setting = "smq_reference" if args.every == 10 and args.model == "smq" else "hugadb_subset"
    return ["dataset=hugadb", f"paths.data_dir={data_dir}", f"dataset.name={name}"], setting


def prepare_hugadb_subset(archive: Path, every: int, cache: Path, name: str) -> Path:
    """Every ``every``-th of the sorted HuGaDB v1 ``various`` recordings, prepared once under
    ``cache/data/<name>`` (``archive``: the release's .tar.xz or an extracted folder)."""
    data_dir = cache / "data"
    if (data_dir / name / "features").is_dir():
        return data_dir
    from histvq.prepare import prepare_dataset

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


# ----------------------------------------------------------------------------- worker


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "histvq.benchmark", NAME, "--worker", json.dumps(spec)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PROJECT_ROOT": str(ROOT)},
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise HistvqError(f"benchmark worker failed: {tail[0]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and predict in this process; returns speeds, memory and the final loss."""
    import torch
    from hydra import compose, initialize_config_dir

    from histvq.models import build_model, quantizers
    from histvq.pipeline import build_datamodule
    from histvq.runtime import keep_cpu_memory_in_process

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["paths.output_dir=.", *spec["overrides"]])
    if spec["broadcast"]:
        quantizers.patch_distances = quantizers.direct_patch_distances  # the naive formula
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and cfg.get("keep_cpu_memory", True):
        keep_cpu_memory_in_process()
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg.model, datamodule.spec).to(device).train()
    optimizer = model.optimizer_factory(model.parameters())
    rss_before = _peak_rss_gb()

    frames = padded = steps = 0
    loss = float("nan")
    start = time.perf_counter()
    for epoch in range(spec["epochs"]):
        loader = datamodule.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        for number, batch in enumerate(loader):
            if spec["max_batches"] is not None and number >= spec["max_batches"]:
                break
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            step = model.optimization_step(batch, optimizer, lambda lo, last: lo.backward())
            loss = float(step.logged["loss"])
            frames += int(batch["lengths"].sum())
            padded += int(batch["mask"].numel())
            steps += 1
    _sync(device)
    train_seconds = time.perf_counter() - start

    model.eval()
    infer_frames = 0
    start = time.perf_counter()
    with torch.no_grad():
        for batch in datamodule.eval_dataloader():
            model.segment(batch["features"].to(device), batch["mask"].to(device))
            infer_frames += int(batch["lengths"].sum())
    _sync(device)
    infer_seconds = time.perf_counter() - start
    distance_check = _distance_check(model, datamodule, device)
    out = {
        "train_fps": frames / train_seconds,
        "train_seconds": train_seconds,
        "train_frames": frames,
        "steps": steps,
        "padding": padded / max(frames, 1),
        "infer_fps": infer_frames / infer_seconds,
        "peak_rss_gb": _peak_rss_gb(),
        "rss_before_training_gb": rss_before,
        "final_loss": loss,
        "device": str(device),
        "distance_check": distance_check,
    }
    if device.type == "cuda":
        out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        out["gpu"] = torch.cuda.get_device_name()
    return out


def _distance_check(model: Any, datamodule: Any, device: Any) -> dict[str, float]:
    """Matmul vs direct (broadcast, float64) patch distances to the bottom codebook on the
    trained model's latents of the first evaluation batch."""
    import torch

    from histvq.models.patching import patchify
    from histvq.models.quantizers import direct_patch_distances, patch_distances

    batch = next(iter(datamodule.eval_dataloader()))
    with torch.no_grad():
        mask = batch["mask"].to(device)
        tokens = model.encoder(batch["features"].to(device), mask)
        patches = patchify(tokens, mask, model.patch_size)
        x = patches.values.flatten(0, 1)[patches.valid.flatten()].float()
        book = model.quantizer.codebooks[0]
        fast = patch_distances(x, book.codes, book.distance)
        exact = direct_patch_distances(x.double(), book.codes.double(), book.distance)
    relative = ((fast.double() - exact).abs() / exact.clamp_min(1e-12)).max()
    agreement = (fast.argmin(1) == exact.argmin(1)).double().mean()
    return {"max_relative_difference": float(relative), "assignment_agreement": float(agreement),
            "patches": int(x.shape[0])}  # fmt: skip


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _check_distances(variant: str, result: dict[str, Any]) -> None:
    agreement = result["distance_check"]["assignment_agreement"]
    if agreement < MIN_ASSIGNMENT_AGREEMENT:
        raise HistvqError(
            f"benchmark ({variant}): matmul and direct patch distances pick the same code for "
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
    """The results as a table with ratios against ``ours`` (and the SMQ reference)."""
    variants = report["variants"]
    ours = variants["ours"]
    header = ["variant", "train fr/s", "infer fr/s", "peak RSS GB", "padding",
              "ours' train speed x", "ours' memory x"]  # fmt: skip
    rows = [header]
    for name, r in variants.items():
        rows.append([
            name, f"{r['train_fps']:.0f}", f"{r['infer_fps']:.0f}", f"{r['peak_rss_gb']:.2f}",
            f"{r['padding']:.2f}", f"{ours['train_fps'] / r['train_fps']:.2f}",
            f"{ours['peak_rss_gb'] / r['peak_rss_gb']:.2f}",
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    machine = report["machine"]
    lines = [
        f"training benchmark ({report['setting']}, {report['epochs']} epoch(s), "
        f"{ours['train_frames']:,} frames in {ours['steps']} steps, device {ours['device']}, "
        f"{machine['cpus']} CPUs, load {machine['load_average']:.1f})",
        "overrides: " + " ".join(report["overrides"]),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    check = ours["distance_check"]
    lines.append(
        f"matmul vs direct patch distances on {check['patches']} trained patches: max relative "
        f"difference {check['max_relative_difference']:.1e}, same code for "
        f"{100 * check['assignment_agreement']:.2f} %"
    )
    reference = report.get("smq_reference")
    if reference:
        lines.append(
            f"vs the SMQ reference code on the same data (700 frames/s, 9.0 GB, 2-core CPU): "
            f"{ours['train_fps'] / reference['train_fps']:.2f}x its training speed with "
            f"{ours['peak_rss_gb'] / reference['peak_rss_gb']:.2f}x its peak RSS"
        )
    return "\n".join(lines)
