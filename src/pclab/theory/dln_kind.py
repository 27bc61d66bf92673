r"""Second-order kind of a point of a deep linear network: minimum, strict or non-strict saddle.

Conventions as in :mod:`pclab.theory.dln` (X (d_x, n), Y (d_y, n), L = ‖W_H⋯W_1 X − Y‖²_F).
Parameters are flattened layer by layer, row-major: θ = (vec W_1, …, vec W_H), P = Σ_h n_h n_{h−1}.

:func:`classify` decides, in this order (what is proven and what is numerical):

1. ``not_critical``: ‖∇L‖ > grad_tol (numerical).
2. ``global_minimum``: |L − L_min| ≤ value_tol with L_min = tr(YYᵀ) − Σ_{i<r_max} λ_i, which is
   the minimum of L over all weights (closed form, proven: Eckart–Young in the whitened
   coordinates; arXiv 2107.13289).
3. ``strict_saddle``: λ_min(∇²L) < −tol (numerical eigenvalue of the autodiff Hessian).
4. ``non_strict_saddle``: otherwise (∇²L ⪰ −tol). That the point is a saddle and not a local
   minimum is proven (no spurious local minima: Kawaguchi, arXiv 1605.07110; arXiv 2107.13289).
   A higher-order probe gives a numerical certificate: along null directions Δ of the Hessian,
   L(W + tΔ) − L(W) = Σ_k c_k t^k is an exact polynomial of degree 2H (coefficients from the
   matrix polynomial Π_h (W_h + tΔ_h)); the lowest order k ≥ 3 with |c_k| > √eps·(its rounding scale) that
   descends (k odd, or c_k < 0) and a t where it dominates the other terms are reported as
   ``escape_order`` and ``escape_drop`` = L(W + tΔ) − L(W) < 0. The probe is numerical.

``predicted`` gives the closed-form kind where it is certain: S = {0..r_max−1} → global minimum;
H = 2 → every other critical point is a strict saddle (Baldi–Hornik; arXiv 2107.13289); all
weights zero with H ≥ 3 → zero Hessian, non-strict saddle. For H ≥ 3 the paper's criterion on the
ranks of W_{h:1} and W_{H:h+1} was not encoded: those cases are classified numerically (the ranks
are reported beside). Default tolerances: grad_tol = √eps·(a bound of ‖∇L‖ from the norms of the
partial products), tol = √eps·max(‖∇²L‖₂, Hessian scale at weights of size ‖A‖^{1/H}),
value_tol = √eps·tr(YYᵀ) capped at half the gap to the next critical value.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .dln import check_data, check_weights, dln_loss, dln_spectrum, partial_product, r_max, recover_subset

__all__ = ["DLNClassification", "classify", "dln_gradient", "dln_hessian", "line_coefficients"]
KINDS = ("global_minimum", "strict_saddle", "non_strict_saddle", "not_critical")


@dataclass(frozen=True, eq=False)
class DLNClassification:
    """The kind of a point and the evidence (see the module docstring for each rule)."""

    kind: str
    rule: str
    predicted: str | None          # the closed-form kind where it is certain, else None
    value: float                   # L(W)
    min_value: float               # L_min = tr(YYᵀ) − Σ_{i<r_max} λ_i
    subset: frozenset              # S recovered from W_{H:1}
    critical_value: float          # tr(YYᵀ) − Σ_{i∈S} λ_i
    subset_residual: float         # ‖W_{H:1} − U_S U_Sᵀ A‖_F / ‖A‖_F
    grad_norm: float
    grad_scale: float              # 2‖X‖₂‖W_{H:1}X − Y‖_F (Σ_h ‖W_{H:h+1}‖₂²‖W_{h−1:1}‖₂²)^{1/2} ≥ ‖∇L‖
    grad_tol: float
    lambda_min: float
    lambda_max: float
    tol: float
    n_null: int                    # Hessian eigenvalues with |λ| ≤ tol
    rank_product: int              # rank W_{H:1}
    ranks_prefix: tuple            # rank W_{h:1}, h = 1..H−1
    ranks_suffix: tuple            # rank W_{H:h+1}, h = 1..H−1
    escape_order: int | None       # lowest descending Taylor order found along a null direction
    escape_drop: float | None      # L(W + tΔ) − L(W) < 0 at the certifying t
    hessian_eigenvalues: np.ndarray = field(repr=False)

    def as_row(self) -> dict:
        """A flat dict for a CSV row (S as '{0,2}', ranks as 'a|b', no eigenvalues)."""
        row = {k: v for k, v in asdict(self).items() if k != "hessian_eigenvalues"}
        row["subset"] = "{" + ",".join(str(i) for i in sorted(self.subset)) + "}"
        row["ranks_prefix"] = "|".join(map(str, self.ranks_prefix))
        row["ranks_suffix"] = "|".join(map(str, self.ranks_suffix))
        return row


def _flat_loss(theta, shapes, X, Y):
    ends = np.cumsum([a * b for a, b in shapes])
    ws = [theta[e - a * b:e].reshape(a, b) for e, (a, b) in zip(ends, shapes)]
    return dln_loss(ws, X, Y)


@functools.partial(jax.jit, static_argnames="shapes")
def _derivatives(theta, shapes, X, Y):
    value, grad = jax.value_and_grad(_flat_loss)(theta, shapes, X, Y)
    h = jax.hessian(_flat_loss)(theta, shapes, X, Y)
    return value, grad, 0.5 * (h + h.T)


def _theta(ws):
    return jnp.concatenate([w.reshape(-1) for w in ws]), tuple(tuple(w.shape) for w in ws)


def dln_gradient(weights, X, Y) -> jax.Array:
    """∇_θ L, shape (P,), θ = (vec W_1, …, vec W_H) row-major."""
    X, Y = check_data(X, Y)
    theta, shapes = _theta(check_weights(weights, X, Y))
    return _derivatives(theta, shapes, X, Y)[1]


def dln_hessian(weights, X, Y) -> jax.Array:
    """∇²_θ L = ``jax.hessian`` of L(θ), shape (P, P), symmetrised; the matrix :func:`classify` uses."""
    X, Y = check_data(X, Y)
    theta, shapes = _theta(check_weights(weights, X, Y))
    return _derivatives(theta, shapes, X, Y)[2]


@jax.jit
def _coefficients(ws, ds, X, Y):
    """Coefficients c_0..c_{2H} of L(W + tΔ) and their rounding scales Σ_{j+k=m} ⟨|R|_j, |R|_k⟩,
    where |R|_k bounds the k-th coefficient of R(t) = Π_h(W_h + tΔ_h) X − Y computed in absolute values."""
    Z, Za = X[None], jnp.abs(X)[None]                      # coefficients of Π(W_h + tΔ_h) X, degree 0
    for W, D in zip(ws, ds):
        new = jnp.zeros((Z.shape[0] + 1, W.shape[0], X.shape[1]), X.dtype)
        Z = new.at[:-1].add(jnp.einsum("ab,kbn->kan", W, Z)).at[1:].add(jnp.einsum("ab,kbn->kan", D, Z))
        Za = new.at[:-1].add(jnp.einsum("ab,kbn->kan", jnp.abs(W), Za)).at[1:].add(
            jnp.einsum("ab,kbn->kan", jnp.abs(D), Za))
    R, Ra = Z.at[0].add(-Y), Za.at[0].add(jnp.abs(Y))
    idx = jnp.arange(len(ws) + 1)
    anti = idx[:, None] + idx[None, :] == jnp.arange(2 * len(ws) + 1)[:, None, None]
    return (jnp.sum(anti * jnp.einsum("jan,kan->jk", R, R), axis=(1, 2)),
            jnp.sum(anti * jnp.einsum("jan,kan->jk", Ra, Ra), axis=(1, 2)))


def line_coefficients(weights, directions, X, Y) -> tuple[jax.Array, jax.Array]:
    """Exact coefficients c_0..c_{2H} of t ↦ L(W + tΔ) (c_0 = L(W)) and their rounding scales (the
    same sums in absolute values), for ``directions`` [Δ_1..Δ_H] of the weights' shapes."""
    X, Y = check_data(X, Y)
    ws = check_weights(weights, X, Y)
    ds = [jnp.asarray(d, X.dtype) for d in directions]
    return _coefficients(ws, ds, X, Y)


