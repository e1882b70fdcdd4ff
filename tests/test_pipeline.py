"""End to end: config composition, training, determinism, evaluate.py, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import CONF, TINY, compose_config, data_spec, run_script
from omegaconf import OmegaConf

from histvq.data.datamodules import LayoutDataModule
from histvq.errors import ConfigError
from histvq.evaluation import format_metrics_table
from histvq.figures import load_run_labels
from histvq.metrics import METRIC_KEYS
from histvq.models import HiSTVQ, build_model
from histvq.pipeline import evaluate_checkpoint, train_and_evaluate

DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))
LOGGERS = sorted(p.stem for p in (CONF / "logger").glob("*.yaml"))
SPEC = data_spec()


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_config_composes_and_instantiates(dataset: str) -> None:
    overrides = [f"dataset={dataset}"]
    if dataset == "folder":
        overrides += ["dataset.name=somewhere", "dataset.patch_size=10"]
    cfg = compose_config("train", overrides)
    from hydra.utils import instantiate

    module = instantiate(cfg.dataset)
    assert isinstance(module, LayoutDataModule)
    assert module.patch_size == cfg.dataset.patch_size


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dataset", ["synthetic", "hugadb", "babel2"])
def test_every_model_config_builds(model: str, dataset: str) -> None:
    cfg = compose_config("train", [f"model={model}", f"dataset={dataset}"])
    module = build_model(cfg.model, SPEC)
    assert isinstance(module, HiSTVQ)
    assert module.quantizer.levels == cfg.model.levels


@pytest.mark.parametrize("name", TRAINERS)
def test_every_trainer_and_logger_config_composes(name: str) -> None:
    cfg = compose_config("train", [f"trainer={name}"])
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    assert cfg.trainer.use_distributed_sampler is False
    for logger in LOGGERS:
        compose_config("train", [f"logger={logger}"])


def test_paper_defaults_and_dataset_settings() -> None:
    cfg = compose_config("train", ["dataset=hugadb"])
    assert (cfg.model.levels, cfg.model.alpha, cfg.model.decay) == (2, 2, 0.5)
    assert list(cfg.model.dead_code_thresholds) == [3, 1]
    assert (cfg.model.lambda_commit, cfg.model.lambda_spat, cfg.model.lambda_temp) == (
        1.0,
        0.001,
        0.2,
    )
    assert (cfg.model.spatial_input, cfg.model.temporal_input) == ("top", "first")
    assert cfg.model.optimizer.lr == 5e-4
    assert cfg.model.encoder.hidden_channels == 128
    assert (cfg.dataset.patch_size, cfg.dataset.batch_size) == (60, 8)
    babel = compose_config("train", ["dataset=babel2", "model.alpha=3"])
    assert (babel.dataset.patch_size, babel.dataset.batch_size, babel.model.lambda_temp) == (
        30,
        32,
        0.02,
    )
    assert babel.model.alpha == 3
    lara = compose_config("train", ["dataset=lara"])
    assert (lara.dataset.patch_size, lara.dataset.num_joints) == (50, 22)


def test_smq_is_one_level_without_temporal_decoder() -> None:
    cfg = compose_config("train", ["model=smq", "dataset=babel3"])
    assert cfg.model.levels == 1 and cfg.model.lambda_temp == 0.0
    module = build_model(cfg.model, SPEC)
    assert module.temporal_decoder is None
    assert [b.num_codes for b in module.quantizer.codebooks] == [4]
    histvq = build_model(compose_config("train", ["dataset=babel3"]).model, SPEC)
    assert histvq.temporal_decoder is not None
    assert [b.num_codes for b in histvq.quantizer.codebooks] == [8, 4]


def test_zero_loss_weights_drop_their_decoders() -> None:
    cfg = compose_config("train", ["model.lambda_temp=0", "model.lambda_spat=0"])
    module = build_model(cfg.model, SPEC)
    assert module.temporal_decoder is None and module.spatial_decoder is None


def test_unknown_config_values_are_config_errors() -> None:
    for override, key in [
        ("model.distance=cosine", "distance"),
        ("model.spatial_input=middle", "spatial_input"),
        ("model.levels=0", "levels"),
        ("+model.encoder.width=3", "model.encoder"),
    ]:
        cfg = compose_config("train", [override])
        with pytest.raises(ConfigError, match=key):
            build_model(cfg.model, SPEC)


def test_training_writes_run_outputs_and_is_deterministic(tiny_train_config) -> None:
    first = tiny_train_config("a")
    metrics = train_and_evaluate(first)
    out = Path(first.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert set(saved) == {"global", "local", "num_sequences", "num_frames"}
    for matching in ("global", "local"):
        assert set(saved[matching]) == set(METRIC_KEYS)
        assert all(0.0 <= v <= 100.0 for v in saved[matching].values())
    assert saved["num_sequences"] == 4
    names = sorted(
        p.stem for p in (Path(first.paths.data_dir) / "synthetic" / "features").glob("*.npy")
    )
    predictions = sorted((out / "predictions").glob("*.txt"))
    assert [p.stem for p in predictions] == names
    frames = sum(len(p.read_text().splitlines()) for p in predictions)
    assert frames == saved["num_frames"]
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "plots" / "segment_lengths.png").is_file()
    assert len(list((out / "plots" / "sequences").glob("*.png"))) == 2
    again = train_and_evaluate(tiny_train_config("b"))
    assert again == metrics
    ckpt_a = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    ckpt_b = torch.load(
        Path(first.paths.output_dir).parent / "b" / "checkpoints" / "last.ckpt", weights_only=False
    )["state_dict"]
    assert all(torch.equal(ckpt_a[k], ckpt_b[k]) for k in ckpt_a)


def test_other_seed_gives_other_model(tiny_train_config) -> None:
    a = train_and_evaluate(tiny_train_config("a"))
    b = train_and_evaluate(tiny_train_config("b", "seed=1"))
    out = Path(tiny_train_config("a").paths.output_dir).parent
    wa = torch.load(out / "a/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    wb = torch.load(out / "b/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    assert not torch.equal(
        wa["encoder.tcn.stages.0.conv_in.weight"], wb["encoder.tcn.stages.0.conv_in.weight"]
    )
    assert a["num_frames"] == b["num_frames"]  # the data does not follow the training seed


def test_evaluate_reproduces_training_metrics_and_resume(tiny_train_config, tmp_path: Path) -> None:
    train_cfg = tiny_train_config("train")
    metrics = train_and_evaluate(train_cfg)
    ckpt = Path(train_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    eval_cfg = compose_config(
        "evaluate",
        [f"ckpt_path={ckpt}", f"paths.output_dir={tmp_path / 'eval'}", "eval.max_sequence_plots=1"],
    )
    evaluated = evaluate_checkpoint(eval_cfg)
    assert evaluated == metrics
    eval_preds = sorted((tmp_path / "eval" / "predictions").glob("*.txt"))
    train_preds = sorted((Path(train_cfg.paths.output_dir) / "predictions").glob("*.txt"))
    assert [p.read_text() for p in eval_preds] == [p.read_text() for p in train_preds]
    # the evaluation folder names its dataset, so the figures read its ground truth
    labels = load_run_labels("eval", tmp_path / "eval")
    assert labels.patch_size == train_cfg.dataset.patch_size
    assert sorted(labels.predictions) == [p.stem for p in eval_preds]
    truth = Path(train_cfg.dataset.data_dir) / train_cfg.dataset.name / "groundTruth"
    for name, target in labels.targets.items():
        expected = (truth / f"{name}.txt").read_text().split()
        assert [labels.label_names[int(i)] for i in target] == expected
    # resuming from the checkpoint continues training up to the new max_epochs
    resumed = tiny_train_config("resumed", f"ckpt_path={ckpt}", "trainer.max_epochs=3")
    train_and_evaluate(resumed)
    state = torch.load(
        Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False
    )
    original = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == original["epoch"] + 1
    assert state["global_step"] == original["global_step"] * 3 // 2


def test_metrics_table_format() -> None:
    table = format_metrics_table(
        {
            "global": dict.fromkeys(METRIC_KEYS, 12.345),
            "local": dict.fromkeys(METRIC_KEYS, 50.0),
            "num_sequences": 3,
            "num_frames": 1234,
        },
        title="t",
    )
    lines = table.splitlines()
    assert lines[0] == "t" and "3 sequences, 1,234 frames" in lines[1]
    assert lines[2].split() == ["matching", "MoF", "Edit", "F1@10", "F1@25", "F1@50", "JSD"]
    assert lines[3].split() == ["global", *["12.3"] * 6]


def test_cli_train_then_evaluate(tmp_path: Path) -> None:
    """The real entry points: train.py writes its run folder, evaluate.py reproduces it."""
    run_dir = tmp_path / "run"
    result = run_script(
        ["train.py", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={run_dir}", *TINY]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "matching" in result.stdout and "global" in result.stdout
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.model.levels == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = run_script(
        [
            "evaluate.py",
            f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
            f"hydra.run.dir={tmp_path / 'eval'}",
            "eval.plots=false",
        ]
    )
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.distance=cosine"], "model.distance: unknown value 'cosine'"),
        (
            ["dataset=folder", "dataset.name=nowhere", "dataset.patch_size=5"],
            "prepared dataset not found",
        ),
        (["dataset=babel2"], "python -m histvq.prepare babel --subset 2"),
    ],
)
def test_cli_reports_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_script(
        ["train.py", f"paths.data_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", *args]
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr


def test_babel_pickles_prepare_on_first_use_and_train_with_alpha_3(tmp_path: Path) -> None:
    """`python train.py dataset=babel2 model.alpha=3` on BABEL subset pickles: the DataModule
    prepares them from dataset.raw_dir, and alpha=3 gives a 3K-code first level."""
    from _raw_fixtures import babel_sequence, write_babel

    raw = tmp_path / "raw"
    labels = [[0] * 40 + [1] * 30 + [4] * 20, [3] * 50 + [2] * 45, [4] * 60 + [1] * 10]
    write_babel(
        raw / "train_split2.pkl",
        ["a", "b"],
        [babel_sequence(90, 0), babel_sequence(95, 1)],
        labels[:2],
    )
    write_babel(raw / "val_split2.pkl", ["c"], [babel_sequence(70, 2)], labels[2:])
    cfg = compose_config(
        "train",
        [
            "dataset=babel2",
            "model.alpha=3",
            f"dataset.raw_dir={raw}",
            f"paths.data_dir={tmp_path / 'data'}",
            f"paths.output_dir={tmp_path / 'run'}",
            "dataset.batch_size=2",
            "model.encoder.hidden_channels=8",
            "model.latent_dim=4",
            "model.decoder.temporal.hidden=16",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "callbacks.segmentation_evaluation.plots=false",
        ],
    )
    metrics = train_and_evaluate(cfg)
    prepared = tmp_path / "data" / "babel2"
    # sequence c is 86 % 'none' and is dropped; a and b remain, in millimetres
    assert sorted(p.stem for p in (prepared / "features").glob("*.npy")) == ["a", "b"]
    assert metrics["num_sequences"] == 2 and metrics["num_frames"] == 185
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    k = len({0, 1, 4, 3, 2})  # labels present in the kept sequences
    assert state["state_dict"]["quantizer.codebooks.0.codes"].shape[0] == 3 * k
    assert state["state_dict"]["quantizer.codebooks.1.codes"].shape[0] == k


def test_bf16_mixed_precision_keeps_the_quantizer_in_float32(tiny_train_config) -> None:
    """trainer.precision=bf16-mixed (CPU autocast here, CUDA on GPUs): encoder and decoders
    run in bf16, codebooks, distances and EMA statistics stay float32."""
    cfg = tiny_train_config("bf16", "trainer.precision=bf16-mixed")
    metrics = train_and_evaluate(cfg)
    assert metrics is not None and 0 <= metrics["global"]["mof"] <= 100
    state = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    books = {k: v for k, v in state["state_dict"].items() if k.startswith("quantizer.codebooks")}
    assert books and all(v.dtype == torch.float32 for v in books.values())
    from histvq.models.patching import patchify

    model = build_model(cfg.model, SPEC).train()
    features = torch.randn(2, 3, 12, 5, 1)
    mask = torch.ones(2, 12, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = model.encoder(features, mask)
        patches = patchify(tokens, mask, 6)
        out = model.quantizer(patches.values, patches.frame_mask, patches.valid)
        model.quantizer.update_mode = "after_backward"
        later = model.quantizer(patches.values, patches.frame_mask, patches.valid)
    assert tokens.dtype == torch.bfloat16
    assert out.quantized[0].dtype == torch.float32 and out.commitment[0].dtype == torch.float32
    assert all(b.codes.dtype == torch.float32 for b in model.quantizer.codebooks)
    assert later.statistics is not None and later.statistics.sums[0].dtype == torch.float32


def test_periodic_evaluation_logs_metrics_every_n_epochs(tiny_train_config) -> None:
    cfg = tiny_train_config(
        "periodic", "trainer.max_epochs=3", "callbacks.segmentation_evaluation.every_n_epochs=1"
    )
    train_and_evaluate(cfg)
    import csv

    rows = list(csv.DictReader((Path(cfg.paths.output_dir) / "csv" / "metrics.csv").open()))
    evaluated = sorted({int(r["epoch"]) for r in rows if r.get("eval/global/mof") and r["epoch"]})
    assert evaluated == [0, 1]  # after epochs 1 and 2; the final evaluation follows training
    final = [r for r in rows if r.get("eval/local/f1@50") and not r.get("epoch")]
    assert final, "the final evaluation is logged too"


def test_wandb_runs_are_finished_and_failed_jobs_marked_failed(
    tiny_train_config, monkeypatch
) -> None:
    import wandb

    exit_codes: list[int] = []
    monkeypatch.setattr(wandb, "run", object())
    monkeypatch.setattr(wandb, "finish", lambda exit_code=0: exit_codes.append(exit_code))
    train_and_evaluate(tiny_train_config("ok", "trainer.max_epochs=1"))
    with pytest.raises(ConfigError):
        train_and_evaluate(tiny_train_config("bad", "model.distance=cosine"))
    assert exit_codes == [0, 1]
