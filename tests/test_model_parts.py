"""Model components: masking, patching, quantizer maths, losses, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from histvq.errors import ConfigError
from histvq.models.decoders import JointTCNDecoder, TimestampMLP
from histvq.models.encoders import JointTCNEncoder
from histvq.models.joints import (
    fold_joints,
    joint_batch_to_tokens,
    tokens_to_joint_batch,
    unfold_to_skeleton,
)
from histvq.models.losses import inter_joint_distance_mse, timestamp_mse
from histvq.models.patching import expand_patch_codes, patch_timestamps, patchify, unpatchify
from histvq.models.quantizers import (
    EMACodebook,
    HierarchicalQuantizer,
    codebook_sizes,
    direct_patch_distances,
    patch_distances,
)


def test_joint_folding_round_trips() -> None:
    x = torch.randn(2, 3, 7, 5, 2)
    folded = fold_joints(x)
    assert folded.shape == (2 * 2 * 5, 3, 7)
    assert torch.equal(unfold_to_skeleton(folded, 5, 2), x)
    # joint (v=3, m=1) of sample 1 is row n*M*V + m*V + v
    assert torch.equal(folded[1 * 10 + 1 * 5 + 3], x[1, :, :, 3, 1])
    tokens = joint_batch_to_tokens(torch.randn(20, 4, 7), 5, 2)
    assert tokens.shape == (2, 7, 40)
    assert torch.equal(joint_batch_to_tokens(tokens_to_joint_batch(tokens, 5, 2), 5, 2), tokens)


def test_encoder_padding_never_changes_valid_outputs() -> None:
    torch.manual_seed(0)
    encoder = JointTCNEncoder(in_channels=3, latent_dim=8, hidden_channels=16).eval()
    seq = torch.randn(1, 3, 23, 4, 1)
    alone = encoder(seq, torch.ones(1, 23, dtype=torch.bool))
    batch = torch.randn(2, 3, 40, 4, 1) * 100  # garbage in the padding
    batch[0, :, :23] = seq[0]
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0, :23] = True
    mask[1] = True
    padded = encoder(batch, mask)
    assert padded.shape == (2, 40, 4 * 8)
    torch.testing.assert_close(padded[0, :23], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.all(padded[0, 23:] == 0)


def test_patchify_round_trip_and_masks() -> None:
    tokens = torch.randn(2, 10, 3)
    mask = torch.tensor([[True] * 10, [True] * 4 + [False] * 6])
    patches = patchify(tokens, mask, patch_size=4)
    assert patches.values.shape == (2, 3, 4, 3)
    assert patches.valid.tolist() == [[True, True, True], [True, False, False]]
    assert patches.frame_mask[0, 2].tolist() == [True, True, False, False]
    restored = unpatchify(patches.values, 10)
    assert torch.equal(restored[0], tokens[0])
    assert torch.equal(restored[1, :4], tokens[1, :4])
    assert torch.all(restored[1, 4:] == 0)  # padded frames are zeroed
    codes = torch.tensor([[5, 6, 7]])
    assert expand_patch_codes(codes, 4, 10).tolist() == [[5] * 4 + [6] * 4 + [7] * 2]


def test_patch_timestamps_are_positions_among_valid_patches() -> None:
    valid = torch.tensor(
        [
            [True, True, True, True, True],
            [True, True, True, False, False],
            [True, False, False, False, False],
        ]
    )
    expected = torch.tensor([[0, 0.25, 0.5, 0.75, 1.0], [0, 0.5, 1.0, 0, 0], [0, 0, 0, 0, 0]])
    torch.testing.assert_close(patch_timestamps(valid), expected)


@pytest.mark.parametrize("distance", ["frame_l2_sum", "l2"])
def test_matmul_distances_equal_direct_formula(distance: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(50, 6, 8, dtype=torch.float64)
    codes = torch.randn(7, 6, 8, dtype=torch.float64)
    fast = patch_distances(x, codes, distance)  # type: ignore[arg-type]
    slow = direct_patch_distances(x, codes, distance)  # type: ignore[arg-type]
    torch.testing.assert_close(fast, slow)
    assert torch.equal(fast.argmin(1), slow.argmin(1))
    # float32 assignments agree with the float64 reference
    fast32 = patch_distances(x.float(), codes.float(), distance)  # type: ignore[arg-type]
    assert torch.equal(fast32.argmin(1), slow.argmin(1))


def test_distance_definitions_on_a_hand_checked_case() -> None:
    x = torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])  # one patch, P=2 frames, E=2
    code = torch.zeros(1, 2, 2)
    assert patch_distances(x, code, "frame_l2_sum").item() == pytest.approx(5.0)
    x2 = torch.tensor([[[3.0, 4.0], [6.0, 8.0]]])
    assert patch_distances(x2, code, "frame_l2_sum").item() == pytest.approx(15.0)
    assert patch_distances(x2, code, "l2").item() == pytest.approx(math.sqrt(125.0))


@pytest.mark.parametrize(
    ("levels", "alpha", "expected"),
    [
        (1, 1, [6]),
        (1, 2, [6]),
        (1, 3, [6]),
        (2, 1, [6, 6]),
        (2, 2, [12, 6]),
        (2, 3, [18, 6]),
        (3, 1, [6, 6, 6]),
        (3, 2, [24, 12, 6]),
        (3, 3, [54, 18, 6]),
    ],
)
def test_codebook_sizes(levels: int, alpha: int, expected: list[int]) -> None:
    assert codebook_sizes(6, levels, alpha) == expected
    q = HierarchicalQuantizer(num_classes=6, patch_size=2, dim=3, levels=levels, alpha=alpha)
    assert [book.codes.shape[0] for book in q.codebooks] == expected


def test_bad_quantizer_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="levels"):
        codebook_sizes(4, 0, 2)
    with pytest.raises(ConfigError, match="distance"):
        HierarchicalQuantizer(num_classes=2, patch_size=2, dim=2, distance="cosine")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="decay"):
        EMACodebook(2, 2, 2, decay=1.5)


def test_ema_update_matches_hand_computed_values() -> None:
    book = EMACodebook(num_codes=2, patch_size=1, dim=1, decay=0.5, dead_threshold=0, eps=0.0)
    book.set_codes(torch.tensor([[[0.0]], [[10.0]]]), torch.tensor([1.0, 1.0]))
    # batch: code 0 receives patches 1 and 3, code 1 receives patch 9
    counts = torch.tensor([2.0, 1.0])
    sums = torch.tensor([[[4.0]], [[9.0]]])
    book.ema_update(counts, sums)
    # counts = 0.5*1 + 0.5*n -> [1.5, 1.0]; sums = 0.5*c*1 + 0.5*s -> [2.0, 9.5]
    torch.testing.assert_close(book.counts, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(book.sums.flatten(), torch.tensor([2.0, 9.5]))
    torch.testing.assert_close(book.codes.flatten(), torch.tensor([2.0 / 1.5, 9.5]))


def test_laplace_smoothing_of_counts() -> None:
    book = EMACodebook(
        num_codes=2, patch_size=1, dim=1, decay=0.0, dead_threshold=0, eps=0.5, smoothing="total"
    )
    book.ema_update(torch.tensor([3.0, 0.0]), torch.tensor([[[6.0]], [[0.0]]]))
    # smoothed = (n + eps) / (sum + K eps) * sum = [3.5/4*3, 0.5/4*3]
    torch.testing.assert_close(book.codes.flatten(), torch.tensor([6.0 / (3.5 / 4 * 3), 0.0]))


def test_reference_per_code_smoothing_and_zero_counts() -> None:
    book = EMACodebook(num_codes=2, patch_size=1, dim=1, decay=0.0, dead_threshold=0, eps=0.5)
    assert book.smoothing == "per_code"  # the reference's default
    book.set_codes(torch.tensor([[[1.0]], [[7.0]]]), torch.ones(2))
    book.ema_update(torch.tensor([3.0, 0.0]), torch.tensor([[[6.0]], [[0.0]]]))
    # smoothed_k = n_k (n_k + eps) / (n_k + K eps): 3 * 3.5 / 4; a zero count keeps its code
    torch.testing.assert_close(book.codes.flatten(), torch.tensor([6.0 / (3 * 3.5 / 4), 7.0]))


def test_quantizer_step_updates_codebook_like_the_formula() -> None:
    torch.manual_seed(0)
    q = HierarchicalQuantizer(
        num_classes=2, patch_size=2, dim=1, levels=1, decay=0.5, dead_code_thresholds=[0.0],
        eps=0.0, update="after_backward",
    )  # fmt: skip
    q.codebooks[0].set_codes(torch.tensor([[[0.0], [0.0]], [[10.0], [10.0]]]), torch.ones(2))
    values = torch.tensor([[[[1.0], [1.0]], [[9.0], [11.0]], [[2.0], [0.0]]]])  # (1, 3, 2, 1)
    valid = torch.ones(1, 3, dtype=torch.bool)
    out = q.train()(values, torch.ones(1, 3, 2, dtype=torch.bool), valid)
    assert out.indices[0].tolist() == [[0, 1, 0]]
    book = q.codebooks[0]
    assert torch.equal(book.counts, torch.ones(2))  # forward never updates
    # output and commitment target: the codes before the step
    assert out.quantized[0][0, :, :, 0].tolist() == [[0.0, 0.0], [10.0, 10.0], [0.0, 0.0]]
    q.update(out.statistics)
    torch.testing.assert_close(book.counts, torch.tensor([1.5, 1.0]))
    # code 0: (0.5*0*1 + 0.5*(1+2, 1+0)) / 1.5 ; code 1: (0.5*10 + 0.5*(9, 11)) / 1.0
    torch.testing.assert_close(book.codes[0].flatten(), torch.tensor([1.5 / 1.5, 0.5 / 1.5]))
    torch.testing.assert_close(book.codes[1].flatten(), torch.tensor([9.5, 10.5]))
    # eval mode gives no statistics to update with
    assert q.eval()(values, torch.ones(1, 3, 2, dtype=torch.bool), valid).statistics is None


def test_reference_update_happens_before_the_output() -> None:
    q = HierarchicalQuantizer(
        num_classes=2, patch_size=2, dim=1, levels=1, decay=0.5, dead_code_thresholds=[0.0],
        eps=0.0,
    )  # fmt: skip
    assert q.update_mode == "before_output"  # the reference's order is the default
    q.codebooks[0].set_codes(torch.tensor([[[0.0], [0.0]], [[10.0], [10.0]]]), torch.ones(2))
    values = torch.tensor([[[[1.0], [1.0]], [[9.0], [11.0]], [[2.0], [0.0]]]], requires_grad=True)
    out = q.train()(
        values, torch.ones(1, 3, 2, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    )
    # codes assigned with the old codebook, then the same EMA step as above ...
    assert out.indices[0].tolist() == [[0, 1, 0]]
    torch.testing.assert_close(q.codebooks[0].counts, torch.tensor([1.5, 1.0]))
    new0, new1 = [1.0, 1.0 / 3.0], [9.5, 10.5]
    # ... and the output and the commitment target are the updated codes
    torch.testing.assert_close(out.quantized[0][0, :, :, 0], torch.tensor([new0, new1, new0]))
    expected = (
        sum(
            (a - b) ** 2
            for row, code in (([1.0, 1.0], new0), ([9.0, 11.0], new1), ([2.0, 0.0], new0))
            for a, b in zip(row, code, strict=True)
        )
        / 6
    )
    assert out.commitment[0].item() == pytest.approx(expected)
    assert out.statistics is None and out.usage is not None
    assert out.usage["level1/used_codes"].item() == 2.0
    # straight-through: the output's gradient reaches the input unchanged
    out.quantized[0].sum().backward()
    assert torch.equal(values.grad, torch.ones_like(values))


def test_reference_update_of_the_second_level_uses_the_updated_first_level() -> None:
    q = HierarchicalQuantizer(
        num_classes=1, patch_size=1, dim=1, levels=2, alpha=2, decay=0.5,
        dead_code_thresholds=[0.0, 0.0], eps=0.0,
    )  # fmt: skip
    q.codebooks[0].set_codes(torch.tensor([[[0.0]], [[10.0]]]), torch.ones(2))
    q.codebooks[1].set_codes(torch.tensor([[[4.0]]]), torch.ones(1))
    values = torch.tensor([[[[9.0]], [[1.0]], [[11.0]]]])
    out = q.train()(
        values, torch.ones(1, 3, 1, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    )
    # level 1: codes (0.5*0 + 0.5*1)/1 = 0.5 and (0.5*10 + 0.5*20)/1.5 = 10
    torch.testing.assert_close(q.codebooks[0].codes.flatten(), torch.tensor([0.5, 10.0]))
    # level 2 sees the updated level-1 codes: count 0.5*1 + 0.5*3, sum 0.5*4 + 0.5*(10+0.5+10)
    torch.testing.assert_close(q.codebooks[1].codes.flatten(), torch.tensor([(2.0 + 10.25) / 2.0]))
    assert out.quantized[0].flatten().tolist() == [10.0, 0.5, 10.0]
    assert out.commitment[1].item() == pytest.approx(
        ((10 - 6.125) ** 2 * 2 + (0.5 - 6.125) ** 2) / 3
    )


def test_second_level_quantizes_the_first_level_code() -> None:
    q = HierarchicalQuantizer(
        num_classes=1, patch_size=1, dim=1, levels=2, alpha=2, dead_code_thresholds=[0.0, 0.0]
    ).eval()
    q.codebooks[0].set_codes(torch.tensor([[[0.0]], [[10.0]]]), torch.ones(2))
    q.codebooks[1].set_codes(torch.tensor([[[4.0]]]), torch.ones(1))
    values = torch.tensor([[[[9.0]], [[1.0]]]])
    out = q(values, torch.ones(1, 2, 1, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool))
    assert out.indices[0].tolist() == [[1, 0]]
    assert out.indices[1].tolist() == [[0, 0]]
    # commitment: level 1 ||x - z||^2 mean = ((9-10)^2 + (1-0)^2)/2; level 2 ||z - a||^2
    assert out.commitment[0].item() == pytest.approx(1.0)
    assert out.commitment[1].item() == pytest.approx(((10 - 4) ** 2 + (0 - 4) ** 2) / 2)
    assert out.quantized[1].flatten().tolist() == [4.0, 4.0]


@pytest.mark.parametrize("update", ["before_output", "after_backward"])
def test_dead_codes_are_reseeded_only_under_the_threshold(update: str) -> None:
    def run(threshold: float) -> EMACodebook:
        q = HierarchicalQuantizer(
            num_classes=2, patch_size=1, dim=1, levels=1, decay=0.5,
            dead_code_thresholds=[threshold], update=update,
        )  # fmt: skip
        q.codebooks[0].set_codes(torch.tensor([[[0.0]], [[100.0]]]), torch.tensor([4.0, 4.0]))
        values = torch.tensor([[[[1.0]], [[2.0]], [[3.0]], [[-1.0]]]])
        out = q.train()(
            values, torch.ones(1, 4, 1, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)
        )
        if update == "after_backward":
            q.update(out.statistics)
        return q.codebooks[0]

    # code 1 receives nothing: its count decays to 0.5*4 = 2
    kept = run(threshold=1.5)
    assert kept.counts[1].item() == pytest.approx(2.0)
    assert kept.codes[1].item() == pytest.approx(100.0 * 2.0 / 2.0, rel=1e-4)
    reseeded = run(threshold=3.0)
    assert reseeded.counts[1].item() == pytest.approx(3.0)
    # After the EMA step the codebook is [0.625, 100]; the candidates 1, 2, 3, -1 lie at
    # 0.375, 1.375, 2.375, 1.625 from it, median 1.5, so the closest half is {1, 2}. Three
    # samples are needed, more than the pool holds, so the pool is cycled in order (as the
    # reference): the new code is (1 + 2 + 1) / 3.
    assert reseeded.codes[1].item() == pytest.approx(4 / 3)
    assert reseeded.sums[1].item() == pytest.approx(3 * reseeded.codes[1].item())


def test_reseed_draws_a_permutation_of_the_pool_when_it_is_large_enough() -> None:
    book = EMACodebook(num_codes=3, patch_size=1, dim=1, decay=0.5, dead_threshold=2.0)
    book.set_codes(torch.tensor([[[0.0]], [[50.0]], [[100.0]]]), torch.tensor([9.0, 9.0, 0.5]))
    candidates = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1)  # pool: 0..4 (closest)
    book.reseed(torch.tensor([2]), candidates, torch.Generator().manual_seed(42))
    order = torch.randperm(5, generator=torch.Generator().manual_seed(42))[:2]
    assert book.codes[2].item() == pytest.approx(order.float().mean().item())


def test_reseed_draws_depend_only_on_seed_and_step() -> None:
    def codes(seed: int, reseed_seed: int | None) -> torch.Tensor:
        torch.manual_seed(123)
        q = HierarchicalQuantizer(
            num_classes=4, patch_size=2, dim=3, levels=2, seed=seed, reseed_seed=reseed_seed
        )
        x = torch.randn(4, 30, 2, 3)  # pools larger than the samples needed: random draws
        torch.manual_seed(999)  # the global RNG must not matter
        q.train()(x, torch.ones(4, 30, 2, dtype=torch.bool), torch.ones(4, 30, dtype=torch.bool))
        return torch.cat([b.codes.flatten() for b in q.codebooks])

    assert torch.equal(codes(0, None), codes(0, None))
    assert not torch.equal(codes(0, None), codes(1, None))
    # the reference's fixed generator: the same draws whatever the run's seed
    assert torch.equal(codes(0, 42), codes(1, 42))
    assert not torch.equal(codes(0, 42), codes(0, 7))


def test_straight_through_gradients_reach_the_encoder() -> None:
    torch.manual_seed(0)
    encoder = JointTCNEncoder(in_channels=3, latent_dim=4, hidden_channels=8)
    q = HierarchicalQuantizer(num_classes=2, patch_size=2, dim=4 * 5, levels=2)
    decoder = JointTCNDecoder(out_channels=3, latent_dim=4, hidden_channels=8)
    x = torch.randn(2, 3, 6, 5, 1)
    mask = torch.ones(2, 6, dtype=torch.bool)
    patches = patchify(encoder(x, mask), mask, 2)
    out = q.train()(patches.values, patches.frame_mask, patches.valid)
    top = unpatchify(out.quantized[-1], 6)
    recon = decoder([top], mask, 5, 1)
    inter_joint_distance_mse(x, recon, mask).backward()
    grad = encoder.tcn.stages[0].conv_in.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_inter_joint_distance_loss_hand_checked() -> None:
    # one frame, two joints, C=2: target distance 5, reconstruction distance 3
    target = torch.zeros(1, 2, 1, 2, 1)
    target[0, :, 0, 1, 0] = torch.tensor([3.0, 4.0])
    recon = torch.zeros(1, 2, 1, 2, 1)
    recon[0, :, 0, 1, 0] = torch.tensor([0.0, 3.0])
    mask = torch.ones(1, 1, dtype=torch.bool)
    # V x V matrices [[0,5],[5,0]] vs [[0,3],[3,0]]: squared diffs 0,4,4,0 -> mean 2
    assert inter_joint_distance_mse(target, recon, mask).item() == pytest.approx(2.0)


def test_inter_joint_distance_loss_ignores_padding_and_has_finite_gradients() -> None:
    target = torch.randn(1, 3, 4, 5, 1)
    recon = target.clone().requires_grad_(True)
    mask = torch.tensor([[True, True, False, False]])
    padded_target = target.clone()
    padded_target[:, :, 2:] = 1000.0  # padding content must not matter
    loss = inter_joint_distance_mse(padded_target, recon, mask)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(recon.grad).all()


def test_timestamp_loss_hand_checked() -> None:
    pred = torch.tensor([[0.0, 0.5, 3.0]])
    target = torch.tensor([[0.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, False]])
    assert timestamp_mse(pred, target, valid).item() == pytest.approx(0.125)


def test_decoders_shapes() -> None:
    decoder = JointTCNDecoder(out_channels=3, latent_dim=4, inputs=2, hidden_channels=8)
    tokens = [torch.randn(2, 6, 4 * 5 * 1), torch.randn(2, 6, 4 * 5 * 1)]
    assert decoder(tokens, torch.ones(2, 6, dtype=torch.bool), 5, 1).shape == (2, 3, 6, 5, 1)
    mlp = TimestampMLP(in_features=2 * (2 * 3))  # two streams of P*E
    assert mlp([torch.randn(2, 7, 2, 3), torch.randn(2, 7, 2, 3)]).shape == (2, 7)


def test_timestamp_mlp_layer_norm_sees_patches_whatever_their_scale() -> None:
    torch.manual_seed(0)
    mlp = TimestampMLP(in_features=12, input_norm="layer")
    patches = torch.randn(2, 5, 4, 3)
    assert torch.allclose(mlp([patches]), mlp([patches * 500.0]), atol=1e-5)
    assert not torch.allclose(mlp([patches]), mlp([patches.flip(-1)]))


def _fit_timestamps(input_norm: str, steps: int = 100) -> float:
    """Trains a TimestampMLP on patches at HuGaDB's raw code scale; returns the last MSE.

    Ten "codes" of std 400 (as HiST-VQ's level-1 codes on raw HuGaDB) each stand for a mean
    timestamp in [0, 1] and drift by a tenth of their std per step, as EMA codes move in
    training; a constant prediction scores about 0.08 on these targets.
    """
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    codes = torch.randn(10, 4, 50, generator=generator) * 400.0
    mean_time = torch.rand(10, generator=generator)
    mlp = TimestampMLP(in_features=200, input_norm=input_norm)
    optimizer = torch.optim.Adam(mlp.parameters(), lr=5e-4)
    for _ in range(steps):
        codes = codes + 40.0 * torch.randn(codes.shape, generator=generator)
        which = torch.randint(0, 10, (4, 16), generator=generator)
        target = mean_time[which]
        loss = timestamp_mse(mlp([codes[which]]), target, torch.ones_like(which, dtype=torch.bool))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def test_timestamp_mlp_learns_timestamps_from_raw_scale_codes_only_with_layer_norm() -> None:
    assert _fit_timestamps("layer") < 0.01
    assert _fit_timestamps("none") > 0.5  # the paper's plain MLP: far off a [0, 1] target


def test_timestamp_mlp_rejects_unknown_input_norm() -> None:
    with pytest.raises(
        ConfigError, match=r"model.decoder.temporal.input_norm: unknown value 'batch'"
    ):
        TimestampMLP(in_features=4, input_norm="batch")
    with pytest.raises(
        ConfigError, match=r"model.decoder.temporal.input_norm: unknown value 'batch'"
    ):
        _tiny_model(None, "model=histvq", "model.decoder.temporal.input_norm=batch")
    model = _tiny_model(None, "model=histvq", "model.decoder.temporal.input_norm=layer")
    assert isinstance(model.temporal_decoder.net[0], torch.nn.LayerNorm)


def _tiny_model(budget: int | None, *overrides: str):
    from conftest import compose_config, data_spec

    from histvq.models import build_model

    cfg = compose_config(
        "train",
        [
            "model.encoder.hidden_channels=8",
            "model.latent_dim=4",
            f"model.micro_batch_joint_frames={budget or 'null'}",
            *overrides,
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model, data_spec(num_classes=3, patch_size=4))
    model.eval()  # no dropout, so both runs see the same network
    model.quantizer.train()
    return model


def test_micro_batches_are_contiguous_and_within_budget() -> None:
    from histvq.models.steps import micro_batches

    lengths = [10, 7, 3, 12, 1]
    groups = micro_batches(lengths, patch_size=4, joints=2, budget=40)
    # padded lengths 12, 8, 4, 12, 4; a group costs (sequences x its longest x joints)
    assert groups == [[0], [1, 2], [3], [4]]
    assert micro_batches(lengths, 4, 2, None) == [[0, 1, 2, 3, 4]]
    assert micro_batches(lengths, 4, 2, 1) == [[0], [1], [2], [3], [4]]


@pytest.mark.parametrize("update", ["before_output", "after_backward"])
@pytest.mark.parametrize("normalization", ["padded", "valid"])
def test_micro_batching_gives_the_whole_batch_gradient_and_codebook_update(
    update: str, normalization: str
) -> None:
    generator = torch.Generator().manual_seed(3)
    lengths = torch.tensor([17, 9, 12, 5])
    features = torch.randn(4, 3, 20, 5, 1, generator=generator) * 50
    mask = torch.arange(20)[None, :] < lengths[:, None]
    features = features * mask[:, None, :, None, None]
    batch = {"features": features, "mask": mask, "lengths": lengths}
    results = []
    for budget in (None, 60):  # 60 joint-frames: micro-batches of one or two sequences
        model = _tiny_model(
            budget,
            f"model.quantizer.update={update}",
            f"model.spatial_loss_normalization={normalization}",
        )
        calls: list[bool] = []

        def backward(loss: torch.Tensor, last: bool, calls: list[bool] = calls) -> None:
            calls.append(last)
            loss.backward()

        step = model.accumulate_batch(batch, backward)
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        if step.statistics is not None:
            model.quantizer.update(step.statistics)
        results.append((calls, step, grads, model.quantizer.state_dict()))
    (calls_a, step_a, grads_a, state_a), (calls_b, step_b, grads_b, state_b) = results
    assert calls_a == [True] and len(calls_b) > 1 and calls_b[-1] and not any(calls_b[:-1])
    assert step_a.logged.keys() == step_b.logged.keys() and "spatial" in step_a.logged
    for key in step_a.logged:
        torch.testing.assert_close(step_a.logged[key], step_b.logged[key], rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for key in grads_a:
        torch.testing.assert_close(grads_a[key], grads_b[key], rtol=1e-4, atol=1e-6, msg=key)
    assert (step_a.statistics is None) == (update == "before_output")
    if step_a.statistics is not None:
        assert torch.equal(step_a.statistics.patches, step_b.statistics.patches)
    assert state_a["num_updates"].item() == 1
    for key in state_a:
        torch.testing.assert_close(state_a[key], state_b[key], rtol=1e-5, atol=1e-5, msg=key)


def test_random_bytes_are_uniform_in_every_byte_of_a_word() -> None:
    from histvq.models.tcn import random_bytes

    torch.manual_seed(0)
    draws = random_bytes(torch.Size([4000, 64])).reshape(-1, 8).long()
    assert draws.shape == (32_000, 8)
    # each of the 8 byte positions of a 64-bit draw is uniform on 0..255 (mean 127.5,
    # variance (256^2 - 1) / 12); a 63-bit draw would leave the top byte under 128
    means = draws.float().mean(0)
    assert ((means - 127.5).abs() < 2.0).all(), means
    counts = torch.bincount(draws.flatten(), minlength=256).float()
    assert counts.min() > 0.85 * counts.mean() and counts.max() < 1.15 * counts.mean()
    assert random_bytes(torch.Size([3, 5])).shape == (3, 5)  # not a multiple of 8


def test_byte_dropout_is_unbiased_and_its_gradient_matches_its_mask() -> None:
    from histvq.models.tcn import ByteDropout

    torch.manual_seed(0)
    drop = ByteDropout(0.5).train()
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    assert abs(kept.float().mean().item() - 0.5) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * 2.0)
    assert torch.equal(drop.eval()(x), x)
    # p rounds to a multiple of 1/256 and the scale keeps the expectation at x
    d = ByteDropout(0.3)
    assert d.threshold == 77 and d.scale == pytest.approx(256 / 179)


def test_activation_checkpointing_gives_the_same_gradients_with_dropout() -> None:
    x = torch.randn(2, 3, 40, 5, 1)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 25:] = False
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        encoder = JointTCNEncoder(
            in_channels=3, latent_dim=4, hidden_channels=8, activation_checkpointing=checkpointing
        ).train()
        torch.manual_seed(1)  # same dropout masks in both runs (replayed when recomputing)
        encoder(x, mask).pow(2).sum().backward()
        grads.append({k: p.grad.clone() for k, p in encoder.named_parameters()})
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], msg=key)


def test_micro_batched_segmentation_gives_the_same_codes() -> None:
    lengths = torch.tensor([17, 9, 12, 5])
    features = torch.randn(4, 3, 20, 5, 1, generator=torch.Generator().manual_seed(4)) * 50
    mask = torch.arange(20)[None, :] < lengths[:, None]
    whole, split = _tiny_model(None).eval(), _tiny_model(40).eval()
    codes_whole, codes_split = whole.segment(features, mask), split.segment(features, mask)
    for a, b in zip(codes_whole, codes_split, strict=True):
        assert torch.equal(a[mask], b[mask])
