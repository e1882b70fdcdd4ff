"""Evaluate a trained checkpoint: rebuilds model and data from the run's saved config.

python evaluate.py ckpt_path=outputs/runs/train/<run>/checkpoints/last.ckpt
python evaluate.py ckpt_path=... dataset=hugadb   # evaluate on another prepared dataset
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

from histvq.cluster import exit_if_plugin_missing

if __name__ == "__main__":
    # A launcher whose Hydra plugin is missing: one line naming the package.
    exit_if_plugin_missing(sys.argv[1:], Path(__file__).resolve().parent)

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