def _unflatten(v, shapes):
    ends = np.cumsum([a * b for a, b in shapes])
    return [v[e - a * b:e].reshape(a, b) for e, (a, b) in zip(ends, shapes)]


def _sphere_search(ws, null, X, Y, V0, order: int, iters: int = 200):
    """Minimise ∓c_order(N v) over unit vectors v from each column of V0 (normalised projected
    gradient steps of decreasing angle): −c_3 (the cubic form is odd, so its maximum is a descent
    after t → −t) or +c_4 (the quartic form's minimum)."""
    shapes = tuple(tuple(w.shape) for w in ws)
    sign = -1.0 if order == 3 else 1.0
    form = lambda v: sign * _coefficients(ws, _unflatten(null @ v, shapes), X, Y)[0][order]  # noqa: E731
    grad = jax.vmap(jax.grad(form), in_axes=1, out_axes=1)

    def step(V, i):
        G = grad(V)
        G = G - V * jnp.sum(G * V, axis=0)
        V = V - 0.3 * 0.98 ** i * G / (jnp.linalg.norm(G, axis=0) + 1e-300)
        return V / jnp.linalg.norm(V, axis=0), None

    return jax.lax.scan(step, V0 / jnp.linalg.norm(V0, axis=0), jnp.arange(iters))[0]


