"""Comparison figures of trained runs: ``python -m histvq.figures``.

::

    python -m histvq.figures --run SMQ=<run dir> --run HiST-VQ=<run dir> \\
        --sequence HuGaDB_v1_various_01_00 [--sequence ...] --out docs/figures [--prefix hugadb]

writes ``<prefix>_segment_lengths.png`` (the segment-length distributions of the ground
truth and of every run over all sequences, on a log length axis, as the paper's Fig. 3),
``<prefix>_segments.csv`` (the same as numbers: segments per sequence, their ratio to the
ground truth's, median and 10th/90th percentile lengths in frames, and the shares of
predicted boundaries within one patch of a true boundary and of true boundaries within one
patch of a predicted one), ``<prefix>_stray_boundaries.csv`` (per run and true label, the
predicted boundaries farther than one patch from any true boundary: which activities a
model cuts into pieces),
``<prefix>_patch_oracle.csv`` (the scores of the ground truth's majority label per patch of
the runs' patch size: what the patch grid alone costs, the ceiling of a model that labels
whole patches, and how much a patch's true activity says about its timestamp, the temporal
loss's target), ``<prefix>_short_segments.csv`` (every run's scores as it is and with its
segments of at most one patch merged into a neighbour: what the short segments cost it) and
``<prefix>_<sequence>.png`` per ``--sequence`` (the ground truth with every run's
segmentation stacked under it, as the paper's Fig. 4). Runs are training run folders or
``evaluate.py`` folders: their ``predictions/<sequence>.txt`` (labels after the global
matching) are compared with the ground truth of the prepared dataset named in their
``.hydra/config.yaml`` (an evaluation's: its ``evaluated_dataset.yaml``).
"""

from histvq.figures.draw import draw
from histvq.figures.run_labels import RunLabels, load_run_labels
from histvq.figures.tables import (
    patch_oracle_table,
    segment_table,
    short_segment_table,
    stray_boundary_table,
    write_table,
)

__all__ = [
    "RunLabels",
    "draw",
    "load_run_labels",
    "patch_oracle_table",
    "segment_table",
    "short_segment_table",
    "stray_boundary_table",
    "write_table",
]
