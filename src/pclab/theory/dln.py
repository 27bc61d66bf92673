r"""Deep linear networks: the critical points of the square loss and their values (arXiv 2107.13289).

Conventions, kept by every function of this module, :mod:`.dln_kind` and :mod:`.dln_dynamics`
(they differ from the rest of :mod:`pclab.theory`, which puts examples in rows and uses ½ and
a batch mean):

* data ``X`` of shape (d_x, n) and targets ``Y`` of shape (d_y, n): **columns are examples**;
* ``weights = [W_1, …, W_H]`` (H ≥ 2), W_h of shape (n_h, n_{h−1}) with n_0 = d_x, n_H = d_y,
  ``widths = (n_1, …, n_{H−1})``; W_{j:i} = W_j ⋯ W_i, W_{H:1} the end-to-end product;
* the loss is L(W) = ‖W_{H:1} X − Y‖²_F (no ½, no mean);
* A = Y Xᵀ(XXᵀ)⁻¹ (d_y, d_x) and Σ = A XXᵀ Aᵀ = Y Xᵀ(XXᵀ)⁻¹ X Yᵀ (d_y, d_y), with eigenvalues
  sorted descending, **0-based**: λ_0 > λ_1 > … > λ_{d_y−1}, orthonormal eigenvectors U;
* r_max = min(d_x, d_y, n_1, …, n_{H−1}).

The first-order facts (Baldi & Hornik 1989; Kawaguchi, arXiv 1605.07110; restated in arXiv
2107.13289), which need XXᵀ invertible and distinct λ: at every critical point
W_{H:1} = U_S U_Sᵀ A for an index set S with |S| ≤ r_max, the critical value is
L = tr(YYᵀ) − Σ_{i∈S} λ_i, the global minimisers are the points with S = {0, …, r_max − 1}, and
there are no spurious local minima. Every such S is attained (:func:`critical_point`).

Bad input raises ``ValueError`` naming the argument: shapes that do not chain, XXᵀ singular,
repeated eigenvalues of Σ, a subset larger than r_max or with an index out of range.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Spectrum(NamedTuple):
    """A = Y Xᵀ(XXᵀ)⁻¹ (d_y, d_x); eigenvalues (d_y,) of Σ, descending; eigenvectors U (d_y, d_y)
    (column i belongs to λ_i); trace_yy = tr(YYᵀ). NumPy float64 arrays."""

    A: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    trace_yy: float


def _matrix(a, name: str) -> jax.Array:
    a = jnp.asarray(a)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty 2-d array; got shape {tuple(a.shape)}")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    if not np.all(np.isfinite(np.asarray(a))):
        raise ValueError(f"{name} has non-finite entries")
    return a


def check_data(X, Y) -> tuple[jax.Array, jax.Array]:
    """X (d_x, n) and Y (d_y, n), columns are examples, with XXᵀ invertible; one float dtype."""
    X, Y = _matrix(X, "X"), _matrix(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has shape {tuple(X.shape)} and Y has shape {tuple(Y.shape)}: both must have "
                         f"n columns (examples are columns), got {X.shape[1]} and {Y.shape[1]}")
    dt = jnp.result_type(X, Y)
    X, Y = X.astype(dt), Y.astype(dt)
    ev = np.linalg.eigvalsh(np.asarray(X @ X.T, dtype=np.float64))
    eps = float(jnp.finfo(dt).eps)
    if ev[0] <= 100 * eps * X.shape[0] * max(ev[-1], 1e-300):
        raise ValueError(f"X: XXᵀ ({X.shape[0]}x{X.shape[0]}) is singular (eigenvalues {ev[0]:.3g} .. {ev[-1]:.3g}); "
                         f"the theory needs d_x <= n and linearly independent rows of X")
    return X, Y


def check_widths(widths) -> tuple[int, ...]:
    """``widths`` = (n_1, …, n_{H−1}): at least one positive integer (H ≥ 2)."""
    if isinstance(widths, (int, np.integer)) or not isinstance(widths, Iterable):
        raise ValueError(f"widths={widths!r} is not valid; expected a sequence (n_1, ..., n_(H-1)) of integers >= 1")
    w = tuple(widths)
    if len(w) < 1 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in w):
        raise ValueError(f"widths={widths!r} is not valid; expected a non-empty sequence of integers >= 1 "
                         f"(one per hidden layer, H >= 2)")
    return tuple(int(v) for v in w)


def check_weights(weights, X: jax.Array, Y: jax.Array) -> list[jax.Array]:
    """``weights`` [W_1..W_H] (H ≥ 2) chain from d_x = X.shape[0] to d_y = Y.shape[0]."""
    if isinstance(weights, (jax.Array, np.ndarray)) or not isinstance(weights, Sequence):
        raise ValueError(f"weights must be a list [W_1, ..., W_H] of 2-d arrays; got {type(weights).__name__}")
    ws = [_matrix(w, f"weights[{i}] (W_{i + 1})") for i, w in enumerate(weights)]
    if len(ws) < 2:
        raise ValueError(f"weights has {len(ws)} matrix; need H >= 2 (at least one hidden layer)")
    if ws[0].shape[1] != X.shape[0]:
        raise ValueError(f"weights[0] (W_1) has shape {tuple(ws[0].shape)} but X has shape {tuple(X.shape)}: "
                         f"expected W_1.shape[1] == d_x == {X.shape[0]}")
    for i in range(1, len(ws)):
        if ws[i].shape[1] != ws[i - 1].shape[0]:
            raise ValueError(f"weights[{i}] (W_{i + 1}) has shape {tuple(ws[i].shape)} but weights[{i - 1}] "
                             f"(W_{i}) has shape {tuple(ws[i - 1].shape)}: they do not chain")
    if ws[-1].shape[0] != Y.shape[0]:
        raise ValueError(f"weights[{len(ws) - 1}] (W_{len(ws)}) has shape {tuple(ws[-1].shape)} but Y has shape "
                         f"{tuple(Y.shape)}: expected W_H.shape[0] == d_y == {Y.shape[0]}")
    return [w.astype(X.dtype) for w in ws]


def dln_spectrum(X, Y) -> Spectrum:
    """A, the eigen-decomposition of Σ = Y Xᵀ(XXᵀ)⁻¹ X Yᵀ (descending) and tr(YYᵀ).

    Raises ``ValueError`` (naming Y) if two eigenvalues of Σ coincide to √eps relative; note
    that d_y ≥ d_x + 2 always gives a repeated eigenvalue 0."""
    X, Y = check_data(X, Y)
    eps = float(jnp.finfo(X.dtype).eps)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    A = np.linalg.solve(X @ X.T, X @ Y.T).T
    lam, U = np.linalg.eigh(A @ X @ X.T @ A.T)
    lam, U = np.maximum(lam[::-1], 0.0), U[:, ::-1]
    gaps = lam[:-1] - lam[1:]
    tol = math.sqrt(eps) * max(float(lam[0]), 1e-300)
    if gaps.size and gaps.min() <= tol:
        i = int(np.argmin(gaps))
        raise ValueError(f"Y: Σ = Y Xᵀ(XXᵀ)⁻¹ X Yᵀ has repeated eigenvalues λ_{i} = {float(lam[i]):.6g} and "
                         f"λ_{i + 1} = {float(lam[i + 1]):.6g}; the critical points are then not isolated and "
                         f"distinct eigenvalues are required")
    return Spectrum(A, lam, U, float(np.sum(Y * Y)))


def r_max(d_x: int, d_y: int, widths: Sequence[int]) -> int:
    """min(d_x, d_y, n_1, …, n_{H−1}): the largest rank of W_{H:1}."""
    return min(d_x, d_y, *widths)


def dln_loss(weights: Sequence[jax.Array], X: jax.Array, Y: jax.Array) -> jax.Array:
    """L(W) = ‖W_H ⋯ W_1 X − Y‖²_F (no checks: usable under ``jit``/``grad``)."""
    Z = X
    for W in weights:
        Z = W @ Z
    return jnp.sum((Z - Y) ** 2)


def partial_product(weights: Sequence[jax.Array], i: int, j: int) -> jax.Array:
    """W_{j:i} = W_j ⋯ W_i for 1-based 1 ≤ i ≤ j ≤ H; the identity of size n_{i−1} when j = i − 1."""
    if j < i:
        n = weights[0].shape[1] if i == 1 else weights[i - 2].shape[0]
        return np.eye(n, dtype=np.asarray(weights[0]).dtype)
    out = weights[i - 1]
    for h in range(i + 1, j + 1):
        out = weights[h - 1] @ out
    return out


def critical_values(X, Y, widths) -> dict[frozenset, float]:
    """{S: tr(YYᵀ) − Σ_{i∈S} λ_i} for every S ⊆ {0..d_y−1} with |S| ≤ r_max (0-based, λ descending).

    Ordered by |S|, then lexicographically. The global minimum is the value of S = {0..r_max−1}.
    """
    widths = check_widths(widths)
    spec = dln_spectrum(X, Y)
    lam = np.asarray(spec.eigenvalues, dtype=np.float64)
    d_y, rm = lam.shape[0], r_max(np.shape(X)[0], lam.shape[0], widths)
    return {frozenset(s): spec.trace_yy - float(sum(lam[list(s)]))
            for k in range(rm + 1) for s in itertools.combinations(range(d_y), k)}


def check_subset(subset, d_y: int, rm: int) -> tuple[int, ...]:
    """``subset``: distinct integers in [0, d_y), at most r_max of them; returned sorted."""
    try:
        items = list(subset)
    except TypeError:
        raise ValueError(f"subset={subset!r} is not valid; expected a set of 0-based eigen-indices") from None
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
        raise ValueError(f"subset={subset!r} is not valid; expected integers (0-based eigen-indices)")
    bad = [int(i) for i in items if not 0 <= i < d_y]
    if bad:
        raise ValueError(f"subset={set(items)!r} has index {bad[0]} out of range: eigen-indices are 0..{d_y - 1}")
    if len(set(items)) != len(items):
        raise ValueError(f"subset={items!r} has a repeated index")
    if len(items) > rm:
        raise ValueError(f"subset={set(items)!r} is larger than r_max = {rm}: |S| = {len(items)} cannot be the rank "
                         f"of W_H...W_1")
    return tuple(sorted(int(i) for i in items))


def _normal(key, shape) -> np.ndarray:
    return np.asarray(jax.random.normal(key, shape, jnp.float32), np.float64)


def _orthonormal(key, n: int, r: int) -> np.ndarray:
    """A random n×r matrix with orthonormal columns (NumPy float64)."""
    return np.linalg.qr(_normal(key, (n, n)))[0][:, :r]


def _gauge(key, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A random invertible D = Q₁ diag(s) Q₂ with s ∈ [½, 2] (condition number ≤ 4) and D⁻¹."""
    k1, k2, k3 = jax.random.split(key, 3)
    q1, q2 = _orthonormal(k1, n, n), _orthonormal(k2, n, n)
    s = np.asarray(jax.random.uniform(k3, (n,), jnp.float32, 0.5, 2.0), np.float64)
    return (q1 * s) @ q2, (q2.T / s) @ q1.T


