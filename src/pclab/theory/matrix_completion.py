r"""Low-rank matrix completion with a deep linear network, by PC and by BP (arXiv 2408.11979,
the matrix-completion experiment; science.md §2).

**Task** (:func:`completion_task`, the setting of the paper's notebook): a rank-r target
M = U V (n × n, U, V Gaussian), a mask Ω of observed entries (each kept with probability
``observed``), inputs x_i = (Ω ⊙ M)_i (the observed part of row i), targets y_i = M_i, and
only observed entries count: with m_i = Ω_i,

    L(θ)  = 1/(2B) Σ_i ‖m_i ⊙ (y_i − W_{L:1} x_i)‖²                               (BP),
    F*(θ) = 1/(2B) Σ_i r̃_iᵀ S_i⁻¹ r̃_i,  r̃_i = m_i ⊙ (y_i − W_{L:1} x_i),
            S_i = I/λ + D_i (Σ_{l<L} J_l J_lᵀ) D_i,  D_i = diag(m_i)                (PC).

F* is the energy of a PCN whose output error counts only observed entries, minimised over the
hidden activities [derived]: restricted to the observed coordinates it is Theorem 1 with output
map P_Ω W_L, and the unobserved coordinates decouple (identity block of S_i, zero residual).
PC (with inference at equilibrium) is gradient descent on F* (envelope theorem), BP on L.

**Dynamics** (:func:`completion_descent`): from a small initialisation N(0, σ²) GD on L goes
saddle to saddle — long plateaus, each ended by one more singular value of the end-to-end map
W_{L:1} growing (the learned matrix's rank steps up) — while PC escapes the origin's plateau
much faster. :func:`rank_steps` reads the first step at which the numerical rank reaches each k.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .rescaling import output_jacobians


def completion_task(seed: int = 0, n: int = 10, rank: int = 3, observed: float = 0.8, dtype=np.float64):
    """(x, y, mask, target), each (n, n): x = mask ⊙ target, y = target = U V of rank ``rank``
    (U (n, r), V (r, n) i.i.d. N(0, 1)), mask i.i.d. Bernoulli(``observed``). NumPy draws."""
    if not (isinstance(rank, int) and 1 <= rank <= n):
        raise ValueError(f"rank={rank!r} is not valid; expected an integer in [1, {n}]")
    if not 0 < observed <= 1:
        raise ValueError(f"observed={observed!r} is not valid; expected a fraction in (0, 1]")
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, n))
    mask = (rng.random((n, n)) < observed).astype(float)
    arrs = [jnp.asarray(a, dtype) for a in (mask * target, target, mask, target)]
    return tuple(arrs)


def _product(ws):
    prod = ws[0]
    for w in ws[1:]:
        prod = w @ prod
    return prod


@jax.jit
def masked_loss(weights: Sequence[jax.Array], x, y, mask) -> jax.Array:
    """L = 1/(2B) Σ_i ‖m_i ⊙ (y_i − W_{L:1} x_i)‖² (a scalar). x (B, d_in), y and mask (B, d_out)."""
    r = mask * (y - x @ _product(list(weights)).T)
    return 0.5 * jnp.mean(jnp.sum(r**2, axis=-1))


@jax.jit
def masked_equilibrated_energy(weights: Sequence[jax.Array], x, y, mask, precision=1.0) -> jax.Array:
    """F* of the module docstring (a scalar): the PC energy with masked output error at the
    activity equilibrium."""
    ws = list(weights)
    r = mask * (y - x @ _product(ws).T)
    gram = sum(j @ j.T for j in output_jacobians(ws))
    d_out = ws[-1].shape[0]
    s = jnp.eye(d_out, dtype=r.dtype) / precision + mask[:, :, None] * gram[None] * mask[:, None, :]
    mu = jnp.linalg.solve(s, r[..., None])[..., 0]
    return 0.5 * jnp.mean(jnp.sum(r * mu, axis=-1))


def completion_init(seed: int, dims: Sequence[int], scale: float = 5e-3, dtype=np.float64) -> list[jax.Array]:
    """W_1..W_L for layer sizes ``dims`` = (d_in, n_1, …, d_out), i.i.d. N(0, scale²) (NumPy draws)."""
    rng = np.random.default_rng(seed)
    return [jnp.asarray(scale * rng.standard_normal((dims[i + 1], dims[i])), dtype) for i in range(len(dims) - 1)]


@partial(jax.jit, static_argnames=("algo", "steps"))
def _descend(ws, x, y, mask, lr, precision, algo, steps):
    obj = (lambda w: masked_equilibrated_energy(w, x, y, mask, precision)) if algo == "pc" else \
        (lambda w: masked_loss(w, x, y, mask))
    grad = jax.grad(obj)

    def step(w, _):
        rec = (masked_loss(w, x, y, mask), jnp.linalg.svd(_product(w), compute_uv=False))
        g = grad(w)
        return [wi - lr * gi for wi, gi in zip(w, g)], rec

    return jax.lax.scan(step, ws, None, length=steps)


def completion_descent(weights: Sequence[jax.Array], x, y, mask, *, algo: str = "pc", lr: float = 0.01,
                       steps: int = 1000, precision=1.0) -> tuple[list[jax.Array], np.ndarray, np.ndarray]:
    """``steps`` steps of plain GD on F* (``algo='pc'``) or on L (``'bp'``).

    Returns (final weights, masked losses L before each step (steps,), singular values of
    W_{L:1} before each step (steps, min(d_out, d_in)), descending). One compiled ``lax.scan``.
    """
    if algo not in ("pc", "bp"):
        raise ValueError(f"algo={algo!r} is not valid; expected 'pc' or 'bp'")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not valid; expected an integer >= 1")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} is not valid; expected a finite number > 0")
    ws = [jnp.asarray(w) for w in weights]
    dt = ws[0].dtype
    ws, (loss, sv) = _descend(ws, jnp.asarray(x, dt), jnp.asarray(y, dt), jnp.asarray(mask, dt),
                              jnp.asarray(lr, dt), jnp.asarray(precision, dt), algo, steps)
    return ws, np.asarray(loss), np.asarray(sv)


def rank_trace(singular_values: np.ndarray, threshold: float) -> np.ndarray:
    """Numerical rank #{σ_j > threshold} at every step, shape (steps,)."""
    return np.sum(np.asarray(singular_values) > threshold, axis=-1)


def rank_steps(singular_values: np.ndarray, threshold: float, max_rank: int) -> list[int]:
    """First step at which the numerical rank reaches k, for k = 1..max_rank (−1 if never)."""
    ranks = rank_trace(singular_values, threshold)
    out = []
    for k in range(1, max_rank + 1):
        hits = np.nonzero(ranks >= k)[0]
        out.append(int(hits[0]) if hits.size else -1)
    return out
