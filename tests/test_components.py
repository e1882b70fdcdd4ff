"""The second encoder (local-attention transformer), the second quantizer (FSQ) and the
input streams: hand-checked pieces, masking, DDP statistics and end-to-end runs."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import compose_config, data_spec

from histvq.data.streams import apply_streams
from histvq.errors import ConfigError
from histvq.models import build_model
from histvq.models.quantizers import FSQQuantizer, fsq_grid
from histvq.models.quantizers.fsq import round_to_grid
from histvq.models.transformer import JointTransformerEncoder, local_attention
from histvq.pipeline import build_datamodule, train_and_evaluate

# ----------------------------------------------------------------------------- transformer


def test_local_attention_equals_dense_attention_with_a_band_mask() -> None:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 29, 8, generator=generator) for _ in range(3))
    valid = torch.ones(2, 29, dtype=torch.bool)
    valid[1, 20:] = False
    t = torch.arange(29)
    band = (t[:, None] - t[None, :]).abs() <= 4
    allowed = band[None] & (valid[:, None, :] | torch.eye(29, dtype=torch.bool)[None])
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None])
    torch.testing.assert_close(local_attention(q, k, v, valid, window=4), dense)


def test_transformer_padding_never_changes_valid_outputs() -> None:
    torch.manual_seed(0)
    encoder = JointTransformerEncoder(3, latent_dim=4, hidden_channels=16, window=5).eval()
    x = torch.randn(2, 3, 37, 5, 2)
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[1, 22:] = False
    x[1, :, 22:] = 123.0  # whatever the padding holds
    batch = encoder(x, mask)
    alone = encoder(x[1:, :, :22], mask[1:, :22])
    assert batch.shape == (2, 37, 2 * 5 * 4)
    torch.testing.assert_close(batch[1, :22], alone[0], rtol=1e-5, atol=1e-6)
    assert torch.equal(batch[1, 22:], torch.zeros_like(batch[1, 22:]))


def test_transformer_checkpointing_gives_the_same_gradients() -> None:
    x = torch.randn(2, 3, 30, 5, 1)
    mask = torch.ones(2, 30, dtype=torch.bool)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        encoder = JointTransformerEncoder(
            3, latent_dim=4, hidden_channels=16, activation_checkpointing=checkpointing
        ).train()
        torch.manual_seed(1)
        encoder(x, mask).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in encoder.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- FSQ


def test_fsq_grids_multiply_to_the_codebook_size() -> None:
    assert fsq_grid(10) == (5, 2)
    assert fsq_grid(20) == (5, 2, 2)
    assert fsq_grid(40) == (5, 4, 2)
    assert fsq_grid(7) == (7,)
    assert fsq_grid(1) == (1,)
    for n in range(1, 80):
        assert int(np.prod(fsq_grid(n))) == n and len(fsq_grid(n)) <= 3


def test_fsq_rounding_and_mixed_radix_codes() -> None:
    z = torch.tensor([[-20.0, 20.0], [0.0, 0.0], [20.0, -20.0]], requires_grad=True)
    scaled, codes = round_to_grid(z, (5, 3))
    # tanh saturates: digits 0/4 and 2/0; the middle point rounds to (2, 1)
    assert codes.tolist() == [0 + 2 * 5, 2 + 1 * 5, 4 + 0 * 5]
    torch.testing.assert_close(
        scaled.detach(), torch.tensor([[-1.0, 1.0], [0.0, 0.0], [1.0, -1.0]])
    )
    scaled.sum().backward()  # straight-through: the gradient passes the rounding
    assert z.grad is not None and z.grad[1].abs().sum() > 0


def test_fsq_hierarchy_maps_each_first_level_code_to_one_top_code() -> None:
    torch.manual_seed(0)
    q = FSQQuantizer(num_classes=3, patch_size=4, dim=6, levels=2, alpha=2).eval()
    values = torch.randn(5, 7, 4, 6)
    frame_mask = torch.ones(5, 7, 4, dtype=torch.bool)
    valid = torch.ones(5, 7, dtype=torch.bool)
    valid[2, 5:] = False
    out = q(values, frame_mask, valid)
    bottom, top = out.indices[0][valid], out.indices[1][valid]
    assert bottom.max() < 6 and top.max() < 3 and (out.indices[0][~valid] == -1).all()
    for code in bottom.unique():
        assert top[bottom == code].unique().numel() == 1
    assert all(float(c) == 0.0 for c in out.commitment) and out.statistics is None


def test_fsq_running_moments_follow_the_projected_scalars_hand_checked() -> None:
    torch.manual_seed(0)
    q = FSQQuantizer(num_classes=2, patch_size=1, dim=1, levels=1, decay=0.75).train()
    assert q.grids == [(2,)]
    with torch.no_grad():
        q.project_in[0].weight.fill_(1.0)
        q.project_in[0].bias.fill_(0.0)
    ones = torch.ones(1, 4, 1, dtype=torch.bool)

    def step(values: list[float]) -> dict:
        x = torch.tensor(values).reshape(1, 4, 1, 1)
        return q.update(q(x, ones, ones[:, :, 0]).statistics)

    step([1.0, 3.0, 5.0, 7.0])  # the first step replaces (0, 1) by its moments
    torch.testing.assert_close(q.running_mean0, torch.tensor([4.0]))
    torch.testing.assert_close(q.running_var0, torch.tensor([5.0]))
    # the second step codes with its own batch mean 4: below it digit 0, above it digit 1
    usage = step([3.0, 3.0, 5.0, 5.0])
    assert usage["level1/used_codes"] == 2.0 and usage["level1/perplexity"] == pytest.approx(2.0)
    torch.testing.assert_close(q.running_mean0, torch.tensor([4.0]))  # step mean 4
    torch.testing.assert_close(q.running_var0, torch.tensor([0.75 * 5.0 + 0.25 * 1.0]))
    q.eval()  # evaluation codes with the same moments, and leaves them
    codes = q(torch.tensor([3.9, 4.1, -100.0, 100.0]).reshape(1, 4, 1, 1), ones, ones[:, :, 0])
    assert codes.indices[0].tolist() == [[0, 1, 0, 1]] and codes.statistics is None


def test_fsq_standardisation_reaches_every_top_code_on_large_raw_inputs() -> None:
    """Raw patches with a spread of tens: plain FSQ saturates tanh at the first level and
    puts the second level's small inputs in one cell; standardised FSQ reaches its cells
    once the first step has set the moments."""
    torch.manual_seed(0)
    values = 30.0 * torch.randn(8, 50, 5, 6)
    mask = torch.ones(8, 50, 5, dtype=torch.bool)
    used = {}
    for standardize in (False, True):
        torch.manual_seed(1)
        q = FSQQuantizer(num_classes=6, patch_size=5, dim=6, standardize=standardize).train()
        for _ in range(3):
            out = q(values, mask, mask[:, :, 0])
            usage = q.update(out.statistics)
        used[standardize] = (int(usage["level1/used_codes"]), int(usage["level2/used_codes"]))
    assert q.sizes == [12, 6]
    assert used[True] == (12, 6)
    assert used[False][1] < 6


def test_fsq_statistics_of_micro_batches_merge_into_the_whole_batch() -> None:
    """(Unstandardised: a standardised micro-batch codes with its own moments.)"""
    torch.manual_seed(0)
    q = FSQQuantizer(num_classes=4, patch_size=3, dim=5, standardize=False).train()
    values = torch.randn(6, 4, 3, 5)
    ones = torch.ones(6, 4, 3, dtype=torch.bool)
    whole = q(values, ones, ones[:, :, 0]).statistics
    halves = q(values[:2], ones[:2], ones[:2, :, 0]).statistics.merge(
        q(values[2:], ones[2:], ones[2:, :, 0]).statistics
    )
    for a, b in zip(whole.counts + whole.moments, halves.counts + halves.moments, strict=True):
        torch.testing.assert_close(a, b)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fsq_worker(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    torch.manual_seed(0)
    q = FSQQuantizer(num_classes=4, patch_size=3, dim=5).train()
    values = torch.randn(6, 4, 3, 5, generator=torch.Generator().manual_seed(1))
    rows = slice(3 * rank, 3 * rank + 3)
    ones = torch.ones(6, 4, 3, dtype=torch.bool)
    for _ in range(2):  # two EMA steps of the running moments, from moments summed over ranks
        usage = q.update(q(values[rows], ones[rows], ones[rows, :, 0]).statistics)
    torch.save({**usage, **q.state_dict()}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.ddp
def test_fsq_usage_statistics_under_ddp_equal_one_process(tmp_path: Path) -> None:
    mp.spawn(_fsq_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    torch.manual_seed(0)
    single = FSQQuantizer(num_classes=4, patch_size=3, dim=5).train()
    values = torch.randn(6, 4, 3, 5, generator=torch.Generator().manual_seed(1))
    ones = torch.ones(6, 4, 3, dtype=torch.bool)
    for _ in range(2):
        expected = single.update(single(values, ones, ones[:, :, 0]).statistics)
    expected = {**expected, **single.state_dict()}
    assert "running_var1" in expected
    for key, value in expected.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        torch.testing.assert_close(ranks[0][key], value, msg=key)


# ----------------------------------------------------------------------------- streams


def test_streams_are_stacked_channels_of_the_prepared_joints(tiny_train_config) -> None:
    plain = build_datamodule(tiny_train_config("a"))
    streamed = build_datamodule(tiny_train_config("b", "dataset.stream=joint+motion"))
    assert streamed.spec.num_channels == 2 * plain.spec.num_channels == 6
    joints = plain.dataset.records[0].features
    features = streamed.dataset.records[0].features
    np.testing.assert_array_equal(features[:3], joints)
    np.testing.assert_array_equal(features[3:, 1:], np.diff(joints, axis=1))
    assert not features[3:, 0].any()  # no motion at the first frame


def test_bone_stream_needs_a_skeleton_tree() -> None:
    with pytest.raises(ConfigError, match="'bone' needs a skeleton tree, and hugadb has none"):
        build_datamodule(compose_config("train", ["dataset=hugadb", "dataset.stream=bone"]))
    with pytest.raises(ConfigError, match="unknown input stream 'speed'"):
        build_datamodule(compose_config("train", ["dataset.stream=joint+speed"]))
    x = np.arange(2 * 3 * 3 * 1, dtype=np.float32).reshape(2, 3, 3, 1) * 0 + 1.0
    assert apply_streams(x, "joint", "hugadb") is x


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    "overrides",
    [
        ["model/encoder=transformer"],
        ["model/quantizer=fsq"],
        ["model/quantizer=fsq", "model.levels=1", "model.lambda_temp=0"],  # SMQ with FSQ
        ["dataset.stream=joint+motion"],
        ["dataset.stream=bone+bone_motion", "model/encoder=transformer"],
    ],
    ids=["transformer", "fsq", "smq-fsq", "joint+motion", "bones-transformer"],
)
def test_new_components_train_and_evaluate(tiny_train_config, overrides: list[str]) -> None:
    cfg = tiny_train_config("run", *overrides, "trainer.max_epochs=1", "eval.plots=false")
    metrics = train_and_evaluate(cfg)
    assert metrics is not None and metrics["num_sequences"] == 4
    assert 0.0 <= metrics["global"]["mof"] <= 100.0
    model = build_model(cfg.model, build_datamodule(cfg).spec)
    if "model/encoder=transformer" in overrides:
        assert type(model.encoder).__name__ == "JointTransformerEncoder"
    if "model/quantizer=fsq" in overrides:
        assert isinstance(model.quantizer, FSQQuantizer)


def test_the_encoder_is_one_override_for_every_paper_configuration() -> None:
    spec = data_spec(num_classes=4, patch_size=6)
    for extra in (["model=smq"], ["model.levels=3"], ["model.spatial_input=both"]):
        cfg = compose_config("train", ["model/encoder=transformer", *extra])
        model = build_model(cfg.model, spec)
        assert type(model.encoder).__name__ == "JointTransformerEncoder"
        width = cfg.model.encoder.hidden_channels
        assert model.spatial_decoder.tcn.stages[0].conv_in.out_channels == width  # same width


def test_prediction_applies_the_runs_streams(tiny_train_config, tmp_path: Path) -> None:
    from histvq.predict import predict_recordings

    cfg = tiny_train_config("run", "dataset.stream=joint+motion", "trainer.max_epochs=1")
    metrics = train_and_evaluate(cfg)
    summary = predict_recordings(
        tmp_path / "run" / "checkpoints" / "last.ckpt",
        tmp_path / "data" / "synthetic",  # the prepared joints, as a layout folder
        tmp_path / "predicted",
        plots=False,
    )
    agree = sum(s["agreement"] * s["num_frames"] for s in summary["sequences"]) / 100
    assert agree / summary["num_frames"] * 100 == pytest.approx(metrics["global"]["mof"])


# ----------------------------------------------------------------------------- normalisation


def test_channel_statistics_and_standardisation_hand_checked() -> None:
    from histvq.data.normalize import channel_statistics, standardize

    a = np.zeros((2, 2, 1, 1), dtype=np.float32)
    a[0, :, 0, 0] = [1.0, 3.0]
    a[1, :, 0, 0] = [10.0, 10.0]
    b = np.zeros((2, 2, 1, 1), dtype=np.float32)
    b[0, :, 0, 0] = [5.0, 7.0]
    b[1, :, 0, 0] = [10.0, 10.0]
    mean, std = channel_statistics([a, b])
    assert mean == [4.0, 10.0]
    assert std[0] == pytest.approx(np.std([1, 3, 5, 7])) and std[1] == 1.0  # constant: kept
    np.testing.assert_allclose(standardize(a, mean, std)[1], 0.0)
    np.testing.assert_allclose(standardize(a, mean, std)[0, :, 0, 0], [-3 / std[0], -1 / std[0]])
    with pytest.raises(ConfigError, match="input statistics are for 2 channels"):
        standardize(np.zeros((3, 2, 1, 1), np.float32), mean, std)


def test_normalised_training_and_prediction_agree(tiny_train_config, tmp_path: Path) -> None:
    from histvq.predict import predict_recordings

    cfg = tiny_train_config("run", "dataset.normalize=channel", "trainer.max_epochs=1")
    datamodule = build_datamodule(cfg)
    stacked = np.concatenate([r.features.reshape(3, -1) for r in datamodule.dataset.records], 1)
    np.testing.assert_allclose(stacked.mean(1), 0.0, atol=1e-5)
    np.testing.assert_allclose(stacked.std(1), 1.0, atol=1e-4)
    assert datamodule.spec.input_stats is not None
    metrics = train_and_evaluate(cfg)
    summary = predict_recordings(
        tmp_path / "run" / "checkpoints" / "last.ckpt",
        tmp_path / "data" / "synthetic",  # raw joints: prediction standardises them
        tmp_path / "predicted",
        plots=False,
    )
    agree = sum(s["agreement"] * s["num_frames"] for s in summary["sequences"]) / 100
    assert agree / summary["num_frames"] * 100 == pytest.approx(metrics["global"]["mof"])
