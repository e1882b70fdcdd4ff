"""Train HiST-VQ (or SMQ) and evaluate it on every sequence (transductive protocol).

python train.py                                # HiST-VQ on the embedded synthetic data
python train.py dataset=babel2 model.alpha=3   # any Hydra override
python train.py -m model.levels=1,2,3          # a multirun sweep
python train.py -m +sweeps=search_hugadb       # an Optuna search (main returns the objective)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

from histvq.cli import preflight
from histvq.cluster import pin_shared_run_id

if __name__ == "__main__":
    # Before the heavy imports: a missing launcher/sweeper plugin or a config Hydra cannot
    # compose (unknown dataset=..., unknown key) is one line (Hydra's own report is long).
    preflight(sys.argv[1:], Path(__file__).resolve().parent, "train")

import hydra
from omegaconf import DictConfig

from histvq.errors import run_reporting_errors
from histvq.pipeline import train_for_objective
from histvq.runtime import quiet_third_party_notices

quiet_third_party_notices()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Returns ``cfg.objective`` of the run's metrics (what a sweeper such as Optuna sees)."""
    return run_reporting_errors(lambda: train_for_objective(cfg))


if __name__ == "__main__":
    # Processes of one multi-node run (srun, torchrun) share one run folder.
    pin_shared_run_id()
    main()