def critical_point(X, Y, widths, subset, key: jax.Array, balanced: bool = False,
                   extra_rank: tuple[int, int] = (0, 0)) -> list[jax.Array]:
    r"""Weights [W_1..W_H] of a critical point of L with W_{H:1} = U_S U_Sᵀ Y Xᵀ(XXᵀ)⁻¹.

    Let r = |S|, U_S (d_y, r) the eigenvectors of S and B = U_Sᵀ A (r, d_x). The base factorisation
    goes through rank r: W_1 = [B; 0], W_h = [[I_r, 0], [0, 0]] (1 < h < H), W_H = [U_S, 0]; then
    random invertible gauges D_h (n_h × n_h, condition ≤ 4) give W_h ← D_h W_h D_{h−1}⁻¹, which keeps
    the product and criticality (L is invariant under them). It is critical because
    ∇_{W_h} L = 2 W_{H:h+1}ᵀ (W_{H:1} − A) XXᵀ W_{h−1:1}ᵀ, and range W_{H:h+1} ⊆ span U_S for h < H
    while U_{S^c}ᵀ A XXᵀ W_{H−1:1}ᵀ = U_{S^c}ᵀ Σ U_S (…) = 0.

    ``balanced=True``: with P = Ũ diag(σ) Ṽᵀ (top r singular triplets), W_1 = Q_1 σ^{1/H} Ṽᵀ,
    W_h = Q_h σ^{1/H} Q_{h−1}ᵀ, W_H = Ũ σ^{1/H} Q_{H−1}ᵀ with random orthonormal Q_h (n_h, r), so that
    W_{h+1}ᵀ W_{h+1} = W_h W_hᵀ for every h.

    ``extra_rank=(q_in, q_out)`` (H ≥ 3 only) fills q_in spare rows of the base W_1 and q_out spare
    columns of the base W_H with random entries before the gauges: the product and criticality are
    unchanged (the middle layers annihilate the spare coordinates) but rank W_1 = r + q_in and
    rank W_H = r + q_out, so the ranks of the partial products differ from the minimal ones.
    ``key``: a PRNG key. Returns float arrays of the data's dtype.
    """
    X, Y = check_data(X, Y)
    widths = check_widths(widths)
    spec = dln_spectrum(X, Y)
    dims = (X.shape[0], *widths, Y.shape[0])
    H, dt = len(dims) - 1, X.dtype
    S = check_subset(subset, Y.shape[0], r_max(dims[0], dims[-1], widths))
    r = len(S)
    q_in, q_out = _check_extra(extra_rank, balanced, dims, r)
    U_S = spec.eigenvectors[:, list(S)]
    B = U_S.T @ spec.A
    keys = jax.random.split(key, H + 2)
    if balanced:
        u, s, vt = np.linalg.svd(U_S @ B, full_matrices=False)
        root = s[:r] ** (1.0 / H)
        Q = [_orthonormal(keys[h], dims[h], r) for h in range(1, H)]
        ws = [(Q[0] * root) @ vt[:r]] + [(Q[h] * root) @ Q[h - 1].T for h in range(1, H - 1)]
        return [jnp.asarray(w, dt) for w in ws + [(u[:, :r] * root) @ Q[-1].T]]
    ws = [np.zeros((dims[h], dims[h - 1])) for h in range(1, H + 1)]
    ws[0][:r] = B
    for h in range(1, H - 1):
        ws[h][:r, :r] = np.eye(r)
    ws[-1][:, :r] = U_S
    scale = float(np.linalg.norm(spec.A, 2))
    ws[0][r:r + q_in] = (scale / math.sqrt(dims[0])) * _normal(keys[-2], (dims[1], dims[0]))[:q_in]
    ws[-1][:, r:r + q_out] = _normal(keys[-1], (dims[-1], dims[-2]))[:, :q_out] / math.sqrt(dims[-1])
    gauges = [_gauge(keys[h], dims[h]) for h in range(1, H)]
    for h in range(H):
        if h < H - 1:
            ws[h] = gauges[h][0] @ ws[h]
        if h > 0:
            ws[h] = ws[h] @ gauges[h - 1][1]
    return [jnp.asarray(w, dt) for w in ws]


