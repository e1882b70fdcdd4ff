"""The names results are known by, in one torch-free, numpy-free place.

Metric keys, matchings and pairing conventions as they appear in ``metrics.json``, in logs
and in reports; the run files they live in; and how a predicted cluster that no label was
matched to is named, so every table, plot and prediction file says the same.
"""

from __future__ import annotations

METRIC_KEYS: tuple[str, ...] = ("mof", "edit", "f1@10", "f1@25", "f1@50", "jsd")
# The scores the paper's accuracy tables report (all but the segment-length bias JSD).
SCORE_KEYS: tuple[str, ...] = METRIC_KEYS[:5]
METRIC_NAMES: dict[str, str] = {
    "mof": "MoF",
    "edit": "Edit",
    "f1@10": "F1@10",
    "f1@25": "F1@25",
    "f1@50": "F1@50",
    "jsd": "JSD",
}
THRESHOLDS: tuple[float, ...] = (0.10, 0.25, 0.50)
MATCHINGS: tuple[str, ...] = ("global", "local")
UNMATCHED: tuple[str, ...] = ("square_assignment", "own_identity")

METRICS_FILE = "metrics.json"
CLUSTER_MAPPING_FILE = "cluster_mapping.json"
# in an evaluate.py folder: the prepared dataset its predictions are of
EVALUATED_DATASET_FILE = "evaluated_dataset.yaml"


def unmatched_id(cluster: int) -> int:
    """The mapped value of a cluster that no label was assigned to: ``-1 - cluster``.

    It is negative, so it never equals a label id, and distinct per cluster, so two unmatched
    clusters never merge into one segment. Works elementwise on numpy arrays too.
    """
    return -1 - cluster


def cluster_name(cluster: int) -> str:
    """How a cluster without a label is named in prediction files and plots."""
    return f"cluster_{int(cluster)}"


def mapped_name(value: int, label_names: dict[int, str]) -> str:
    """Name of a mapped prediction value: its label's name, or :func:`cluster_name` of the
    cluster when the value is :func:`unmatched_id` of one."""
    if value >= 0:
        return label_names.get(value, str(value))
    return cluster_name(unmatched_id(value))
