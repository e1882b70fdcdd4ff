"""``python -m histvq.benchmark profile``: where a training step's time goes.

Runs a few warm-up steps, then profiles ``--steps`` training steps with the torch profiler
and prints, per step: the time of each part of the step (the ``histvq/*`` ranges the
model marks: encode, codebook step, quantize and decode, losses, backward, optimizer; on
the host and, on a GPU, on the device), the operations that wait for the device (``.item()``,
``nonzero``, ... : host synchronisations), and the ten most expensive kernels or operators.
Same data options as ``train`` (default: the 37-file HuGaDB subset; ``--every 1`` for all
364 recordings).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

from histvq.benchmark.training import (
    _data_overrides,
    _device,
    add_data_arguments,
    add_single_model_argument,
    single_model,
)

NAME = "profile"
HELP = "per-part time of a training step (torch profiler), host synchronisations, top kernels"

# Operators that copy a device value to the host, so the host waits for the device.
SYNCHRONISING = (
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::item",
    "cudaStreamSynchronize",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_single_model_argument(parser)
    parser.add_argument(
        "--precision", "--precisions", dest="precision", default="32-true",
        choices=("32-true", "bf16-mixed"), help="training precision",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=10, help="profiled training steps")
    parser.add_argument("--warmup", type=int, default=3, help="unprofiled steps first")
    parser.add_argument("--trace", default=None, help="also write a Chrome trace here")


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from histvq.benchmark.worker import endless_batches, setup_run

    model_name = single_model(args)
    device = _device(args.device)
    overrides, setting = _data_overrides(args)
    precision = args.precision
    spec = {
        "overrides": [*overrides, f"model={model_name}", *args.override],
        "device": device,
        "precision": precision,
    }
    datamodule, model, optimizer, torch_device, autocast = setup_run(spec)

    stream = endless_batches(datamodule, torch_device)

    def step() -> None:
        with autocast:
            model.optimization_step(next(stream), optimizer, lambda lo, last: lo.backward())

    for _ in range(args.warmup):
        step()
    activities = [ProfilerActivity.CPU]
    if torch_device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    with profile(activities=activities) as profiler:
        for _ in range(args.steps):
            step()
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
    if args.trace:
        profiler.export_chrome_trace(args.trace)
    print(f"profile: {model_name} {precision} on {device}, {setting}, {args.steps} steps")
    print(format_profile(profiler.key_averages(), args.steps, torch_device.type == "cuda"))
    return 0


def format_profile(averages: Any, steps: int, cuda: bool) -> str:
    """Per-step milliseconds of the histvq/* ranges, synchronising ops and top operators."""
    regions: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    syncs: dict[str, int] = {}
    operators = []
    for event in averages:
        device_us = getattr(event, "device_time_total", 0.0) if cuda else 0.0
        if event.key.startswith("histvq/"):
            entry = regions[event.key.removeprefix("histvq/")]
            entry[0] += event.cpu_time_total / 1e3 / steps
            entry[1] += device_us / 1e3 / steps
            entry[2] += event.count / steps
        elif event.key in SYNCHRONISING:
            syncs[event.key] = event.count
        else:
            self_us = (
                getattr(event, "self_device_time_total", 0.0) if cuda else event.self_cpu_time_total
            )
            operators.append((self_us / 1e3 / steps, event.key, event.count / steps))
    lines = [
        "part of the step      host ms/step" + ("  device ms/step" if cuda else "") + "  calls"
    ]
    for name, (host, dev, calls) in sorted(regions.items(), key=lambda kv: -kv[1][0]):
        lines.append(
            f"{name:<20} {host:>13.2f}" + (f" {dev:>15.2f}" if cuda else "") + f" {calls:>6.1f}"
        )
    lines.append("host synchronisations per step: " + (
        ", ".join(f"{k} {v / steps:.1f}" for k, v in sorted(syncs.items())) or "none"
    ))  # fmt: skip
    lines.append(f"top operators by self {'device' if cuda else 'CPU'} time (ms/step, calls):")
    for ms, key, calls in sorted(operators, reverse=True)[:10]:
        lines.append(f"  {ms:8.2f}  {calls:6.1f}  {key}")
    return "\n".join(lines)
