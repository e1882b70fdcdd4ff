"""The accelerator path: device-dependent memory settings, repeating batch shapes, a
device-resident dataset, and (with CUDA) training steps on the GPU.

Tests marked ``requires_cuda`` are skipped without a CUDA device; the others check on the
CPU that every GPU-oriented choice leaves the results unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, compose_config, data_spec

from histvq.data.dataset import PadCollate, ResidentFeatures, ladder_patches, padded_length
from histvq.data.layout import SequenceRecord
from histvq.errors import ConfigError
from histvq.models import build_model
from histvq.models.factory import memory_settings
from histvq.pipeline import build_datamodule, train_and_evaluate


def test_memory_settings_follow_the_device() -> None:
    cfg = compose_config("train", ["dataset=hugadb"]).model
    assert memory_settings(cfg, "cpu") == (16384, True, False)
    assert memory_settings(cfg, "cuda") == (None, False, False)
    explicit = compose_config(
        "train",
        [
            "model.micro_batch_joint_frames=500",
            "model.encoder.activation_checkpointing=true",
            "model.decoder.spatial.activation_checkpointing=true",
        ],
    ).model
    assert memory_settings(explicit, "cuda") == (500, True, True)
    bad = compose_config("train", ["model.micro_batch_joint_frames=lots"]).model
    with pytest.raises(ConfigError, match=r"model\.micro_batch_joint_frames: expected an integer"):
        memory_settings(bad, "cpu")
    model = build_model(compose_config("train", ["dataset=hugadb"]).model, data_spec(), "cuda")
    assert model.micro_batch_joint_frames is None
    assert not model.encoder.tcn.activation_checkpointing
    assert not model.spatial_decoder.tcn.activation_checkpointing


def test_ladder_lengths() -> None:
    assert [ladder_patches(n) for n in (1, 2, 3, 4, 5, 6, 7, 9, 11, 15, 17, 33)] == [
        1, 2, 3, 4, 5, 6, 7, 10, 12, 16, 20, 39,
    ]  # fmt: skip
    assert padded_length(181, 60, "patch") == 240
    assert padded_length(181, 60, "ladder") == 240  # 4 patches: on the ladder
    assert padded_length(9 * 60 - 5, 60, "ladder") == 600  # 9 -> 10 patches
    lengths = range(1, 20_000, 37)
    sizes = {padded_length(n, 60, "ladder") for n in lengths}
    assert len(sizes) <= 30  # few distinct shapes over 1 to 20,000 frames
    assert all(padded_length(n, 60, "ladder") <= 1.19 * padded_length(n, 60) + 60 for n in lengths)
    with pytest.raises(ConfigError, match=r"dataset\.pad_to: unknown value 'power'"):
        padded_length(10, 5, "power")


def _records() -> list[SequenceRecord]:
    rng = np.random.default_rng(0)
    return [
        SequenceRecord(
            name=f"s{i}",
            features=rng.normal(size=(3, n, 5, 1)).astype(np.float32),
            labels=np.zeros(n, dtype=np.int64),
        )
        for i, n in enumerate((23, 9, 41))
    ]


def _items(records: list[SequenceRecord]) -> list[dict]:
    return [
        {
            "features": torch.from_numpy(r.features),
            "labels": torch.from_numpy(r.labels),
            "index": i,
            "group": 0,
            "name": r.name,
        }
        for i, r in enumerate(records)
    ]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.requires_cuda)])
def test_resident_features_build_the_same_batches(device: str) -> None:
    records = _records()
    items = _items(records)
    host = PadCollate(4, "ladder")(items)
    light = PadCollate(4, "ladder", with_features=False)(items)
    assert "features" not in light and light["length_list"] == [23, 9, 41]
    filled = ResidentFeatures(records, torch.device(device)).fill(light)
    assert filled["features"].device.type == device
    assert torch.equal(filled["features"].cpu(), host["features"])
    assert torch.equal(filled["mask"].cpu(), host["mask"])


def test_ladder_padding_changes_no_loss_or_gradient() -> None:
    cfg = compose_config("train", ["model.encoder.hidden_channels=8", "model.latent_dim=4",
                                   "model.encoder.dropout=0.0"])  # fmt: skip
    items = _items(_records())
    results = []
    for pad_to in ("patch", "ladder"):
        batch = PadCollate(4, pad_to)(items)
        torch.manual_seed(0)
        model = build_model(cfg.model, data_spec(num_classes=3, patch_size=4)).train()
        step = model.accumulate_batch(batch, lambda loss, last: loss.backward())
        grads = [p.grad.clone() for p in model.parameters()]
        results.append((batch["features"].shape[2], step.logged, grads))
    (t_patch, logged_a, grads_a), (t_ladder, logged_b, grads_b) = results
    assert (t_patch, t_ladder) == (44, 48)  # 11 patches -> 12 on the ladder
    for key in logged_a:
        torch.testing.assert_close(logged_a[key], logged_b[key], rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_resident_training_equals_host_batches(tiny_train_config, tmp_path: Path) -> None:
    """dataset.resident=true on a CPU goes through the resident code path (the batch hook)
    and must train exactly as the default host collate."""
    metrics = {}
    for resident in ("false", "true"):
        cfg = tiny_train_config(
            f"run_{resident}", f"dataset.resident={resident}", "eval.plots=false"
        )
        datamodule = build_datamodule(cfg)
        loader = datamodule.train_dataloader()
        assert ("features" in next(iter(loader))) == (resident == "false")
        metrics[resident] = train_and_evaluate(cfg)
    assert metrics["true"] == metrics["false"]


@pytest.mark.requires_cuda
def test_training_on_the_gpu_uses_the_fast_path(tiny_train_config, tmp_path: Path) -> None:
    cfg = tiny_train_config("gpu", "trainer=gpu", *TINY, "eval.plots=false")
    datamodule = build_datamodule(cfg)
    metrics = train_and_evaluate(cfg)
    assert metrics is not None and 0 <= metrics["global"]["mof"] <= 100
    assert datamodule.resolved_pad_to() == "patch"  # not attached to a GPU trainer here
    model = build_model(cfg.model, datamodule.spec, "cuda").cuda()
    assert model.micro_batch_joint_frames is None


@pytest.mark.requires_cuda
def test_gpu_step_matches_the_cpu_step() -> None:
    cfg = compose_config("train", ["model.encoder.hidden_channels=8", "model.latent_dim=4",
                                   "model.encoder.dropout=0.0"])  # fmt: skip
    batch = PadCollate(4)(_items(_records()))
    logged = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = build_model(cfg.model, data_spec(num_classes=3, patch_size=4), device).to(device)
        moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        logged[device] = (
            model.train().accumulate_batch(moved, lambda lo, last: lo.backward()).logged
        )
    for key, value in logged["cpu"].items():
        torch.testing.assert_close(logged["cuda"][key].cpu(), value, rtol=1e-4, atol=1e-5)
