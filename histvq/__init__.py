"""histvq: unsupervised skeleton-based temporal action segmentation (HiST-VQ, SMQ)."""

__version__ = "0.1.0"
