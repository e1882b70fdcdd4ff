"""One training step of ``model=smq`` against a slow re-implementation of SMQ's reference step.

The slow step below is written from the reference protocol's description (the README's
"Fidelity to the reference" section), with plain tensor formulas and no histvq code: a batch
padded to its longest sequence; each joint encoded by a two-stage dilated TCN; frames
concatenated into tokens and cut into patches of P frames (the end zero-padded); every valid
patch assigned to the code at the smallest sum of per-frame Euclidean distances; the EMA
update of counts and sums with the per-code Laplace smoothing; dead codes (count under 10)
re-seeded from the mean of 10 patches drawn from the half of the batch's patches closest to
the codebook (a generator seeded 42 at each re-seeding; the pool taken in order and cycled
when it is too small); only then the quantized output and the commitment target from the
updated codebook; the decoder on the straight-through output; the spatial loss as the plain
mean over the padded batch tensor of the squared differences of inter-joint distances.

One deliberate difference is applied to both sides: padded frames are zeroed right after
each TCN stage's input projection, so that a sequence's outputs never depend on the other
sequences of its batch (the reference lets that projection's bias reach the last valid
frames of shorter sequences).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config, data_spec

from histvq.models import build_model

PATCH = 2
LAMBDA_SPAT = 0.001
THRESHOLD = 10


def slow_tcn(stages, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (B, C, T), mask (B, 1, T) float; ``stages`` are histvq TCNStage modules whose
    weights are used (no dropout: p = 0 in these tests)."""
    for stage in stages:
        h = F.conv1d(x, stage.conv_in.weight, stage.conv_in.bias) * mask
        for i, layer in enumerate(stage.layers):
            dilation = 2**i
            out = F.conv1d(
                h, layer.conv_dilated.weight, layer.conv_dilated.bias,
                padding=dilation, dilation=dilation,
            )  # fmt: skip
            out = F.conv1d(F.relu(out), layer.conv_1x1.weight, layer.conv_1x1.bias)
            h = (h + out) * mask
        x = F.conv1d(h, stage.conv_out.weight, stage.conv_out.bias) * mask
    return x


