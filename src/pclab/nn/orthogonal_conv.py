r"""An orthogonal-regularised convolution layer (circular padding, stride) and its penalty.

``OrthogonalConv`` is a strided circular convolution y = 𝒦x + b (conventions of
:mod:`pclab.theory.orthogonal`: kernel (M, C, k, …, k), odd k, centred cross-correlation,
input (…, C, n, …) with S | n). Its :meth:`~OrthogonalConv.regularizer` is Wang et al.'s
L_orth(K) (arXiv 1911.12207) with the max(0, M − C·S^d) correction of arXiv 2108.05623, so that
L_orth = 0 iff 𝒦 is orthogonal (row case M ≤ C·S^d: 𝒦𝒦ᵀ = I; column case: 𝒦ᵀ𝒦 = I) and
‖𝒦𝒦ᵀ − I‖²_F (or ‖𝒦ᵀ𝒦 − I‖²_F) = (n/S)^d · L_orth at every image size n ≥ 2k − 1.

To train with it, add ``lam * orth_penalty(model)`` to any loss: :func:`orth_penalty` walks the
model's pytree and sums L_orth over every ``OrthogonalConv`` it contains::

    loss = cross_entropy(model(x), y) + lam * orth_penalty(model)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..theory._random import normal_draw
from ..theory.orthogonal import (
    OrthogonalityErrors,
    check_size,
    circular_conv,
    orth_regularizer,
    orthogonal_conv_exists,
    orthogonality_case,
    orthogonality_errors,
    spectral_error_bound,
    spectral_norm,
)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= 1")
    return value


class OrthogonalConv(eqx.Module):
    """Strided circular convolution with an orthogonality regulariser.

    Attributes:
        weight: kernel (M, C, k, …, k), M = ``out_channels``, C = ``in_channels``, d spatial axes.
        bias: (M,) or ``None``; added to every position.
        stride: S (static); the image size must be divisible by it.
    """

    weight: Float[Array, "M C *k"]
    bias: Float[Array, "M"] | None
    stride: int = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, *,
                 key: jax.Array, dim: int = 2, use_bias: bool = True, dtype=None):
        """Kernel entries N(0, 1/(C k^d)) (variance-preserving), bias zero."""
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("dim", dim)):
            _positive_int(name, v)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} is not valid; expected an odd size (centred taps)")
        dtype = dtype or jnp.result_type(float)
        shape = (out_channels, in_channels) + (kernel_size,) * dim
        fan_in = in_channels * kernel_size**dim
        self.weight = normal_draw(key, shape, dtype) / jnp.sqrt(jnp.asarray(fan_in, dtype))
        self.bias = jnp.zeros((out_channels,), dtype) if use_bias else None
        self.stride = stride

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def kernel_size(self) -> int:
        return self.weight.shape[2]

    @property
    def dim(self) -> int:
        return self.weight.ndim - 2

    @property
    def case(self) -> str:
        """``"row"`` (M ≤ C·S^d, target 𝒦𝒦ᵀ = I) or ``"column"`` (target 𝒦ᵀ𝒦 = I)."""
        return orthogonality_case(self.in_channels, self.out_channels, self.stride, self.dim)

    @property
    def orthogonal_exists(self) -> bool:
        """Whether this architecture admits an exactly orthogonal kernel (arXiv 2108.05623)."""
        return orthogonal_conv_exists(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.dim)

    def __call__(self, x: Float[Array, "*B C *n"]) -> Float[Array, "*B M *m"]:
        """y = 𝒦x + b for x (…, C, n, …, n) with S | n; returns (…, M, n/S, …)."""
        n = x.shape[-1]
        check_size(n, self.stride, "image size")
        y = circular_conv(x, self.weight, self.stride)
        if self.bias is not None:
            y = y + self.bias.reshape((-1,) + (1,) * self.dim)
        return y

    def regularizer(self) -> Float[Array, ""]:
        """L_orth of the kernel (zero iff the layer is orthogonal at every image size)."""
        return orth_regularizer(self.weight, self.stride)

    def orthogonality_errors(self, n: int, method: str = "auto") -> OrthogonalityErrors:
        """Frobenius and spectral errors ‖𝒦𝒦ᵀ − I‖ (row) or ‖𝒦ᵀ𝒦 − I‖ (column) on n^d images."""
        return orthogonality_errors(self.weight, n, self.stride, method)

    def spectral_error_bound(self) -> Float[Array, ""]:
        """√(α L_orth) ≥ the spectral error at every image size."""
        return spectral_error_bound(self.weight, self.stride)

    def spectral_norm(self, n: int) -> Float[Array, ""]:
        """‖𝒦‖₂ on n^d images (its Lipschitz constant), exact via the FFT block form."""
        return spectral_norm(self.weight, n, self.stride)


def _is_orth(x) -> bool:
    return isinstance(x, OrthogonalConv)


def orth_layers(model) -> list[OrthogonalConv]:
    """Every :class:`OrthogonalConv` in ``model`` (any pytree), in tree order."""
    return [leaf for leaf in jax.tree_util.tree_leaves(model, is_leaf=_is_orth) if _is_orth(leaf)]


def orth_penalty(model) -> Float[Array, ""]:
    """Σ L_orth over the :class:`OrthogonalConv` layers of ``model`` (0.0 if it has none).

    Differentiable in the model: ``loss + lam * orth_penalty(model)`` is the regularised
    objective of arXiv 2108.05623 (λ_orth = ``lam``)."""
    layers = orth_layers(model)
    if not layers:
        return jnp.asarray(0.0)
    return sum(layer.regularizer() for layer in layers)
