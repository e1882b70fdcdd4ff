"""One benchmark run in its own process: train and predict, report speed and memory.

Started by :mod:`histvq.benchmark.training` as ``python -m histvq.benchmark train --worker
<spec json>``, so every run's peak memory is its own and runs can go in parallel.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def setup_run(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """(datamodule, model in training mode, optimizer, device, autocast context) for a
    spec's overrides, device and precision."""
    import torch
    from hydra import compose, initialize_config_dir

    from histvq.models import build_model
    from histvq.models.quantizers import distances
    from histvq.pipeline import build_datamodule
    from histvq.runtime import keep_cpu_memory_in_process

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["paths.output_dir=.", *spec["overrides"]])
    if spec.get("broadcast"):
        distances.patch_distances = distances.direct_patch_distances  # the naive formula
    device = torch.device(spec.get("device", "cpu"))
    if device.type == "cpu" and cfg.get("keep_cpu_memory", True):
        keep_cpu_memory_in_process()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg)
    datamodule.device_override = device
    model = build_model(cfg.model, datamodule.spec, device.type).to(device).train()
    optimizer = model.optimizer_factory(model.parameters())
    return datamodule, model, optimizer, device, _autocast(spec.get("precision", "32-true"), device)


def training_batches(datamodule: Any, device: Any, epoch: int) -> Any:
    """The epoch's training batches, built and moved as the trainer would."""
    import torch

    loader = datamodule.train_dataloader()
    loader.batch_sampler.set_epoch(epoch)
    for batch in loader:
        batch = datamodule.on_before_batch_transfer(batch, 0)
        yield {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def endless_batches(datamodule: Any, device: Any) -> Any:
    """Training batches epoch after epoch, for as long as they are asked for."""
    epoch = 0
    while True:
        yield from training_batches(datamodule, device, epoch)
        epoch += 1


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train ``spec['epochs']`` epochs with the model's own training step, then predict
    every sequence; returns frames per second (padding excluded), peak memory, timings."""
    import torch

    datamodule, model, optimizer, device, autocast = setup_run(spec)
    rss_before = peak_rss_gb()

    frames = padded = steps = 0
    loss = float("nan")
    _sync(device)
    started = time.time()
    start = time.perf_counter()
    for epoch in range(spec["epochs"]):
        for number, batch in enumerate(training_batches(datamodule, device, epoch)):
            if spec["max_batches"] is not None and number >= spec["max_batches"]:
                break
            with autocast:
                step = model.optimization_step(batch, optimizer, lambda lo, last: lo.backward())
            frames += sum(batch["length_list"])
            padded += int(batch["mask"].numel())
            steps += 1
    _sync(device)
    train_seconds = time.perf_counter() - start
    loss = float(step.logged["loss"]) if steps else loss

    model.eval()
    infer_frames = 0
    start = time.perf_counter()
    with torch.no_grad(), autocast:
        for batch in datamodule.eval_dataloader():
            model.segment(batch["features"].to(device), batch["mask"].to(device))
            infer_frames += int(batch["lengths"].sum())
    _sync(device)
    infer_seconds = time.perf_counter() - start
    out = {
        "train_fps": frames / train_seconds,
        "train_seconds": train_seconds,
        "train_started": started,
        "train_ended": started + train_seconds,
        "train_frames": frames,
        "steps": steps,
        "padding": padded / max(frames, 1),
        "infer_fps": infer_frames / infer_seconds,
        "peak_rss_gb": peak_rss_gb(),
        "rss_before_training_gb": rss_before,
        "final_loss": loss,
        "device": str(device),
        "precision": spec.get("precision", "32-true"),
        "distance_check": distance_check(model, datamodule, device),
    }
    if device.type == "cuda":
        out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        out["gpu"] = torch.cuda.get_device_name()
    return out


def _autocast(precision: str, device: Any) -> Any:
    import contextlib

    import torch

    if precision == "bf16-mixed":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "32-true":
        from histvq.errors import ConfigError

        raise ConfigError(f"--precisions: unknown value {precision!r} (32-true | bf16-mixed)")
    return contextlib.nullcontext()


def distance_check(model: Any, datamodule: Any, device: Any) -> dict[str, float]:
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


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