def frame_distance_sums(patches: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(N, K): sum over the P frames of the Euclidean distance, by broadcasting."""
    return (patches[:, None] - codes[None]).pow(2).sum(-1).sqrt().sum(-1)


def slow_reference_step(model, features: torch.Tensor, lengths: list[int]) -> dict:
    """One SMQ training step as the reference defines it; returns its results."""
    n, c, _, v, m = features.shape
    t_max = max(lengths)
    x = features[:, :, :t_max].clone()  # the reference pads to the longest sequence only
    valid_frames = torch.zeros(n, t_max)
    for row, length in enumerate(lengths):
        valid_frames[row, :length] = 1.0
    joint_mask = valid_frames[:, None, None, :].expand(n, m * v, 1, t_max).reshape(-1, 1, t_max)

    # encoder: one sequence per (batch, person, joint)
    joints = x.permute(0, 4, 3, 1, 2).reshape(n * m * v, c, t_max)
    latent = slow_tcn(model.encoder.tcn.stages, joints, joint_mask)
    d = latent.shape[1]
    tokens = latent.reshape(n, m * v, d, t_max).permute(0, 3, 1, 2).reshape(n, t_max, -1)
    token_mask = valid_frames[:, :, None].expand_as(tokens)

    # patches
    pad = (-t_max) % PATCH
    padded = F.pad(tokens, (0, 0, 0, pad))
    padded_mask = F.pad(token_mask, (0, 0, 0, pad))
    e = tokens.shape[-1]
    patches = padded.reshape(-1, PATCH, e)
    patch_valid = padded_mask.reshape(-1, PATCH, e).sum(dim=(1, 2)) > 0
    valid_patches = patches[patch_valid]

    # assignment with the codebook as it was
    book = model.quantizer.codebooks[0]
    codes = book.codes.clone()
    counts = book.counts.clone()
    sums = book.sums.clone()
    k = codes.shape[0]
    assigned = frame_distance_sums(valid_patches.detach(), codes).argmin(dim=1)
    onehot = F.one_hot(assigned, k).float()

    # EMA update, per-code Laplace smoothing
    counts = counts + (onehot.sum(0) - counts) * 0.5
    batch_sums = torch.einsum("npe,nk->kpe", valid_patches.detach(), onehot)
    sums = sums + (batch_sums - sums) * 0.5
    eps = 1e-5
    smoothed = (counts + eps) / (counts + k * eps) * counts
    codes = sums / smoothed[:, None, None]

    # dead-code re-seeding
    dead = torch.nonzero(counts < THRESHOLD).flatten()
    branch = "none"
    if dead.numel():
        needed = dead.numel() * THRESHOLD
        closeness = -frame_distance_sums(valid_patches.detach(), codes).min(dim=1).values
        pool = torch.nonzero(closeness >= torch.quantile(closeness, 0.5)).flatten()
        if pool.numel() < needed:
            branch = "cycled"
            picked = valid_patches.detach()[pool]
            repeats = -(-needed // picked.shape[0])
            picked = picked.repeat(repeats, 1, 1)[:needed]
        else:
            branch = "permuted"
            order = torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(42))
            picked = valid_patches.detach()[pool[order[:needed]]]
        means = picked.reshape(dead.numel(), THRESHOLD, PATCH, e).mean(dim=1)
        for i, code in enumerate(dead.tolist()):
            codes[code] = means[i]
            counts[code] = THRESHOLD
            sums[code] = means[i] * THRESHOLD

    # output and commitment from the updated codebook
    quantized_valid = codes[assigned]
    quantized = torch.zeros_like(patches)
    quantized[patch_valid] = quantized_valid
    quantized = quantized.reshape(n, -1, e)[:, :t_max]
    commit = ((quantized.detach() - tokens) ** 2 * token_mask).sum() / token_mask.sum()
    straight = tokens + (quantized - tokens).detach()

    # decoder and the spatial loss over the padded batch tensor
    joint_latent = straight.reshape(n, t_max, m * v, d).permute(0, 2, 3, 1).reshape(-1, d, t_max)
    decoded = slow_tcn(model.spatial_decoder.tcn.stages, joint_latent, joint_mask)
    reconstruction = decoded.reshape(n, m, v, c, t_max).permute(0, 3, 4, 2, 1)

    def joint_distances(s: torch.Tensor) -> torch.Tensor:
        per_frame = s.permute(0, 4, 2, 3, 1)  # (N, M, T, V, C)
        return torch.cdist(per_frame, per_frame, p=2)  # zero gradient at zero distance

    spatial = (joint_distances(x) - joint_distances(reconstruction)).pow(2).mean()
    loss = LAMBDA_SPAT * spatial + commit
    loss.backward()
    return {
        "commit": commit.detach(),
        "spatial": spatial.detach(),
        "loss": loss.detach(),
        "assigned": assigned,
        "codes": codes,
        "counts": counts,
        "sums": sums,
        "branch": branch,
    }


def _smq(budget: int | None, num_classes: int):
    cfg = compose_config(
        "train",
        [
            "model=smq",
            "model.encoder.hidden_channels=8",
            "model.latent_dim=4",
            "model.encoder.dropout=0.0",
            "model.encoder.activation_checkpointing=false",
            f"model.micro_batch_joint_frames={budget or 'null'}",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model, data_spec(num_classes=num_classes, patch_size=PATCH))
    return model.train()


CASES = {
    # (lengths, num_classes, scale): few patches per code -> the pool is cycled; many -> drawn
    "small_pool": ([11, 7, 9], 3, 20.0),
    "large_pool": ([60, 47, 38, 55], 2, 1.0),
}


@pytest.mark.parametrize("budget", [None, 40])
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_smq_step_equals_the_reference_step(case: str, budget: int | None) -> None:
    lengths, num_classes, scale = CASES[case]
    padded_len = -(-max(lengths) // PATCH) * PATCH + PATCH  # as histvq's collate pads, +1 patch
    generator = torch.Generator().manual_seed(11)
    features = torch.randn(len(lengths), 3, padded_len, 5, 1, generator=generator) * scale
    mask = torch.arange(padded_len)[None, :] < torch.tensor(lengths)[:, None]
    features = features * mask[:, None, :, None, None]
    model = _smq(budget, num_classes)
    assert model.quantizer.codebooks[0].dead_threshold == THRESHOLD
    reference_model = copy.deepcopy(model)
    slow = slow_reference_step(reference_model, features, lengths)

    batch = {"features": features, "mask": mask, "lengths": torch.tensor(lengths)}
    calls: list[bool] = []

    def backward(loss: torch.Tensor, last: bool) -> None:
        calls.append(last)
        loss.backward()

    step = model.accumulate_batch(batch, backward)
    assert (len(calls) > 1) == (budget is not None)
    assert slow["branch"] == ("cycled" if case == "small_pool" else "permuted")

    torch.testing.assert_close(step.logged["commit_l1"], slow["commit"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step.logged["spatial"], slow["spatial"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step.logged["loss"], slow["loss"], rtol=1e-5, atol=1e-6)
    book = model.quantizer.codebooks[0]
    torch.testing.assert_close(book.counts, slow["counts"])
    torch.testing.assert_close(book.codes, slow["codes"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(book.sums, slow["sums"], rtol=1e-5, atol=1e-5)
    ours = [p.grad for p in model.parameters()]
    theirs = [p.grad for p in reference_model.parameters()]
    assert all(g is not None for g in ours) and len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_codes_of_the_step_equal_the_reference_assignment() -> None:
    lengths = [11, 7, 9]
    features = torch.randn(3, 3, 14, 5, 1, generator=torch.Generator().manual_seed(5)) * 20
    mask = torch.arange(14)[None, :] < torch.tensor(lengths)[:, None]
    features = features * mask[:, None, :, None, None]
    model = _smq(None, 3)
    slow = slow_reference_step(copy.deepcopy(model), features, lengths)
    output = model(features, mask)
    codes = output.quantizer.indices[0]
    assert torch.equal(codes[codes >= 0], slow["assigned"])
