r"""Minimising the orthogonality regulariser, and probing boundaries that have no encoded rule.

:func:`fit_orthogonal_kernel` runs Adam on L_orth(K) (arXiv 1911.12207, 2108.05623) from a random
kernel, then a few matrix-free Gauss–Newton steps on a residual r(K) with ‖r(K)‖² = L_orth(K) exactly
(:func:`orth_residual`), so that a feasible architecture reaches L_orth ≈ 1e-12 or below instead of
the ~1e-8 floor of a first-order method on this quartic, while an infeasible one stays at its
positive minimum (e.g. 1 for (C, M, k, S) = (1, 10, 3, 4), 3 for (1, 20, 1, 2)).

:func:`probe_boundary` does the same on the explicit matrix for 'valid' and zero-padded 'same'
boundaries: arXiv 2108.05623 shows they are far more restrictive than circular padding, but its
exact rule is not encoded here — only measured.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from ._random import normal_draw
from .orthogonal import PADDINGS, _positive_int, check_kernel, conv_matrix, kernel_gram, orthogonality_case

_HIGHEST = jax.lax.Precision.HIGHEST


def _min_size(k: int, stride: int) -> int:
    """The smallest n ≥ 2k − 1 divisible by the stride (the identities hold from there on)."""
    return -(-(2 * k - 1) // stride) * stride


def orth_residual(K: Float[Array, "M C *k"], stride: int = 1) -> Float[Array, "R"]:
    """A residual vector with ‖r‖² = L_orth(K) exactly, zero iff the convolution is orthogonal.

    Row case: the entries of G − I_centre (G = conv(K, K; padding P·S, stride S)). Column case: the
    rows of 𝒦ᵀ𝒦 − I (n = the smallest size ≥ 2k − 1) for the input pixels of one S^d block; 𝒦ᵀ𝒦 is
    periodic under shifts by S, so these C·S^d rows hold every distinct entry once per block and
    their squared norm is ‖𝒦ᵀ𝒦 − I‖²_F / (n/S)^d = L_orth(K).
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    M, C, d = K.shape[0], K.shape[1], K.ndim - 2
    row = orthogonality_case(C, M, stride, d) == "row"
    return _row_residual(K, M, stride) if row else _column_residual(K, stride)


def _row_residual(K, M, stride):
    """G − I_centre with the target δ_{mm'} on the first M channels (K may carry zero rows beyond M)."""
    Mmax, k, d = K.shape[0], K.shape[2], K.ndim - 2
    P = (k - 1) // stride
    G = kernel_gram(K, stride)
    eye = jnp.diag((jnp.arange(Mmax) < M).astype(K.dtype))
    target = jnp.zeros_like(G).at[(slice(None), slice(None)) + (P,) * d].set(eye)
    return (G - target).ravel()


def _column_residual(K, stride):
    C, k, d = K.shape[1], K.shape[2], K.ndim - 2
    n = _min_size(k, stride)
    A = conv_matrix(K, n, stride)
    cols = (jnp.arange(C)[:, None] * n**d + _block_pixels(n, stride, d)[None, :]).ravel()
    E = jnp.matmul(A[:, cols].T, A, precision=_HIGHEST)  # (C S^d, C n^d): those rows of 𝒦ᵀ𝒦
    return (E - jax.nn.one_hot(cols, C * n**d, dtype=E.dtype)).ravel()


def _block_pixels(n: int, stride: int, d: int) -> jax.Array:
    """Flat indices (C order) of the pixels of the first S^d block of an n^d image."""
    idx = jnp.stack(jnp.meshgrid(*[jnp.arange(stride)] * d, indexing="ij"), -1).reshape(-1, d)
    return jnp.sum(idx * (n ** jnp.arange(d - 1, -1, -1)), axis=1)


def _cg(A, b: Array, iters: int) -> Array:
    """``iters`` conjugate-gradient steps on A x = b from x = 0 (A symmetric positive definite)."""
    tiny = jnp.finfo(b.dtype).tiny

    def body(_, c):
        x, r, p, rs = c
        Ap = A(p)
        alpha = rs / jnp.maximum(p @ Ap, tiny)
        x, r = x + alpha * p, r - alpha * Ap
        rn = r @ r
        return x, r, r + rn / jnp.maximum(rs, tiny) * p, rn

    return jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(b), b, b, b @ b))[0]


