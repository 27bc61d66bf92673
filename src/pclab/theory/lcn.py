r"""Linear convolutional networks (LCNs): end-to-end filter, invariants and the function-space
metric K = Dμ Dμᵀ of gradient flow (Achour, Kohn & Rauhut, arXiv 2507.06367).

Conventions. A filter ``w_l`` is an array of taps, 1-D (k,) or 2-D (k, k'); all filters of a
network have the same dimension D. Layer l is the strided *valid cross-correlation*

    (w ⋆_s x)[i] = Σ_j w[j] · x[s·i + j]          (2-D: the same on both axes, one stride s)

(:func:`strided_conv`), applied in the order w_1 (on the input), w_2, …, with strides s_1, s_2, ….
The network is then one strided correlation with stride Π_l s_l and the end-to-end filter
v = μ(w_1, …, w_L) whose polynomial π(v)(t) = Σ_j v[j] t^j (coefficients lowest power first) is

    π(v)(t) = π(w_1)(t) · π(w_2)(t^{s_1}) · π(w_3)(t^{s_1 s_2}) ⋯

(:func:`end_to_end_filter`; in 2-D t^j is t_1^{j_1} t_2^{j_2} and t^s means (t_1^s, t_2^s)). This
convention is fixed by a test against the explicit composition of :func:`strided_conv`.

Gradient flow ẇ = −∇_w ℓ(μ(w)) conserves δ_l = ‖w_{l+1}‖² − ‖w_l‖² (:func:`invariants`; μ is
invariant under w_l → c w_l, w_{l+1} → w_{l+1}/c) and moves v by v̇ = −K(w) ∇_v ℓ(v) with
K = Dμ Dμᵀ (:func:`metric`). The paper shows this is a Riemannian flow in v (K a function of v and
the invariants) for D ≥ 2, and for D = 1 when all strides are > 1. For D = 1 and stride 1 it fails:
w_1 = (1, a), w_2 = (1, b) and w_1' = c(1, b), w_2' = (1, a)/c, c² = (1+a²)/(1+b²), share v and δ
but not K (:func:`swapped_factors`; derived, tested). The same swap exists in 2-D at stride 1 when
w_1 and w_2 have the same shape, so K is a function of (v, δ) there only for filters of different
shapes (measured; the paper's exact conditions were not read). :func:`fibre_point` finds points
with given (v, δ) from any start, to probe this numerically.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ._random import normal_draw

_HIGHEST = jax.lax.Precision.HIGHEST


def check_filters(filters, strides=None) -> tuple[list[jax.Array], tuple[int, ...] | None]:
    """Filters as floating arrays of one dimension D ∈ {1, 2}; strides as L integers ≥ 1."""
    if isinstance(filters, (jax.Array,)) or not isinstance(filters, Sequence) or len(filters) < 1:
        raise ValueError(f"filters must be a non-empty list of 1-d or 2-d arrays; got {type(filters).__name__}")
    ws = [jnp.asarray(w) for w in filters]
    D = ws[0].ndim
    for i, w in enumerate(ws):
        if w.ndim not in (1, 2):
            raise ValueError(f"filters[{i}] has shape {tuple(w.shape)}; expected a 1-d (k,) or 2-d (k, k') filter")
        if w.ndim != D:
            raise ValueError(f"filters[{i}] is {w.ndim}-d but filters[0] is {D}-d: all filters must have one dimension")
        if 0 in w.shape:
            raise ValueError(f"filters[{i}] has an empty shape {tuple(w.shape)}")
    dt = jnp.result_type(*ws)
    dt = dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)
    ws = [w.astype(dt) for w in ws]
    if strides is None:
        return ws, None
    strides = tuple(strides)
    if len(strides) != len(ws):
        raise ValueError(f"strides has {len(strides)} entries but there are {len(ws)} filters; expected one per layer")
    for i, s in enumerate(strides):
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ValueError(f"strides[{i}]={s!r} is not valid; expected an integer >= 1")
    return ws, strides


def strided_conv(x: Float[Array, "*n"], w: Float[Array, "*k"], stride: int = 1) -> Float[Array, "*m"]:
    """Valid strided cross-correlation y[i] = Σ_j w[j] x[s·i + j] (1-D or 2-D, explicit gathers);
    output size ⌊(n − k)/s⌋ + 1 per axis."""
    x, w = jnp.asarray(x), jnp.asarray(w)
    if x.ndim != w.ndim or w.ndim not in (1, 2):
        raise ValueError(f"x has shape {tuple(x.shape)} and w {tuple(w.shape)}; expected both 1-d or both 2-d")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride={stride!r} is not valid; expected an integer >= 1")
    if any(n < k for n, k in zip(x.shape, w.shape)):
        raise ValueError(f"x of shape {tuple(x.shape)} is smaller than the filter {tuple(w.shape)}")
    return _strided_conv(x, w, stride)


@partial(jax.jit, static_argnums=2)
def _strided_conv(x, w, stride):
    idx = [stride * jnp.arange((n - k) // stride + 1)[:, None] + jnp.arange(k)[None, :]
           for n, k in zip(x.shape, w.shape)]
    if w.ndim == 1:
        return jnp.matmul(x[idx[0]], w, precision=_HIGHEST)
    patches = x[idx[0][:, :, None, None], idx[1][None, None, :, :]]  # (m1, k1, m2, k2)
    return jnp.einsum("iajb,ab->ij", patches, w, precision=_HIGHEST)


def dilate(w: Float[Array, "*k"], s: int) -> Float[Array, "*m"]:
    """Coefficients of π(w)(t^s): w[j] moved to s·j on every axis (size s(k − 1) + 1)."""
    out = jnp.zeros(tuple(s * (k - 1) + 1 for k in w.shape), w.dtype)
    return out.at[tuple(slice(None, None, s) for _ in w.shape)].set(w)


def polymul(p: Float[Array, "*a"], q: Float[Array, "*b"]) -> Float[Array, "*c"]:
    """Coefficients of π(p)·π(q) (full convolution): r[t] = Σ_{a+b=t} p[a] q[b], any dimension."""
    outer = jnp.tensordot(p, q, axes=0, precision=_HIGHEST)
    d = p.ndim
    idx = [jnp.arange(p.shape[j]).reshape((-1,) + (1,) * (2 * d - 1 - j)) + jnp.arange(q.shape[j]).reshape(
        (1,) * (d + j) + (-1,) + (1,) * (d - 1 - j)) for j in range(d)]
    r = jnp.zeros(tuple(a + b - 1 for a, b in zip(p.shape, q.shape)), outer.dtype)
    return r.at[tuple(idx)].add(outer)


def end_to_end_filter(filters: Sequence[Array], strides: Sequence[int]) -> Array:
    """v = μ(w_1..w_L): π(v)(t) = Π_l π(w_l)(t^{s_1 ⋯ s_{l−1}}), coefficients lowest power first.

    ``strides`` has one entry per layer (s_L only sets the network's total stride Π s_l, not v).
    Shape: k_1 + Σ_{l≥2} (k_l − 1) s_1⋯s_{l−1} per axis."""
    ws, strides = check_filters(filters, strides)
    return _end_to_end(ws, strides)


@partial(jax.jit, static_argnums=1)
def _end_to_end(ws, strides):
    v, cum = ws[0], 1
    for w, s_prev in zip(ws[1:], strides[:-1]):
        cum *= s_prev
        v = polymul(v, dilate(w, cum))
    return v


def invariants(filters: Sequence[Array]) -> Float[Array, "L-1"]:
    """δ_l = ‖w_{l+1}‖² − ‖w_l‖², l = 1..L−1 (conserved by parameter gradient flow)."""
    ws, _ = check_filters(filters)
    return _invariants(ws)


@jax.jit
def _invariants(ws):
    sq = jnp.stack([jnp.sum(w**2) for w in ws])
    return sq[1:] - sq[:-1]


def jacobian(filters: Sequence[Array], strides: Sequence[int]) -> Float[Array, "V P"]:
    """Dμ: the Jacobian of vec(v) in the concatenated vec(w_1), …, vec(w_L) (``jax.jacobian``)."""
    ws, strides = check_filters(filters, strides)
    return _jacobian(ws, strides)


@partial(jax.jit, static_argnums=1)
def _jacobian(ws, strides):
    flat, unravel = ravel_pytree(ws)
    return jax.jacobian(lambda th: _end_to_end(unravel(th), strides).ravel())(flat)


def metric(filters: Sequence[Array], strides: Sequence[int]) -> Float[Array, "V V"]:
    """K = Dμ Dμᵀ (dim v × dim v): the function-space flow is v̇ = −K ∇_v ℓ(v)."""
    ws, strides = check_filters(filters, strides)
    J = _jacobian(ws, strides)
    return jnp.matmul(J, J.T, precision=_HIGHEST)


def swapped_factors(a: float, b: float) -> tuple[list[Array], list[Array]]:
    """The D = 1, stride-1 counterexample: (w_1, w_2) = ((1, a), (1, b)) and
    (w_1', w_2') = (c(1, b), (1, a)/c) with c² = (1+a²)/(1+b²): equal v and δ, different K."""
    c = jnp.sqrt((1.0 + a**2) / (1.0 + b**2))
    w = [jnp.array([1.0, a]), jnp.array([1.0, b])]
    return w, [c * jnp.array([1.0, b]), jnp.array([1.0, a]) / c]


def fibre_point(v: Array, delta: Array, start: Sequence[Array], strides: Sequence[int],
                steps: int = 50) -> tuple[list[Array], Array]:
    """A parameter point w with μ(w) = v and δ(w) = δ, by Levenberg–Marquardt steps on
    r(w) = [vec(μ(w) − v), δ(w) − δ] from ``start`` (which fixes the filter shapes).
    Returns (filters, ‖r‖ at the end); ‖r‖ ≈ 1e-15 means the point lies on the fibre."""
    ws, strides = check_filters(start, strides)
    return _fibre_point(jnp.asarray(v, ws[0].dtype), jnp.asarray(delta, ws[0].dtype), ws, strides, steps)


@partial(jax.jit, static_argnums=(3, 4))
def _fibre_point(v, delta, ws, strides, steps):
    flat, unravel = ravel_pytree(ws)

    def residual(th):
        w = unravel(th)
        return jnp.concatenate([(_end_to_end(w, strides) - v).ravel(), _invariants(w) - delta])

    def body(_, carry):  # Levenberg–Marquardt: keep a step only if it lowers ‖r‖, adapt the damping
        th, lam = carry
        r, J = residual(th), jax.jacfwd(residual)(th)
        JtJ = jnp.matmul(J.T, J, precision=_HIGHEST)
        step = jnp.linalg.solve(JtJ + lam * jnp.diag(jnp.diag(JtJ) + 1e-12), -jnp.matmul(J.T, r, precision=_HIGHEST))
        better = jnp.sum(residual(th + step) ** 2) < jnp.sum(r**2)
        return jnp.where(better, th + step, th), jnp.where(better, lam * 0.2, lam * 10.0)

    th, _ = jax.lax.fori_loop(0, steps, body, (flat, jnp.asarray(1e-3, flat.dtype)))
    return unravel(th), jnp.linalg.norm(residual(th))


def fibre_metrics(filters: Sequence[Array], strides: Sequence[int], key: jax.Array, restarts: int = 10,
                  scale: float = 2.0, steps: int = 60) -> tuple[Float[Array, "R"], Float[Array, "R"]]:
    """Is K a function of (v, δ)? From ``restarts`` random starts (entries N(0, scale²)) find fibre
    points w' of (μ(w), δ(w)) by :func:`fibre_point`; return their residuals and
    ‖K(w') − K(w)‖_F / ‖K(w)‖_F (meaningful where the residual is ≈ 0)."""
    ws, strides = check_filters(filters, strides)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts={restarts!r} is not valid; expected an integer >= 1")
    return _fibre_metrics(ws, strides, key, restarts, scale, steps)


@partial(jax.jit, static_argnums=(1, 3, 5))
def _fibre_metrics(ws, strides, key, restarts, scale, steps):
    v, delta = _end_to_end(ws, strides), _invariants(ws)
    gram = lambda w: (lambda J: J @ J.T)(_jacobian(w, strides))  # noqa: E731
    K = gram(ws)
    sizes = np.cumsum([0] + [w.size for w in ws])
    flat = scale * normal_draw(key, (restarts, int(sizes[-1])), ws[0].dtype)
    starts = [flat[:, a:b].reshape((restarts,) + w.shape) for a, b, w in zip(sizes[:-1], sizes[1:], ws)]
    pts, res = jax.vmap(lambda st: _fibre_point(v, delta, st, strides, steps))(starts)
    Ks = jax.vmap(gram)(pts)
    return res, jnp.linalg.norm(Ks - K, axis=(1, 2)) / jnp.linalg.norm(K)
