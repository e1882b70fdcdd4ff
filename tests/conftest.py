"""Shared helpers: composing the project's Hydra configs in-process for tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning  # noqa: F401  (its log handler binds the real stderr, not a test's capture)
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from histvq.spec import DataSpec

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("PROJECT_ROOT", str(ROOT))

# A synthetic dataset and model small enough to train for two epochs in seconds.
TINY = (
    "dataset.generator.num_sequences=4",
    "dataset.generator.max_actions=3",
    "dataset.generator.max_seconds=2.0",
    "model.encoder.hidden_channels=8",
    "model.latent_dim=4",
    "model.decoder.temporal.hidden=16",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.segmentation_evaluation.max_sequence_plots=2",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``requires_cuda`` are skipped where no CUDA device is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


def data_spec(num_classes: int = 4, patch_size: int = 6, num_joints: int = 5) -> DataSpec:
    """A small (C=3, V, M=1) data description for building models without data."""
    return DataSpec(
        num_channels=3, num_joints=num_joints, num_persons=1, num_classes=num_classes,
        patch_size=patch_size, label_names={i: f"a{i}" for i in range(num_classes)},
    )  # fmt: skip


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, as the entry points would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.fixture
def tiny_train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Factory of tiny training configs writing under ``tmp_path`` (data shared per test)."""

    def make(run: str = "run", *overrides: str) -> DictConfig:
        return compose_config(
            "train",
            [
                f"paths.data_dir={tmp_path / 'data'}",
                f"paths.output_dir={tmp_path / run}",
                "logger=csv",
                *TINY,
                *overrides,
            ],
        )

    return make


def run_script(args: Sequence[str], cwd: Path = ROOT, timeout: int = 300):
    """Run a project entry point in a fresh interpreter (returns CompletedProcess)."""
    import subprocess

    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
