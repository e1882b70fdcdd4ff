"""``python -m histvq.benchmark diagnose``: how the losses and the codebooks behave in training.

Trains ``--steps`` steps of a model on a dataset (same data options as ``train``) and prints,
every ``--report-every`` steps (and at step 0, before any update):

- per loss term, its weighted value in the batch loss and the norm of the gradient it sends
  to the encoder (one backward per term on the same forward pass), which shows whether one
  term drowns the others (raw inputs of thousands of units make the commitment term huge);
- per quantizer level, the codes in use and their perplexity over the step's patches, which
  shows whether a level collapses to a few codes.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from histvq.benchmark.training import (
    _data_overrides,
    _device,
    add_data_arguments,
    add_single_model_argument,
    single_model,
)
from histvq.models.steps import loss_shares, term_share

NAME = "diagnose"
HELP = "per-term gradient norms at the encoder and codebook use per level over training"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_single_model_argument(parser)
    parser.add_argument("--steps", type=int, default=100, help="training steps")
    parser.add_argument("--report-every", type=int, default=20, help="report every N steps")


def term_gradients(model: Any, batch: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per loss term: (weighted value as it counts in the loss, encoder gradient norm), on
    one forward pass of ``batch`` with the codebooks left as they are."""
    features, mask, lengths = batch["features"], batch["mask"], batch["lengths"]
    quantizer_mode = model.quantizer.training
    model.quantizer.eval()  # assign with the current codebooks, no update
    try:
        output = model(features, mask)
        terms = model.loss_terms(features, mask, output)
        shares = loss_shares(lengths, lengths, model.patch_size, model.spatial_loss_normalization)
        result = {}
        for number, (key, value) in enumerate(terms.items()):
            weighted = model.term_weight(key) * term_share(key, shares) * value
            model.zero_grad(set_to_none=True)
            if weighted.requires_grad:
                weighted.backward(retain_graph=number < len(terms) - 1)
            grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
            norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads))) if grads else 0.0
            result[key] = (float(weighted.detach()), norm)
        model.zero_grad(set_to_none=True)
        return result
    finally:
        model.quantizer.train(quantizer_mode)


def codebook_use(model: Any, batch: dict[str, Any]) -> list[tuple[int, int, float]]:
    """Per level: (codes used by the batch's patches, codes in the level, perplexity)."""
    with torch.no_grad():
        mode = model.training
        model.eval()
        try:
            codes = model(batch["features"], batch["mask"], decode=False).quantizer.indices
        finally:
            model.train(mode)
    use = []
    for level, size in zip(codes, model.quantizer.sizes, strict=True):
        valid = level[level >= 0]
        counts = torch.bincount(valid, minlength=size).double()
        share = counts / counts.sum().clamp_min(1.0)
        perplexity = float(torch.exp(-(share * share.clamp_min(1e-12).log()).sum()))
        use.append((int((counts > 0).sum()), size, perplexity))
    return use


def run(args: argparse.Namespace) -> int:
    from histvq.benchmark.worker import endless_batches, setup_run

    model_name = single_model(args)
    device = _device(args.device)
    overrides, setting = _data_overrides(args)
    spec = {"overrides": [*overrides, f"model={model_name}", *args.override], "device": device}
    datamodule, model, optimizer, torch_device, autocast = setup_run(spec)

    stream = endless_batches(datamodule, torch_device)
    print(f"diagnose: {model_name} on {setting} ({device}), overrides {' '.join(args.override)}")
    for step in range(args.steps + 1):
        batch = next(stream)
        if step % args.report_every == 0 or step == args.steps:
            terms = term_gradients(model, batch)
            parts = [f"{k} {v:.3g} (grad {g:.3g})" for k, (v, g) in terms.items()]
            levels = [
                f"L{i + 1} {u}/{n} ppl {p:.1f}"
                for i, (u, n, p) in enumerate(codebook_use(model, batch))
            ]
            print(f"step {step:5d}  " + "  ".join(parts) + "  |  " + "  ".join(levels), flush=True)
        if step < args.steps:
            with autocast:
                model.optimization_step(batch, optimizer, lambda lo, last: lo.backward())
    return 0