def gauss_newton(residual, theta: Float[Array, "P"], steps: int = 10, cg_iters: int = 30,
                 damping: float = 1e-3) -> Array:
    """Minimise ‖residual(θ)‖² by damped Gauss–Newton (Levenberg) steps, matrix-free:
    (JᵀJ + λI) δ = −Jᵀr solved by ``cg_iters`` CG steps with Jacobian-vector products; a step is
    kept only if it lowers ‖r‖² (then λ ×0.3, else λ ×10). Converges fast where r = 0 is reached."""

    def body(_, carry):
        th, lam = carry
        r, jvp = jax.linearize(residual, th)
        vjp = jax.linear_transpose(jvp, th)
        delta = _cg(lambda v: vjp(jvp(v))[0] + lam * v, -vjp(r)[0], cg_iters)
        better = jnp.sum(residual(th + delta) ** 2) < jnp.sum(r**2)
        return jnp.where(better, th + delta, th), jnp.where(better, lam * 0.3, lam * 10.0)

    return jax.lax.fori_loop(0, steps, body, (theta, jnp.asarray(damping, theta.dtype)))[0]


class OrthFit(NamedTuple):
    """Result of :func:`fit_orthogonal_kernel`: the kernel, L_orth after Adam (``first_order``)
    and after the polish (``loss``), and the Adam trace of L_orth (``trace``, one per step).
    From :func:`fit_orthogonal_kernels` every field has leading axes (len(Ms), restarts) and the
    kernels have max(Ms) rows, those beyond M zero."""

    kernel: jax.Array
    loss: jax.Array
    first_order: jax.Array
    trace: jax.Array


def _adam(f, K, steps: int, lr: float):
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))

    def body(carry, _):
        K, st = carry
        val, g = jax.value_and_grad(f)(K)
        upd, st = opt.update(g, st, K)
        return (optax.apply_updates(K, upd), st), val

    (K, _), trace = jax.lax.scan(body, (K, opt.init(K)), None, steps)
    return K, trace


def _check_fit_args(C, Ms, k, stride, dim, steps, restarts):
    for name, v in (("C", C), ("k", k), ("stride", stride), ("dim", dim), ("steps", steps), ("restarts", restarts)):
        _positive_int(name, v)
    if k % 2 == 0:
        raise ValueError(f"k={k} is not valid; expected an odd kernel size")
    if not Ms:
        raise ValueError("Ms is empty; expected at least one number of output channels")
    for M in Ms:
        _positive_int("M", M)


def fit_orthogonal_kernels(key: jax.Array, C: int, Ms, k: int, stride: int = 1, dim: int = 2, *,
                           restarts: int = 1, steps: int = 2000, lr: float = 0.02, polish_steps: int = 10,
                           dtype=None) -> OrthFit:
    """Minimise L_orth over kernels (M, C, k, …) for every M in ``Ms`` and ``restarts`` random
    starts, in one compiled program: Adam (cosine-decayed rate ``lr``, ``steps`` steps) from
    K ~ N(0, 1/(C k^d)) (restart r draws one (max(Ms), C, k, …) kernel from ``fold_in(key, r)``
    and every M starts from its first M rows), then ``polish_steps`` Gauss–Newton steps
    (:func:`gauss_newton`) on the residual of :func:`orth_residual`. All M share one program
    (rows beyond M are masked), so a grid costs one compilation per stride. Use float64
    (``jax.enable_x64``) to resolve L_orth below ~1e-7."""
    Ms = tuple(Ms)
    _check_fit_args(C, Ms, k, stride, dim, steps, restarts)
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    shape = (max(Ms), C) + (k,) * dim
    K0 = _initial_kernels(key, restarts, shape, dtype)
    return _fit(K0, jnp.asarray(Ms), shape, stride, steps, lr, polish_steps)


def _initial_kernels(key, restarts: int, shape: tuple, dtype) -> Array:
    """(restarts, *shape) draws of N(0, 1/(C k^d)); restart r uses ``fold_in(key, r)``."""
    scale = 1.0 / np.sqrt(shape[1] * shape[2] ** (len(shape) - 2))
    return jnp.stack([normal_draw(jax.random.fold_in(key, r), shape, dtype) for r in range(restarts)]) * scale


def fit_orthogonal_kernel(key: jax.Array, C: int, M: int, k: int, stride: int = 1, dim: int = 2, *,
                          steps: int = 2000, lr: float = 0.02, polish_steps: int = 10, dtype=None) -> OrthFit:
    """One run of :func:`fit_orthogonal_kernels` (restart 0): kernel (M, C, k, …), L_orth values."""
    fit = fit_orthogonal_kernels(key, C, (M,), k, stride, dim, steps=steps, lr=lr, polish_steps=polish_steps,
                                 dtype=dtype)
    return jax.tree_util.tree_map(lambda a: a[0, 0], fit)


