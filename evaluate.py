"""Evaluate a trained checkpoint: rebuilds model and data from the run's saved config.

python evaluate.py ckpt_path=outputs/runs/train/<run>/checkpoints/last.ckpt
python evaluate.py ckpt_path=... dataset=hugadb   # evaluate on another prepared dataset
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

from histvq.cli import preflight

if __name__ == "__main__":
    # A missing launcher plugin or a config Hydra cannot compose: one line.
    preflight(sys.argv[1:], Path(__file__).resolve().parent, "evaluate")

import hydra
from omegaconf import DictConfig

from histvq.errors import run_reporting_errors
from histvq.pipeline import evaluate_checkpoint
from histvq.runtime import quiet_third_party_notices

quiet_third_party_notices()


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(lambda: evaluate_checkpoint(cfg))


if __name__ == "__main__":
    main()
