"""HiST-VQ components: encoder, patching, quantizers, decoders, losses and the module."""

from histvq.models.factory import build_model
from histvq.models.histvq import HiSTVQ, ModelOutput

__all__ = ["HiSTVQ", "ModelOutput", "build_model"]