def _check_extra(extra_rank, balanced: bool, dims: tuple[int, ...], r: int) -> tuple[int, int]:
    try:
        q_in, q_out = (int(v) for v in extra_rank)
    except (TypeError, ValueError):
        raise ValueError(f"extra_rank={extra_rank!r} is not valid; expected a pair (q_in, q_out) of integers") from None
    if q_in < 0 or q_out < 0:
        raise ValueError(f"extra_rank={extra_rank!r} is not valid; both entries must be >= 0")
    if (q_in or q_out) and (balanced or len(dims) < 4):
        raise ValueError(f"extra_rank={extra_rank!r} needs H >= 3 and balanced=False (with H = 2 the extra rank "
                         f"would break criticality)")
    if q_in and q_out and len(dims) < 5:
        raise ValueError(f"extra_rank={extra_rank!r}: extra rank on both sides needs H >= 4 (with H = 3 the "
                         f"gradient of W_2 would not vanish)")
    if r + q_in > min(dims[0], dims[1]) or r + q_out > min(dims[-1], dims[-2]):
        raise ValueError(f"extra_rank={extra_rank!r} is too large: need |S| + q_in <= min(d_x, n_1) = "
                         f"{min(dims[0], dims[1])} and |S| + q_out <= min(d_y, n_(H-1)) = {min(dims[-1], dims[-2])}")
    return q_in, q_out


