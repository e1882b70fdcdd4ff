"""Quantizers: HiST-VQ's hierarchy of EMA codebooks (:mod:`.hierarchical`), one codebook
level (:mod:`.codebook`), patch distances (:mod:`.distances`), the finite-scalar alternative
(:mod:`.fsq`) and what a quantizer hands out (:mod:`.outputs`)."""

from histvq.models.quantizers.codebook import SMOOTHINGS, EMACodebook, kmeans
from histvq.models.quantizers.distances import (
    DISTANCES,
    Distance,
    direct_patch_distances,
    patch_distances,
)
from histvq.models.quantizers.fsq import FSQQuantizer, fsq_grid
from histvq.models.quantizers.hierarchical import (
    INITS,
    UPDATES,
    HierarchicalQuantizer,
    codebook_sizes,
)
from histvq.models.quantizers.outputs import (
    BottomAssignment,
    CodebookStatistics,
    QuantizerOutput,
    ValidPatches,
)

__all__ = [
    "DISTANCES",
    "INITS",
    "SMOOTHINGS",
    "UPDATES",
    "BottomAssignment",
    "CodebookStatistics",
    "Distance",
    "EMACodebook",
    "FSQQuantizer",
    "HierarchicalQuantizer",
    "QuantizerOutput",
    "ValidPatches",
    "codebook_sizes",
    "direct_patch_distances",
    "fsq_grid",
    "kmeans",
    "patch_distances",
]
