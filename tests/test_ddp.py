"""Distributed training: codebook synchronisation, samplers, and multi-process runs on CPU."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY, compose_config, run_script

from histvq.data.sampler import ShardedEvalBatchSampler, TrainBatchSampler
from histvq.models.quantizers import HierarchicalQuantizer
from histvq.pipeline import evaluate_checkpoint, train_and_evaluate

STEPS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """STEPS batches of 4 sequences (values, frame_mask, valid) with padding and a drift that
    makes codes die, so the run exercises EMA updates and dead-code re-seeding."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for step in range(STEPS):
        values = torch.randn(4, 6, 3, 5, generator=generator) + step * 0.5
        frame_mask = torch.ones(4, 6, 3, dtype=torch.bool)
        frame_mask[1, 4:] = False
        frame_mask[3, 5, 1:] = False
        values = values * frame_mask[..., None]
        batches.append((values, frame_mask, frame_mask.any(-1)))
    return batches


def _quantizer(update: str) -> HierarchicalQuantizer:
    torch.manual_seed(0)
    return HierarchicalQuantizer(
        num_classes=3, patch_size=3, dim=5, levels=2, alpha=2, dead_code_thresholds=[3, 1],
        seed=7, update=update,
    ).train()  # fmt: skip


def _step(q: HierarchicalQuantizer, values, frame_mask, valid) -> dict[str, torch.Tensor]:
    """One training step of the quantizer in either update order; returns its usage."""
    out = q(values, frame_mask, valid)
    return out.usage if out.statistics is None else q.update(out.statistics)


def _state(q: HierarchicalQuantizer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in q.state_dict().items()}


def _ddp_worker(rank: int, world: int, port: int, out: str, update: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    q = _quantizer(update)
    dead = 0.0
    for values, frame_mask, valid in _batches():
        half = slice(2 * rank, 2 * rank + 2)
        stats = _step(q, values[half], frame_mask[half], valid[half])
        dead += float(stats["level1/dead_codes"] + stats["level2/dead_codes"])
    torch.save({"state": _state(q), "dead": dead}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.parametrize("update", ["before_output", "after_backward"])
def test_codebooks_identical_across_ranks_and_equal_to_one_process(
    tmp_path: Path, update: str
) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), update), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["dead"] > 0, "the scenario must exercise dead-code re-seeding"
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key
    single = _quantizer(update)
    for values, frame_mask, valid in _batches():
        _step(single, values, frame_mask, valid)
    for key, value in _state(single).items():
        torch.testing.assert_close(ranks[0]["state"][key], value, rtol=1e-5, atol=1e-5, msg=key)


@pytest.mark.parametrize("replicas", [1, 2, 3])
@pytest.mark.parametrize("bucket", [True, False])
def test_bucket_sampler_covers_every_sequence_each_epoch(replicas: int, bucket: bool) -> None:
    lengths = [
        int(x) for x in torch.randint(50, 500, (23,), generator=torch.Generator().manual_seed(1))
    ]
    samplers = [
        TrainBatchSampler(lengths, 4, bucket=bucket, seed=3, num_replicas=replicas, rank=r)
        for r in range(replicas)
    ]
    orders = []
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert len({len(batches) for batches in per_rank}) == 1  # same step count on every rank
        assert all(len(batches) == len(s) for batches, s in zip(per_rank, samplers, strict=True))
        seen = [i for batches in per_rank for batch in batches for i in batch]
        assert set(seen) == set(range(len(lengths)))
        # only the batches that pad the step count to a multiple of the replicas repeat
        assert len(seen) - len(lengths) < 4 * replicas
        orders.append([tuple(b) for batches in per_rank for b in batches])
    assert orders[0] != orders[1]  # reshuffled per epoch
    s0 = TrainBatchSampler(lengths, 4, bucket=bucket, seed=3, num_replicas=replicas)
    assert [tuple(b) for b in s0] == [
        tuple(b)
        for b in TrainBatchSampler(lengths, 4, bucket=bucket, seed=3, num_replicas=replicas)
    ]


