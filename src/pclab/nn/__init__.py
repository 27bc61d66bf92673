"""PC-ready network modules."""

from .pcn import PCN, count_matmul_flops, layer_maps, mlp, resnet

__all__ = ["PCN", "mlp", "resnet", "layer_maps", "count_matmul_flops"]
