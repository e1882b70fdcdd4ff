"""Evaluate a trained checkpoint: rebuilds model and data from the run's saved config.

python evaluate.py ckpt_path=outputs/runs/train/<run>/checkpoints/last.ckpt
python evaluate.py ckpt_path=... dataset=hugadb   # evaluate on another prepared dataset
"""

from histvq.apps import evaluate

if __name__ == "__main__":
    evaluate()