def test_bucketing_reduces_padding() -> None:
    lengths = [
        int(x)
        for x in torch.randint(100, 10_000, (64,), generator=torch.Generator().manual_seed(2))
    ]

    def padded(bucket: bool) -> int:
        return sum(
            len(b) * max(lengths[i] for i in b)
            for b in TrainBatchSampler(lengths, 8, bucket=bucket, seed=0)
        )

    assert padded(True) < 0.75 * padded(False)
    assert padded(True) < 1.15 * sum(lengths)


@pytest.mark.parametrize("replicas", [1, 2, 5])
def test_eval_shards_hold_every_sequence_exactly_once(replicas: int) -> None:
    lengths = list(range(10, 30))
    seen = [
        i
        for r in range(replicas)
        for b in ShardedEvalBatchSampler(lengths, 3, num_replicas=replicas, rank=r)
        for i in b
    ]
    assert sorted(seen) == list(range(20))


@pytest.mark.ddp
def test_two_process_training_matches_single_process_evaluation(
    tiny_train_config, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """trainer=ddp_cpu (spawn, gloo): trains, evaluates every sequence once, and the metrics
    equal a single-process evaluation of its checkpoint. The four sequences make one
    evaluation batch, so rank 1's shard is empty: it joins the metric's gather without a
    "compute before update" warning."""
    cfg = tiny_train_config("ddp", "trainer=ddp_cpu", "trainer.devices=2")
    metrics = train_and_evaluate(cfg)
    assert "was called before the ``update`` method" not in capfd.readouterr().err
    run = Path(cfg.paths.output_dir)
    assert metrics is not None and metrics == json.loads((run / "metrics.json").read_text())
    assert metrics["num_sequences"] == 4
    single = evaluate_checkpoint(
        compose_config(
            "evaluate",
            [
                f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                f"paths.output_dir={tmp_path / 'eval'}",
                "eval.plots=false",
            ],
        )
    )
    assert single == metrics


WORKER_EXIT = """
import torch, torch.distributed as dist
from types import SimpleNamespace
from histvq.callbacks.runtime import ProcessSetup

dist.init_process_group("gloo", init_method="tcp://127.0.0.1:{port}", rank=0, world_size=1)
destroy = dist.destroy_process_group
def reporting_destroy(*args, **kwargs):
    destroy(*args, **kwargs)
    print("destroyed; initialized:", dist.is_initialized())
dist.destroy_process_group = reporting_destroy
trainer = SimpleNamespace(world_size={world}, strategy=SimpleNamespace(root_device=torch.device("cpu")))
for stage in ("fit", "validate"):  # set up twice: still one teardown
    ProcessSetup(keep_cpu_memory=False).setup(trainer, None, stage)
print("training done")
"""


@pytest.mark.parametrize("world", [1, 2])
def test_training_process_destroys_its_process_group_at_exit(world: int) -> None:
    """A process of a multi-process run tears its process group down when it exits (once);
    a single-process run's is left alone."""
    script = WORKER_EXIT.format(port=_free_port(), world=world)
    result = run_script(["-c", script], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    expected = ["destroyed; initialized: False"] if world > 1 else []
    assert lines == ["training done", *expected]


@pytest.mark.ddp
def test_subprocess_ddp_under_multirun_creates_no_extra_folders(tmp_path: Path) -> None:
    """strategy=ddp re-runs the command line for rank 1; under -m that must not start a
    second sweep, and all files land in the job's own folder."""
    sweep = tmp_path / "sweep"
    result = run_script(
        [
            "train.py",
            "-m",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
            f"paths.log_dir={tmp_path / 'logs'}",
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "trainer.strategy.start_method=popen",
            "seed=0,1",
            *TINY,
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "logs").exists(), "a child process created its own run folder"
    for job in ("0", "1"):
        assert (sweep / job / "metrics.json").is_file()
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
