"""PC-ready network modules: the :class:`AbstractPCN` interface and its architectures."""

from .base import AbstractPCN, AbstractWrappedPCN, Activities
from .conv import ConvPCN, convnet
from .dense import PCN, count_matmul_flops, layer_maps, mlp, resnet
from .transformer import TransformerBlock, TransformerPCN, transformer

__all__ = ["AbstractPCN", "AbstractWrappedPCN", "Activities", "PCN", "mlp", "resnet", "layer_maps", "count_matmul_flops",
           "ConvPCN", "convnet", "TransformerPCN", "TransformerBlock", "transformer",
           "OrthogonalConv", "orth_penalty", "orth_layers", "OrthConvNet", "orth_convnet", "train_classifier",
           "certify", "Certificate", "certified_radius"]


# The orthogonal-conv layer and net use pclab.theory.orthogonal, which imports the models
# above: export them lazily to keep the import graph acyclic.
_LAZY = {"OrthogonalConv": "orthogonal_conv", "orth_penalty": "orthogonal_conv", "orth_layers": "orthogonal_conv",
         "OrthConvNet": "orthogonal_net", "orth_convnet": "orthogonal_net", "train_classifier": "orthogonal_net",
         "certify": "orthogonal_net", "Certificate": "orthogonal_net", "certified_radius": "orthogonal_net"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
