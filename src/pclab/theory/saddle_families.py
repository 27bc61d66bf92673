r"""Families of zero-rank saddles of a plain deep linear chain and the closed-form Hessians at
every point whose output layer is zero (arXiv 2408.11979, Theorem 3; science.md §2).

**Closed form [derived].** Let θ₀ = (W_1..W_L) have W_L = 0 (any other layers). Write
P = W_{L−1}⋯W_1 (n_{L−1}, d_in), K_l = W_{L−1}⋯W_{l+1} (n_{L−1}, n_l; K_{L−1} = I),
Q_k = W_{k−1}⋯W_1 (Q_1 = I), M = Σ_{l=1}^{L−1} K_l K_lᵀ = I + Σ_{l<L−1} K_l K_lᵀ, and the
uncentred moments Σ_xx, Σ_yx, Σ_yy (batch means). Along θ₀ + εV, W_L = εV_L, so
S = I/λ + ε² V_L M V_Lᵀ + O(ε³) and r = y − εV_L P x − ε² V_L Σ_k K_k V_k Q_k x + O(ε³); hence,
exactly at θ₀ (row-major (o, n) indexing of W_L, (a, b) of W_k):

    ∇_{W_L} F* = −λ Σ_yx Pᵀ                       (all other blocks 0; the MSE: λ = 1),
    ∂²F*/∂W_L²     = λ I ⊗ (P Σ_xx Pᵀ) − λ² Σ_yy ⊗ M,
    ∂²F*/∂W_L∂W_k  = −λ K_k[n, a] (Σ_yx Q_kᵀ)[o, b]      (k < L; 0 between two k, k' < L),

and the MSE Hessian is the same with λ = 1 and without the −Σ_yy ⊗ M term. So θ₀ is critical
for both objectives iff Σ_yx Pᵀ = 0 (e.g. P = 0: a zero-rank point). The MSE Hessian is then
PSD (in fact 0 when P = 0) iff every cross block vanishes, i.e. for each k < L either K_k = 0
or Σ_yx Q_kᵀ = 0, and in that case

    λ_min(∇²F*) = −λ² λ_max(Σ_yy) λ_max(M) ≤ −λ² λ_max(Σ_yy) < 0:

a strict saddle of F* that is degenerate for the MSE (flat to second order). The escape
direction lies in W_L alone (top eigenvector of Σ_yy ⊗ M), along which the product W_{L:1},
and so the MSE, stays *exactly* constant while F* falls like ½ε²λ_min.

**Families** (:func:`zero_rank_family`; each zero-rank with W_L = 0):

* ``origin``: every weight 0 (H ≥ 2 hidden layers for a zero MSE Hessian);
* ``penultimate``: only W_{L−1} = A (H ≥ 3); M = I + AAᵀ;
* ``first``: only W_1 = A (H ≥ 3); M = I (K_l ∋ W_{L−1} = 0), λ_min = −λ² λ_max(Σ_yy);
* ``orthogonal-pair``: only W_2 = A and W_3 = C with CA = 0 (H ≥ 3, W_3 ≠ W_L). For H = 3,
  CA = 0 is what makes the MSE degenerate (the cross block with W_1 is −CA ⊗ Σ_yx); M = I + CCᵀ;
* ``three-zeros``: W_L and two more layers zero, every other layer random (H ≥ 3). Any two zero
  layers below the output kill every cross block.

The same conditions show where the claim stops: with one hidden layer fewer the cross blocks
come back and the point is a strict saddle of *both* objectives, and a point with W_L ≠ 0 (e.g.
W_L = C, W_{L−1} = A, CA = 0) can be a zero-Hessian critical point of the MSE that is not even
critical for F* (S depends on W_L at first order). Shapes: x (B, d_in), y (B, d_out).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_precision, check_problem

FAMILIES = ("origin", "penultimate", "first", "orthogonal-pair", "three-zeros")

# Everything below runs in NumPy on the host: these are small dense matrices, and eager JAX would
# compile one XLA program per operation and shape (seconds on a small CPU).


def _chain(ws: Sequence[np.ndarray], n: int, dtype) -> np.ndarray:
    """ws[-1] ⋯ ws[0] (the identity of size n for an empty list)."""
    prod = np.eye(n, dtype=dtype)
    for w in ws:
        prod = w @ prod
    return prod


def output_zero_terms(weights: Sequence[jax.Array]) -> dict:
    """P, the K_l, the Q_k and M of the module docstring (NumPy arrays) at a point with W_L = 0
    (the value of W_L is not read). Lists are indexed by layer l − 1."""
    ws = [np.asarray(w) for w in weights]
    n_layers, dt = len(ws), ws[0].dtype
    ks = [_chain(ws[l + 1:n_layers - 1], ws[l].shape[0], dt) for l in range(n_layers - 1)]
    qs = [_chain(ws[:k], ws[0].shape[1], dt) for k in range(n_layers - 1)]
    return dict(P=_chain(ws[:-1], ws[0].shape[1], dt), K=ks, Q=qs, M=sum(k @ k.T for k in ks))


def _moments(weights, x, y, precision=1.0):
    ws, x, y = check_problem(weights, x, y, precision)
    ws, x, y = [np.asarray(w) for w in ws], np.asarray(x), np.asarray(y)
    b = x.shape[0]
    return ws, x, y, x.T @ x / b, y.T @ x / b, y.T @ y / b


def output_zero_derivatives(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array,
                            precision=1.0) -> dict:
    """Closed-form gradients (P,) and Hessians (P, P) of F* and of the MSE at ``weights`` with
    W_L = 0, in :func:`pclab.theory.flatten_weights` order: keys ``energy_grad``,
    ``energy_hessian``, ``loss_grad``, ``loss_hessian``, and ``M`` (n_{L−1}, n_{L−1})."""
    ws, x, y, s_xx, s_yx, s_yy = _moments(weights, x, y, precision)
    if np.max(np.abs(ws[-1])) != 0.0:
        raise ValueError("output_zero_derivatives needs W_L = 0 (weights[-1] all zero)")
    dt = x.dtype
    t = output_zero_terms(ws)
    sizes = [w.size for w in ws]
    start = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    d_out, n_last = ws[-1].shape
    last = slice(int(start[-2]), int(start[-1]))

    g_l = np.zeros(int(start[-1]), dt)
    g_l[last] = (-(s_yx @ t["P"].T)).reshape(-1)
    h_l = np.zeros((g_l.size, g_l.size), dt)
    h_l[last, last] = np.kron(np.eye(d_out, dtype=dt), t["P"] @ s_xx @ t["P"].T)
    for k in range(len(ws) - 1):
        blk = -np.einsum("na,ob->onab", t["K"][k], s_yx @ t["Q"][k].T).reshape(d_out * n_last, sizes[k])
        sk = slice(int(start[k]), int(start[k + 1]))
        h_l[last, sk], h_l[sk, last] = blk, blk.T
    lam = float(precision)
    h_f = lam * h_l
    h_f[last, last] -= lam**2 * np.kron(s_yy, t["M"])
    out = dict(energy_grad=lam * g_l, energy_hessian=h_f, loss_grad=g_l, loss_hessian=h_l, M=t["M"])
    return {k: jnp.asarray(v, dt) for k, v in out.items()}


def loss_cross_blocks_vanish(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array, atol: float = 0.0) -> bool:
    """Whether every MSE cross block K_k ⊗ Σ_yx Q_kᵀ of a W_L = 0 point is (within ``atol``) zero,
    the condition for the MSE Hessian to be PSD there."""
    ws, x, y, _, s_yx, _ = _moments(weights, x, y)
    t = output_zero_terms(ws)
    return max(np.abs(k).max() * np.abs(s_yx @ q.T).max() for k, q in zip(t["K"], t["Q"])) <= atol


def output_zero_lambda_min(weights: Sequence[jax.Array], y: jax.Array, precision=1.0) -> float:
    """−λ² λ_max(Σ_yy) λ_max(M): λ_min(∇²F*) at a W_L = 0 zero-rank point whose MSE cross
    blocks vanish (:func:`loss_cross_blocks_vanish`)."""
    check_precision(precision)
    y = np.asarray(y)
    top_y = np.linalg.eigvalsh(y.T @ y / y.shape[0])[-1]
    return float(-(precision**2) * top_y * np.linalg.eigvalsh(output_zero_terms(weights)["M"])[-1])


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def orthogonal_pair(seed, a_shape: tuple[int, int], c_shape: tuple[int, int], rank: int | None = None,
                    dtype=np.float64) -> tuple[jax.Array, jax.Array]:
    """Random A (a_shape) of rank ``rank`` (default: half its rows, at least 1) and random C
    (c_shape) with CA = 0: C's rows are orthogonal to A's column space. ``seed``: an int or a
    NumPy generator."""
    n = a_shape[0]
    if c_shape[1] != n:
        raise ValueError(f"C has shape {c_shape}; its in-dim must equal A's out-dim {n}")
    rank = max(1, n // 2) if rank is None else rank
    if not 1 <= rank < n or rank > a_shape[1]:
        raise ValueError(f"rank={rank!r} is not valid; expected 1 <= rank < {n} and rank <= {a_shape[1]} "
                         "(CA = 0 with C != 0 needs a rank-deficient A)")
    rng = _rng(seed)
    a = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, a_shape[1]))
    q = np.linalg.qr(a)[0][:, :rank]
    c = rng.standard_normal(c_shape) @ (np.eye(n) - q @ q.T)
    return jnp.asarray(a, dtype), jnp.asarray(c, dtype)


def zero_rank_family(family: str, shapes: Sequence[tuple[int, int]], seed=0, dtype=np.float64,
                     zero: tuple[int, int] | None = None) -> list[jax.Array]:
    """A point W_1..W_L (shapes (out, in)) of ``family`` (one of :data:`FAMILIES`, see the
    module docstring) with random nonzero layers drawn N(0, 1) (``seed``: an int or a NumPy
    generator). ``zero``: for ``three-zeros``, the two 0-based indices (< L−1) of the zeroed
    layers besides W_L (default: the first two)."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is not valid; expected one of {', '.join(FAMILIES)}")
    shapes = [tuple(int(d) for d in s) for s in shapes]
    n_layers = len(shapes)
    need = {"origin": 2, "penultimate": 3, "first": 2, "orthogonal-pair": 4, "three-zeros": 4}[family]
    if n_layers < need:
        raise ValueError(f"family {family!r} needs L >= {need} weight layers; got L = {n_layers}")
    rng = _rng(seed)
    ws = [np.zeros(s) for s in shapes]
    if family == "penultimate":
        ws[-2] = rng.standard_normal(shapes[-2])
    elif family == "first":
        ws[0] = rng.standard_normal(shapes[0])
    elif family == "orthogonal-pair":
        ws[1], ws[2] = orthogonal_pair(rng, shapes[1], shapes[2])
    elif family == "three-zeros":
        zero = (0, 1) if zero is None else tuple(zero)
        if len(set(zero)) != 2 or not all(0 <= z < n_layers - 1 for z in zero):
            raise ValueError(f"zero={zero!r} is not valid; expected two distinct layer indices in [0, {n_layers - 1})")
        ws = [np.zeros(s) if (i in zero or i == n_layers - 1) else rng.standard_normal(s)
              for i, s in enumerate(shapes)]
    return [jnp.asarray(w, dtype) for w in ws]