@jax.jit
def _probe(ws, null, X, Y, V0, scale):
    """Coefficients (and rounding scales) along the directions found for order 3 and order 4:
    arrays (2, K, 2H + 1). ``null`` (P, P) holds the null basis, zero-padded (one compilation per
    architecture); V0 (P, K) is zero on the padded rows."""
    shapes = tuple(tuple(w.shape) for w in ws)
    coeff = jax.vmap(lambda v: _coefficients(ws, _unflatten(scale * (null @ v), shapes), X, Y), in_axes=1)
    out = [coeff(_sphere_search(ws, null, X, Y, V0, order)) for order in (3, 4)]
    return jnp.stack([o[0] for o in out]), jnp.stack([o[1] for o in out])


def _certify(c: np.ndarray, s: np.ndarray, root_eps: float) -> tuple[int, float] | None:
    """(k, L(W + tΔ) − L(W)) if the lowest significant order k ≥ 3 descends and dominates the other
    terms at some t (so the drop is negative by the triangle inequality), else None."""
    big = [k for k in range(3, len(c)) if abs(c[k]) > root_eps * max(s[k], 1e-300)]
    if not big or (big[0] % 2 == 0 and c[big[0]] > 0):
        return None
    k = big[0]
    others, powers = np.abs(np.delete(c[1:], k - 1)), np.delete(np.arange(1, len(c)), k - 1)
    ok = [t for t in np.logspace(0, -8, 49) if np.sum(others * t ** powers) < 0.5 * abs(c[k]) * t ** k]
    if not ok:
        return None
    t = (-np.sign(c[k]) if k % 2 else 1.0) * ok[0]
    return k, float(np.sum(c[1:] * t ** np.arange(1, len(c))))


def _escape(ws, X, Y, null, key, scale, n_random: int):
    """(order, drop) of the best certified descent along the Hessian's null space, or (None, None):
    order 3 (maximise the cubic form on the unit sphere of the null space), else order 4 (minimise
    the quartic form), from ``n_random`` random starts."""
    P, m = null.shape
    root_eps = math.sqrt(float(jnp.finfo(X.dtype).eps))
    padded = np.zeros((P, P))
    padded[:, :m] = null
    V0 = np.asarray(jax.random.normal(key, (P, n_random), jnp.float32), np.float64)
    V0[m:] = 0.0
    dt = X.dtype
    coefs, sizes = (np.asarray(a, np.float64) for a in _probe(ws, jnp.asarray(padded, dt), X, Y, jnp.asarray(V0, dt),
                                                             scale))
    for c_order, s_order in zip(coefs, sizes):
        found = [f for f in (_certify(c, s, root_eps) for c, s in zip(c_order, s_order)) if f]
        if found:
            return min(found, key=lambda f: (f[0], f[1]))
    return None, None


def _rank(M, bound: float, root_eps: float) -> int:
    return int(np.sum(np.linalg.svd(np.asarray(M), compute_uv=False) > root_eps * bound)) if bound > 0 else 0


