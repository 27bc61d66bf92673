"""PC-ready network modules: the :class:`AbstractPCN` interface and its architectures."""

from .base import AbstractPCN, Activities
from .conv import ConvPCN, convnet
from .dense import PCN, count_matmul_flops, layer_maps, mlp, resnet
from .transformer import TransformerBlock, TransformerPCN, transformer

__all__ = ["AbstractPCN", "Activities", "PCN", "mlp", "resnet", "layer_maps", "count_matmul_flops",
           "ConvPCN", "convnet", "TransformerPCN", "TransformerBlock", "transformer"]
