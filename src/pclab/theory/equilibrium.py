r"""Closed forms of the activity equilibrium of a deep linear PCN (arXiv 2408.11979, Theorem 1).

For one example, write the errors e_l = z_l − B_l z_{l−1} (l < L) and e_L = y − B_L z_{L−1}.
Then z_l = ẑ_l + Σ_{k≤l} B_l ⋯ B_{k+1} e_k and the residual r = y − ŷ = Σ_{l<L} J_l e_l + e_L
(ẑ the feedforward pass, J_l = B_L ⋯ B_{l+1}). Minimising ½Σ_{l<L}‖e_l‖² + ½λ‖e_L‖² under this
linear constraint (Lagrange multiplier μ) gives e_l = J_lᵀμ, e_L = μ/λ, Sμ = r, so

    μ = S⁻¹ r,      F* = ½ rᵀ S⁻¹ r,      S = I/λ + Σ_l J_l J_lᵀ,
    z_l* = ẑ_l + δ_l,   δ_l = B_l δ_{l−1} + J_lᵀ μ,   δ_0 = 0.

Over a batch: F* = 1/(2B) Σ_i r_iᵀ S⁻¹ r_i. Costs O(L·N²·d_out) plus a d_out × d_out solve,
independent of the activity Hessian's size (Σ n_l)².
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ._validate import check_problem
from .linear import feedforward_activities
from .rescaling import output_jacobians, rescaling_matrix


def _multiplier(maps, x, y, precision):
    """Residuals r (B, d_out) and μ = S⁻¹ r (B, d_out), by a Cholesky solve (S is SPD)."""
    r = y - feedforward_activities(maps, x)[-1]
    s = rescaling_matrix(maps, precision)
    mu = jsl.cho_solve(jsl.cho_factor(s, lower=True), r.T).T
    return r, mu


def equilibrated_energy(maps: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0) -> jax.Array:
    """F* = min_z F(z) = 1/(2B) Σ_i r_iᵀ S⁻¹ r_i, r_i = y_i − B_{L:1} x_i (a scalar).

    Args:
        maps: layer maps B_1..B_L, shapes (n_1, d_in), …, (d_out, n_{L−1}); plain (W_l), scaled
            (a_l W_l) or residual (I + a_l W_l) layers alike.
        x: (B, d_in). y: (B, d_out). precision: output precision λ > 0.
    """
    maps, x, y = check_problem(maps, x, y, precision)
    return _energy(maps, x, y, precision)


@jax.jit
def _energy(maps, x, y, precision):
    r, mu = _multiplier(maps, x, y, precision)
    return 0.5 * jnp.mean(jnp.sum(r * mu, axis=-1))


def equilibrium_activities(
    maps: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0
) -> list[jax.Array]:
    """The minimiser z_1*..z_{L−1}* of F (module docstring): L−1 arrays of shapes (B, n_l).

    For equal widths ``jnp.stack`` of the result is the (L−1, B, N) array that
    ``pclab.infer(model, x, y, solver=pclab.ExactSolver()).z`` returns.
    """
    maps, x, y = check_problem(maps, x, y, precision)
    return _activities(maps, x, y, precision)


@jax.jit
def _activities(maps, x, y, precision):
    _, mu = _multiplier(maps, x, y, precision)
    z_ff = feedforward_activities(maps, x)[:-1]
    out, delta = [], None
    for b, j, z in zip(maps[:-1], output_jacobians(maps), z_ff):
        delta = mu @ j if delta is None else delta @ b.T + mu @ j
        out.append(z + delta)
    return out


def equilibrium_errors(
    maps: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0
) -> list[jax.Array]:
    """The prediction errors at equilibrium, e_l* = J_lᵀ S⁻¹ r (B, n_l) for l < L and
    e_L* = S⁻¹ r / λ (B, d_out): L arrays. Σ_l ½‖e_l*‖² (+ λ weight on the last) is F*."""
    maps, x, y = check_problem(maps, x, y, precision)
    return _errors(maps, x, y, precision)


@jax.jit
def _errors(maps, x, y, precision):
    _, mu = _multiplier(maps, x, y, precision)
    return [mu @ j for j in output_jacobians(maps)] + [mu / precision]
