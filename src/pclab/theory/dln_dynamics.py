r"""Gradient descent on a deep linear network and the critical values it visits (arXiv 2107.13289).

Conventions as in :mod:`pclab.theory.dln`: X (d_x, n), Y (d_y, n), columns are examples;
L(W) = ‖W_H⋯W_1 X − Y‖²_F. From a small initialisation, gradient descent leaves the origin
(S = ∅) and passes near the critical points of the initial segments S = {0..k−1} one after the
other: the loss shows plateaus at tr(YYᵀ) − Σ_{i<k} λ_i (saddle-to-saddle dynamics; Saxe et al.,
arXiv 1312.6120; Jacot et al., arXiv 2106.15933). :func:`visited_critical_values` reads the
plateaus off a loss trace.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .dln import check_data, check_weights, check_widths, dln_loss

__all__ = ["planted_data", "dln_init", "gradient_descent", "visited_critical_values"]


def planted_data(key: jax.Array, d_x: int, d_y: int, n: int, eigenvalues: Sequence[float],
                 noise: float = 0.0, dtype=None) -> tuple[jax.Array, jax.Array]:
    r"""X (d_x, n) with XXᵀ = I and Y = A X + N (d_y, n) such that Σ has exactly ``eigenvalues``.

    A = U diag(√λ) Vᵀ with random orthonormal U (d_y, d_y), V (d_x, d_y) (so d_y ≤ d_x), and N a
    random matrix with N Xᵀ = 0 scaled to ‖N‖²_F = ``noise`` (needs n > d_x when noise > 0), so
    Σ = A Aᵀ = U diag(λ) Uᵀ and tr(YYᵀ) = Σλ + noise. ``eigenvalues``: d_y numbers ≥ 0.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.shape != (d_y,) or np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise ValueError(f"eigenvalues={eigenvalues!r} is not valid; expected {d_y} finite numbers >= 0")
    if not (d_y <= d_x <= n):
        raise ValueError(f"planted_data needs d_y <= d_x <= n; got d_x={d_x}, d_y={d_y}, n={n}")
    if not (noise >= 0 and math.isfinite(noise)) or (noise > 0 and n == d_x):
        raise ValueError(f"noise={noise!r} is not valid; expected a finite number >= 0 (and n > d_x if > 0)")
    dt = jnp.result_type(float) if dtype is None else dtype
    k1, k2, k3, k4 = jax.random.split(key, 4)
    q = jnp.linalg.qr(jax.random.normal(k1, (n, n), dt))[0]
    X = q[:, :d_x].T
    U = jnp.linalg.qr(jax.random.normal(k2, (d_y, d_y), dt))[0]
    V = jnp.linalg.qr(jax.random.normal(k3, (d_x, d_y), dt))[0]
    Y = (U * jnp.sqrt(jnp.asarray(lam, dt))) @ V.T @ X
    if noise > 0:
        N = jax.random.normal(k4, (d_y, n - d_x), dt) @ q[:, d_x:].T
        Y = Y + math.sqrt(noise) * N / jnp.linalg.norm(N)
    return X, Y


def dln_init(key: jax.Array, d_x: int, d_y: int, widths, scale: float, dtype=None) -> list[jax.Array]:
    """[W_1..W_H] with i.i.d. N(0, scale²) entries, shapes (n_h, n_{h−1}) for dims (d_x, *widths, d_y)."""
    widths = check_widths(widths)
    if not (scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"scale={scale!r} is not valid; expected a finite number >= 0")
    dims = (d_x, *widths, d_y)
    dt = jnp.result_type(float) if dtype is None else dtype
    keys = jax.random.split(key, len(dims) - 1)
    return [scale * jax.random.normal(k, (dims[h + 1], dims[h]), dt) for h, k in enumerate(keys)]


@partial(jax.jit, static_argnames="steps")
def _descend(ws, X, Y, lr, steps):
    grad = jax.value_and_grad(dln_loss)

    def step(w, _):
        value, g = grad(w, X, Y)
        return [wi - lr * gi for wi, gi in zip(w, g)], value

    ws, losses = jax.lax.scan(step, ws, None, length=steps)
    return ws, jnp.append(losses, dln_loss(ws, X, Y))


def gradient_descent(weights, X, Y, lr: float, steps: int) -> tuple[list[jax.Array], np.ndarray]:
    """``steps`` steps of W_h ← W_h − lr ∇_{W_h} L; returns the final weights and the losses
    (steps + 1,), ``losses[t]`` = L after t steps (one compiled ``lax.scan``)."""
    X, Y = check_data(X, Y)
    ws = check_weights(weights, X, Y)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not valid; expected an integer >= 1")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} is not valid; expected a finite number > 0")
    ws, losses = _descend(ws, X, Y, jnp.asarray(lr, X.dtype), steps)
    return ws, np.asarray(losses)


def visited_critical_values(losses, values: Mapping[frozenset, float], rtol: float = 0.01,
                            min_steps: int = 10) -> list[dict]:
    """The plateaus of a loss trace: maximal runs of ≥ ``min_steps`` steps whose loss stays within
    ``rtol``·max(|v|, rtol·max|values|) of one critical value v (the nearest one), in order.

    Returns [{"subset": S, "value": v, "first": step, "last": step, "mean_loss": …}, …].
    """
    losses = np.asarray(losses, dtype=np.float64)
    items = sorted(values.items(), key=lambda kv: kv[1])
    vals = np.array([v for _, v in items])
    floor = rtol * np.max(np.abs(vals))
    nearest = np.argmin(np.abs(losses[:, None] - vals[None, :]), axis=1)
    inside = np.abs(losses - vals[nearest]) <= rtol * np.maximum(np.abs(vals[nearest]), floor)
    label = np.where(inside, nearest, -1)
    out, start = [], 0
    for t in range(1, len(label) + 1):
        if t == len(label) or label[t] != label[start]:
            if label[start] >= 0 and t - start >= min_steps:
                s, v = items[label[start]]
                out.append(dict(subset=s, value=float(v), first=start, last=t - 1,
                                mean_loss=float(losses[start:t].mean())))
            start = t
    return out
