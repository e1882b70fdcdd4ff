"""Train HiST-VQ (or SMQ) and evaluate it on every sequence (transductive protocol).

python train.py                                # HiST-VQ on the embedded synthetic data
python train.py dataset=babel2 model.alpha=3   # any Hydra override
python train.py -m model.levels=1,2,3          # a multirun sweep
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import hydra
from omegaconf import DictConfig

from histvq.cluster import pin_shared_run_id
from histvq.errors import run_reporting_errors
from histvq.pipeline import train_and_evaluate
from histvq.runtime import quiet_third_party_notices

quiet_third_party_notices()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(lambda: train_and_evaluate(cfg))


if __name__ == "__main__":
    # Processes of one multi-node run (srun, torchrun) share one run folder.
    pin_shared_run_id()
    main()