@partial(jax.jit, static_argnums=(2, 3, 4, 6))
def _fit(K0, Ms, shape, stride, steps, lr, polish_steps) -> OrthFit:
    Mmax, C, d = shape[0], shape[1], len(shape) - 2
    col_case = shape[0] > C * stride**d  # some M in the grid are column cases: build that residual too

    def one(K0, M):
        mask = (jnp.arange(Mmax) < M).astype(K0.dtype).reshape((Mmax,) + (1,) * (d + 1))
        loss = lambda K: _masked_orth(K * mask, M, stride)  # noqa: E731
        K, trace = _adam(loss, K0 * mask, steps, lr)
        first = loss(K)
        if polish_steps:
            def residual(th):
                Km = th.reshape(shape) * mask
                row = M <= C * stride**d
                r = jnp.where(row, _row_residual(Km, M, stride), 0.0)
                return jnp.concatenate([r, jnp.where(row, 0.0, _column_residual(Km, stride))]) if col_case else r

            K = gauss_newton(residual, K.ravel(), polish_steps).reshape(shape) * mask
        return OrthFit(K, loss(K), first, trace)

    return jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(K0, Ms)


def _masked_orth(K, M, stride):
    """L_orth of the first M output channels of K (the other rows are zero)."""
    C, d = K.shape[1], K.ndim - 2
    return jnp.sum(_row_residual(K, M, stride) ** 2) - jnp.maximum(0, M - C * stride**d)


def _boundary_residual(K, n: int, stride: int, padding: str) -> Array:
    A = conv_matrix(K, n, stride, padding)
    E = jnp.matmul(A, A.T, precision=_HIGHEST) if A.shape[0] <= A.shape[1] else jnp.matmul(A.T, A, precision=_HIGHEST)
    positions = A.shape[0] // K.shape[0]
    return (E - jnp.eye(E.shape[0], dtype=E.dtype)).ravel() / jnp.sqrt(jnp.asarray(positions, E.dtype))


def boundary_error(K: Float[Array, "M C *k"], n: int, stride: int, padding: str) -> Float[Array, ""]:
    """‖𝒦𝒦ᵀ − I‖²_F (𝒦 has no more rows than columns) or ‖𝒦ᵀ𝒦 − I‖²_F (otherwise) per output
    position, 𝒦 = :func:`conv_matrix` with the given boundary. For circular padding and n ≥ 2k − 1
    this is L_orth(K)."""
    return jnp.sum(_boundary_residual(K, n, stride, padding) ** 2)


def probe_boundary(key: jax.Array, C: int, M: int, k: int, stride: int, n: int, padding: str, dim: int = 2, *,
                   restarts: int = 1, steps: int = 1500, lr: float = 0.02, polish_steps: int = 10,
                   dtype=None) -> Float[Array, "restarts"]:
    """:func:`boundary_error` reached by Adam + Gauss–Newton from ``restarts`` random kernels
    (upper bounds on the true minimum: ≈ 0 means an orthogonal convolution with that boundary exists
    at this n). The boundaries 'valid' and zero-padded 'same' are far more restrictive than
    'circular' (arXiv 2108.05623); their exact rule is not encoded here, only measured."""
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r} is not valid; expected one of {PADDINGS}")
    for name, v in (("C", C), ("M", M), ("k", k), ("stride", stride), ("dim", dim), ("steps", steps),
                    ("restarts", restarts)):
        _positive_int(name, v)
    shape = (M, C) + (k,) * dim
    conv_matrix(jnp.zeros(shape), n, stride, padding)  # validates k, n and the stride
    K0 = _initial_kernels(key, restarts, shape, jnp.dtype(dtype or jnp.result_type(float)))
    return _probe(K0, n, stride, padding, steps, lr, polish_steps)


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 6))
def _probe(K0, n, stride, padding, steps, lr, polish_steps):
    shape = K0.shape[1:]

    def one(K):
        K, _ = _adam(lambda K: boundary_error(K, n, stride, padding), K, steps, lr)
        if polish_steps:
            res = lambda th: _boundary_residual(th.reshape(shape), n, stride, padding)  # noqa: E731
            K = gauss_newton(res, K.ravel(), polish_steps).reshape(shape)
        return boundary_error(K, n, stride, padding)

    return jax.vmap(one)(K0)
