"""Train HiST-VQ (or SMQ) and evaluate it on every sequence (transductive protocol).

python train.py                                # HiST-VQ on the embedded synthetic data
python train.py dataset=babel2 model.alpha=3   # any Hydra override
python train.py -m model.levels=1,2,3          # a multirun sweep
python train.py -m +sweeps=search_hugadb       # an Optuna search (main returns the objective)
python train.py experiment=hugadb_paper        # a preset (conf/experiment/)
"""

from histvq.apps import train

if __name__ == "__main__":
    train()
