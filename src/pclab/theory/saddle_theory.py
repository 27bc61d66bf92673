r"""Closed-form Hessians of F* and of the MSE at the origin and at a zero-rank saddle (§2).

The point θ₀ of a plain chain W_1..W_L has every weight zero except, optionally,
W_{L−1} = A (shape (n_{L−1}, n_{L−2}), needs L ≥ 3); A = 0 is the origin. Expanding F* and L
to second order around θ₀ along θ₀ + εV (Σ_yy = YᵀY/B, Σ_yx = YᵀX/B, M = I + AAᵀ):

    S⁻¹ = λI − ε² λ² V_L M V_Lᵀ + O(ε³),      r = y − ε² V_L P V_1 x·[L ≤ 3] + O(ε³),

with P = I (L = 2, origin) or P = A (L = 3). Hence the only nonzero Hessian blocks are

    ∂²F*/∂W_L²   = −λ² Σ_yy ⊗ M                  (row-major (o, n) indexing of W_L),
    ∂²F*/∂W_L∂W_1 = −λ Σ_yx[o, d] · P[n, m]      (only for L ≤ 3; same block in ∂²L),

and the MSE Hessian is 0 for L ≥ 4, or ≥ 3 at the origin. For H = L−1 ≥ 2 hidden layers at
the origin, and H ≥ 3 at a zero-rank saddle, λ_min(∇²F*) = −λ² λ_max(Σ_yy)(1 + σ_max(A)²): the
point is a strict saddle of F*, while it is a non-strict (zero-Hessian) saddle of the MSE.
Both points are critical for both objectives. Shapes: x (B, d_in), y (B, d_out).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import as_maps, check_precision


def output_covariance(y: jax.Array) -> jax.Array:
    """Σ_yy = (1/B) Σ_i y_i y_iᵀ, shape (d_out, d_out) (uncentred)."""
    return y.T @ y / y.shape[0]


def cross_covariance(y: jax.Array, x: jax.Array) -> jax.Array:
    """Σ_yx = (1/B) Σ_i y_i x_iᵀ, shape (d_out, d_in) (uncentred)."""
    return y.T @ x / y.shape[0]


def _check_shapes(shapes) -> list[tuple[int, int]]:
    shapes = [tuple(int(d) for d in s) for s in shapes]
    as_maps([np.zeros(s) for s in shapes], "shapes")  # chaining check with the usual messages
    return shapes


def zero_rank_point(shapes: Sequence[tuple[int, int]], a: jax.Array | None = None, dtype=None) -> list[jax.Array]:
    """Weights W_1..W_L of the given (out, in) shapes, all zero except W_{L−1} = A (if given)."""
    shapes = _check_shapes(shapes)
    dtype = jnp.result_type(float) if dtype is None else dtype
    weights = [jnp.zeros(s, dtype) for s in shapes]
    if a is not None:
        if len(shapes) < 3:
            raise ValueError(f"a zero-rank saddle with W_(L-1) = A needs L >= 3 layers; got L = {len(shapes)}")
        a = jnp.asarray(a, dtype)
        if a.shape != shapes[-2]:
            raise ValueError(f"A has shape {tuple(a.shape)}; W_(L-1) = maps[{len(shapes) - 2}] needs {shapes[-2]}")
        weights[-2] = a
    return weights


def predicted_hessians(
    shapes: Sequence[tuple[int, int]], x: jax.Array, y: jax.Array, a: jax.Array | None = None, precision=1.0
) -> tuple[jax.Array, jax.Array]:
    """The (P, P) Hessians of F* and of L at :func:`zero_rank_point` from the closed-form blocks
    of the module docstring, in :func:`pclab.theory.flatten_weights` order."""
    check_precision(precision)
    shapes = _check_shapes(shapes)
    dt = jnp.result_type(x, y, float)
    if a is not None:
        zero_rank_point(shapes, a, dt)  # shape checks
        a = jnp.asarray(a, dt)
    return _predicted(tuple(shapes), jnp.asarray(x, dt), jnp.asarray(y, dt), a, precision)


@partial(jax.jit, static_argnums=0)
def _predicted(shapes, x, y, a, precision):
    dt = x.dtype
    n_layers = len(shapes)
    sizes = [s[0] * s[1] for s in shapes]
    start = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    h_f = jnp.zeros((start[-1], start[-1]), dt)
    h_l = jnp.zeros_like(h_f)

    n_last = shapes[-1][1]  # W_L is (d_out, n_{L-1})
    m = jnp.eye(n_last, dtype=dt)
    if a is not None:
        m = m + a @ a.T
    sl = slice(start[-2], start[-1])
    h_f = h_f.at[sl, sl].set(-(precision**2) * jnp.kron(output_covariance(y), m))

    if n_layers == 2 or (n_layers == 3 and a is not None):
        p = jnp.eye(n_last, dtype=dt) if n_layers == 2 else a  # (n_{L−1}, n_1); here A = W_2
        cross = -jnp.einsum("od,nm->onmd", cross_covariance(y, x), p)
        cross = cross.reshape(sizes[-1], sizes[0])
        s1 = slice(start[0], start[1])
        h_f = h_f.at[sl, s1].set(precision * cross).at[s1, sl].set(precision * cross.T)
        h_l = h_l.at[sl, s1].set(cross).at[s1, sl].set(cross.T)
    return h_f, h_l


def predicted_lambda_min(y: jax.Array, a: jax.Array | None = None, precision=1.0) -> jax.Array:
    """−λ² λ_max(Σ_yy)(1 + σ_max(A)²): λ_min(∇²F*) at the origin (H ≥ 2, A = None) or at the
    zero-rank saddle W_{L−1} = A (H ≥ 3). A scalar."""
    check_precision(precision)
    top = jnp.linalg.eigvalsh(output_covariance(jnp.asarray(y)))[-1]
    grow = 1.0 if a is None else 1.0 + jnp.linalg.norm(jnp.asarray(a), ord=2) ** 2
    return -(precision**2) * top * grow