def recover_subset(product: jax.Array, X, Y) -> tuple[frozenset, float]:
    """S from an end-to-end product P (d_y, d_x), and ‖P − U_S U_Sᵀ A‖_F / ‖A‖_F.

    At a critical point P X Yᵀ = U_S diag(λ_S) U_Sᵀ, so s_i = u_iᵀ P X Yᵀ u_i / λ_i is 1 for i ∈ S
    and 0 otherwise; S = {i : s_i > ½} (indices with λ_i = 0 are never included). The residual is
    ~0 exactly when P is the critical product of S.
    """
    X, Y = check_data(X, Y)
    spec = dln_spectrum(X, Y)
    eps = float(jnp.finfo(X.dtype).eps)
    X, Y, P = (np.asarray(a, np.float64) for a in (X, Y, product))
    if P.shape != spec.A.shape:
        raise ValueError(f"product has shape {P.shape}; expected (d_y, d_x) = {spec.A.shape}")
    U, lam = spec.eigenvectors, spec.eigenvalues
    captured = np.einsum("ai,ab,bi->i", U, P @ X @ Y.T, U)
    positive = lam > math.sqrt(eps) * lam[0]
    S = frozenset(int(i) for i in np.nonzero(positive & (captured > 0.5 * lam))[0])
    U_S = U[:, sorted(S)]
    resid = np.linalg.norm(P - U_S @ U_S.T @ spec.A) / max(float(np.linalg.norm(spec.A)), 1e-300)
    return S, float(resid)


def __getattr__(name: str):
    """``dln.classify`` and friends live in :mod:`.dln_kind`, ``dln.gradient_descent`` … in
    :mod:`.dln_dynamics` (PEP 562 lazy attributes: no import cycle)."""
    from . import dln_dynamics, dln_kind

    for mod in (dln_kind, dln_dynamics):
        if name in mod.__all__:
            return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