def classify(weights, X, Y, tol: float | None = None, grad_tol: float | None = None,
             value_tol: float | None = None, key: jax.Array | None = None, n_random: int = 16) -> DLNClassification:
    """Classify ``weights`` [W_1..W_H] on (X (d_x, n), Y (d_y, n)); see the module docstring.

    ``key`` draws the random null directions of the probe (default ``PRNGKey(0)``: deterministic).
    Dense Hessian: P × P, meant for small networks.
    """
    X, Y = check_data(X, Y)
    ws = check_weights(weights, X, Y)
    for name, t in (("tol", tol), ("grad_tol", grad_tol), ("value_tol", value_tol)):
        if t is not None and not (t >= 0 and math.isfinite(t)):
            raise ValueError(f"{name}={t!r} is not valid; expected a finite number >= 0")
    spec = dln_spectrum(X, Y)
    H, dims = len(ws), [ws[0].shape[1]] + [w.shape[0] for w in ws]
    rm = r_max(dims[0], dims[-1], dims[1:-1])
    lam = np.asarray(spec.eigenvalues, np.float64)
    root_eps = math.sqrt(float(jnp.finfo(X.dtype).eps))
    theta, shapes = _theta(ws)
    value, grad, hess = _derivatives(theta, shapes, X, Y)
    ev_np, vecs = np.linalg.eigh(np.asarray(hess, np.float64))
    wn, Xn, Yn = [np.asarray(w, np.float64) for w in ws], np.asarray(X, np.float64), np.asarray(Y, np.float64)
    norms = [float(np.linalg.norm(w, 2)) for w in wn]
    prods = [partial_product(wn, 1, h) for h in range(0, H + 1)]          # W_{h:1}, h = 0..H
    sufs = [partial_product(wn, h + 1, H) for h in range(0, H + 1)]       # W_{H:h+1}, h = 0..H
    resid = float(np.linalg.norm(prods[H] @ Xn - Yn))
    grad_scale = 2 * float(np.linalg.norm(Xn, 2)) * resid * math.sqrt(sum(
        (float(np.linalg.norm(sufs[h], 2)) * float(np.linalg.norm(prods[h - 1], 2))) ** 2 for h in range(1, H + 1)))
    grad_tol = root_eps * grad_scale if grad_tol is None else float(grad_tol)
    s0 = max(float(np.linalg.norm(spec.A, 2)), 1e-300) ** (1.0 / H)
    h_scale = 2 * float(np.linalg.norm(Xn @ Xn.T, 2)) * s0 ** (2 * (H - 1))
    tol = root_eps * max(float(np.max(np.abs(ev_np))), h_scale) if tol is None else float(tol)
    min_value = spec.trace_yy - float(lam[:rm].sum())
    gap = float(lam[rm - 1] - (lam[rm] if rm < len(lam) else 0.0)) if rm > 0 else math.inf
    value_tol = min(root_eps * spec.trace_yy, 0.5 * gap if gap > 0 else math.inf) if value_tol is None else value_tol
    S, s_resid = recover_subset(prods[H], X, Y)
    value, grad_norm = float(value), float(np.linalg.norm(np.asarray(grad, np.float64)))
    rank_of = lambda M, lo, hi: _rank(M, float(np.prod(norms[lo - 1:hi])), root_eps)  # noqa: E731
    ranks_prefix = tuple(rank_of(prods[h], 1, h) for h in range(1, H))
    ranks_suffix = tuple(rank_of(sufs[h], h + 1, H) for h in range(1, H))
    order = drop = None
    if grad_norm > grad_tol:
        kind, rule = "not_critical", "numerical: ||grad L|| > grad_tol"
    elif abs(value - min_value) <= value_tol:
        kind, rule = "global_minimum", "closed form: L = tr(YY^T) - sum_{i<r_max} lambda_i, the minimum of L"
    elif ev_np[0] < -tol:
        kind, rule = "strict_saddle", "numerical: lambda_min(hess L) < -tol"
    else:
        null = vecs[:, np.abs(ev_np) <= tol]
        if null.shape[1]:
            scale = max(float(np.linalg.norm(np.asarray(theta, np.float64))) / math.sqrt(H), s0)
            order, drop = _escape(ws, X, Y, null, jax.random.PRNGKey(0) if key is None else key, scale, n_random)
        kind = "non_strict_saddle"
        rule = (f"numerical: hess L >= -tol; order-{order} descent along a null direction" if order else
                "theorem: no spurious local minima (hess L >= -tol; the probe found no descent)")
    predicted = None
    if kind != "not_critical":
        if S == frozenset(range(rm)):
            predicted = "global_minimum"
        elif H == 2:
            predicted = "strict_saddle"
        elif all(n == 0 for n in norms):
            predicted = "non_strict_saddle"
    return DLNClassification(
        kind=kind, rule=rule, predicted=predicted, value=value, min_value=min_value, subset=S,
        critical_value=spec.trace_yy - float(lam[sorted(S)].sum()), subset_residual=s_resid,
        grad_norm=grad_norm, grad_scale=grad_scale, grad_tol=grad_tol, lambda_min=float(ev_np[0]),
        lambda_max=float(ev_np[-1]), tol=tol, n_null=int(np.sum(np.abs(ev_np) <= tol)),
        rank_product=rank_of(prods[H], 1, H), ranks_prefix=ranks_prefix, ranks_suffix=ranks_suffix,
        escape_order=order, escape_drop=drop, hessian_eigenvalues=ev_np)
