r"""The rescaling matrix S of the equilibrated PC energy (arXiv 2408.11979, Theorem 1; arXiv 2602.07697).

For layer maps B_1..B_L (each (out, in)) let J_l = B_L ⋯ B_{l+1} = ∂ŷ/∂z_l, shape
(d_out, n_l), for l = 1..L−1 (J_{L−1} = B_L). With output precision λ > 0,

    S = I/λ + Σ_{l=1}^{L−1} J_l J_lᵀ          (d_out × d_out, symmetric, S ⪰ I/λ),

and the equilibrated energy is F* = 1/(2B) Σ_i r_iᵀ S⁻¹ r_i (see :mod:`.equilibrium`).
λS = I + λ Σ J_l J_lᵀ is the factor by which F*/λ rescales the MSE; under μPC
‖λS − I‖₂ = O(L/N) (the width/depth limit where PC computes BP gradients).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ._validate import as_maps, check_precision


def output_jacobians(maps: Sequence[jax.Array]) -> list[jax.Array]:
    """J_1..J_{L−1}, J_l = B_L ⋯ B_{l+1} of shape (d_out, n_l), by a backward recursion
    J_{L−1} = B_L, J_l = J_{l+1} B_{l+1}."""
    maps = as_maps(maps)
    jac = [maps[-1]]
    for b in reversed(maps[1:-1]):
        jac.append(jac[-1] @ b)
    return jac[::-1]


def _gram(maps) -> jax.Array:
    """Σ_l J_l J_lᵀ, (d_out, d_out)."""
    return _gram_jit(as_maps(maps))


@jax.jit
def _gram_jit(maps: list[jax.Array]) -> jax.Array:
    return sum(j @ j.T for j in output_jacobians(maps))


def rescaling_matrix(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """S = I/λ + Σ_{l=1}^{L−1} J_l J_lᵀ, shape (d_out, d_out). ``maps``: B_1..B_L (out, in)."""
    check_precision(precision)
    return _rescaling(as_maps(maps), precision)


@jax.jit
def _rescaling(maps, precision):
    d_out = maps[-1].shape[0]
    return jnp.eye(d_out, dtype=maps[-1].dtype) / precision + _gram_jit(maps)


def rescaling_deviation(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """‖λS − I‖₂ = λ·λ_max(Σ_l J_l J_lᵀ) (a scalar ≥ 0); equals ‖S − I‖₂ for λ = 1.

    Computed from the Gram sum directly (not by subtracting I from S) so that small
    deviations (large width) are not lost to cancellation; use float64 when N·L is large.
    """
    check_precision(precision)
    return precision * jnp.linalg.eigvalsh(_gram(maps))[-1]


def rescaling_factor(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """For scalar output (d_out = 1) the number s = λS ≥ 1 with F* = λ·L/s (a scalar)."""
    maps = as_maps(maps)
    if maps[-1].shape[0] != 1:
        raise ValueError(f"rescaling_factor needs a scalar output; maps[-1] has shape {tuple(maps[-1].shape)}")
    return precision * rescaling_matrix(maps, precision)[0, 0]
