"""The command-line programs: ``train.py`` / ``histvq-train``, ``evaluate.py`` /
``histvq-eval``, ``histvq-prepare``, ``histvq-predict`` and ``histvq-report``.

Each program first checks its command line (:func:`histvq.cli.preflight`: a missing Hydra
plugin or a config Hydra cannot compose is one line) and then runs under Hydra with the
project's ``conf/`` folder; user errors end as one line and exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))

import hydra  # noqa: E402  (after PROJECT_ROOT, which the configs read)
from omegaconf import DictConfig  # noqa: E402

from histvq.cli import preflight  # noqa: E402
from histvq.cluster import pin_shared_run_id  # noqa: E402
from histvq.errors import run_reporting_errors  # noqa: E402
from histvq.pipeline import evaluate_checkpoint, train_for_objective  # noqa: E402
from histvq.runtime import quiet_third_party_notices  # noqa: E402

CONF = str(ROOT / "conf")


@hydra.main(config_path=CONF, config_name="train", version_base="1.3")
def _train(cfg: DictConfig) -> float | None:
    """Returns ``cfg.objective`` of the run's metrics (what a sweeper such as Optuna sees)."""
    return run_reporting_errors(lambda: train_for_objective(cfg))


@hydra.main(config_path=CONF, config_name="evaluate", version_base="1.3")
def _evaluate(cfg: DictConfig) -> None:
    run_reporting_errors(lambda: evaluate_checkpoint(cfg))


def train() -> None:
    """Train HiST-VQ (or SMQ) and evaluate it on every sequence (``python train.py``)."""
    quiet_third_party_notices()
    preflight(sys.argv[1:], ROOT, "train")
    pin_shared_run_id()  # processes of one multi-node run (srun, torchrun) share a folder
    _train()


def evaluate() -> None:
    """Evaluate a trained checkpoint (``python evaluate.py ckpt_path=...``)."""
    quiet_third_party_notices()
    preflight(sys.argv[1:], ROOT, "evaluate")
    _evaluate()


def prepare() -> None:
    """Prepare a raw dataset (``python -m histvq.prepare``)."""
    from histvq.prepare import main

    raise SystemExit(run_reporting_errors(main))


def predict() -> None:
    """Segment new recordings (``python -m histvq.predict``)."""
    from histvq.predict.app import main

    main()


def report() -> None:
    """Tables of run and sweep results (``python -m histvq.report``)."""
    from histvq.report.cli import main

    raise SystemExit(run_reporting_errors(main))
