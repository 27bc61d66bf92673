r"""Orthogonal convolutions: the explicit matrix, the existence rule, the regulariser L_orth and
its exact error identities (Achour, Malgouyres & Mamalet, arXiv 2108.05623; the regulariser is
Wang et al.'s, arXiv 1911.12207).

Conventions. A kernel ``K`` has shape (M, C, k, …, k): M output channels, C input channels and
d = ``K.ndim − 2`` spatial axes of odd size k (d = 2 for images). With stride S dividing the
image size n and circular padding it maps x (C, n, …, n) to y (M, n/S, …, n/S),

    y[m, i] = Σ_c Σ_a K[m, c, a] · x[c, (S·i + a − r) mod n],      r = (k − 1)/2,

a centred cross-correlation: ``jax.lax.conv_general_dilated`` with window stride S on x wrapped
by r pixels on each side (:func:`circular_conv`). Flattening y and x in C order gives the matrix
𝒦 of shape (M (n/S)^d, C n^d) (:func:`conv_matrix`).

Row case M ≤ C·S^d: orthogonal means 𝒦𝒦ᵀ = I. Column case M > C·S^d: 𝒦ᵀ𝒦 = I.
With P = ⌊(k−1)/S⌋ and G = conv(K, K; zero padding P·S, stride S) (shape (M, M, 2P+1, …)),

    L_orth(K) = ‖G − I_centre‖²_F − max(0, M − C·S^d)

and, for every n ≥ 2k − 1 with S | n (derived here and tested, not quoted from the papers),

    ‖𝒦𝒦ᵀ − I‖²_F = (n/S)^d · L_orth(K)          (row case)
    ‖𝒦ᵀ𝒦 − I‖²_F = (n/S)^d · L_orth(K)          (column case).

Proof sketch: entry ((m, i), (m', i')) of 𝒦𝒦ᵀ is G[m, m', i' − i + P] when |i' − i| ≤ P and 0
otherwise (n ≥ 2k − 1 rules out a second wrapped overlap), so every block row of 𝒦𝒦ᵀ − I holds
the entries of G − I_centre once. For the column case ‖𝒦ᵀ𝒦 − I‖² = ‖𝒦𝒦ᵀ − I‖² − tr I_out + tr I_in
since tr (𝒦ᵀ𝒦)² = tr (𝒦𝒦ᵀ)² and tr 𝒦ᵀ𝒦 = tr 𝒦𝒦ᵀ; tr I_out − tr I_in = (n/S)^d (M − C S^d)
is exactly Wang et al.'s correction. The spectral error ‖·‖₂ is then at most √(α L_orth) with
α = M (2P+1)^d (row) or C (2k−1)^d (column), for any n (:func:`spectral_error_bound`).
"""

from __future__ import annotations

import string
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

_HIGHEST = jax.lax.Precision.HIGHEST
PADDINGS = ("circular", "same", "valid")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= 1")
    return value


def check_kernel(K, name: str = "K") -> jax.Array:
    """``K`` as a floating array of shape (M, C, k, …, k) with odd k; else ``ValueError``."""
    K = jnp.asarray(K)
    if K.ndim < 3:
        raise ValueError(f"{name} must have shape (M, C, k, ..., k) with at least one spatial axis; "
                         f"got shape {tuple(K.shape)}")
    if 0 in K.shape:
        raise ValueError(f"{name} has an empty shape {tuple(K.shape)}; expected M, C, k >= 1")
    sp = K.shape[2:]
    if len(set(sp)) != 1 or sp[0] % 2 == 0:
        raise ValueError(f"{name} has spatial shape {tuple(sp)}; expected equal odd sizes k (e.g. 3 x 3)")
    return K if jnp.issubdtype(K.dtype, jnp.floating) else K.astype(float)


def check_size(n, stride: int, name: str = "n") -> int:
    _positive_int(name, n)
    if n % stride:
        raise ValueError(f"{name}={n} is not valid for stride={stride}: the stride must divide the image size")
    return n


def orthogonality_case(C: int, M: int, stride: int, dim: int = 2) -> str:
    """``"row"`` (𝒦𝒦ᵀ = I is the target) if M ≤ C·S^d, else ``"column"`` (𝒦ᵀ𝒦 = I)."""
    for name, v in (("C", C), ("M", M), ("stride", stride), ("dim", dim)):
        _positive_int(name, v)
    return "row" if M <= C * stride**dim else "column"


def orthogonal_conv_exists(C: int, M: int, k: int, stride: int, dim: int = 2) -> bool:
    """Whether an orthogonal strided circular convolution exists (arXiv 2108.05623).

    Row case (C·S^d ≥ M): iff M ≤ C·k^d. Column case (C·S^d < M): iff S ≤ k.
    M = C·S^d is feasible but hard to optimise. The rule is for circular padding only: for
    'valid' and zero-padded 'same' boundaries (far more restrictive) the rule is not encoded;
    probe them numerically with :func:`pclab.theory.orthogonal_fit.probe_boundary`.
    """
    _positive_int("k", k)
    if k % 2 == 0:
        raise ValueError(f"k={k} is not valid; expected an odd kernel size")
    if orthogonality_case(C, M, stride, dim) == "row":
        return M <= C * k**dim
    return stride <= k


def _axis_map(k: int, n: int, stride: int, padding: str, dtype) -> jax.Array:
    """T[a, i, p] = 1 where output i reads input pixel p through tap a (one spatial axis)."""
    r = (k - 1) // 2
    a = jnp.arange(k)[:, None, None]
    p = jnp.arange(n)[None, None, :]
    if padding == "valid":
        i = jnp.arange((n - k) // stride + 1)[None, :, None]
        return (p == stride * i + a).astype(dtype)
    i = jnp.arange(n // stride)[None, :, None]
    src = stride * i + a - r
    if padding == "circular":
        return (p == src % n).astype(dtype)
    return (p == src).astype(dtype)  # zero 'same' padding: taps outside the image read nothing


@partial(jax.jit, static_argnames=("n", "stride", "padding"))
def conv_matrix(K: Float[Array, "M C *k"], n: int, stride: int = 1,
                padding: str = "circular") -> Float[Array, "rows cols"]:
    """The explicit matrix 𝒦 (M·n_out^d, C·n^d) of the strided convolution of ``K`` on n^d images.

    ``padding="circular"`` (default, n_out = n/S) is the module convention; ``"same"`` pads with
    zeros (n_out = n/S) and ``"valid"`` does not pad (n_out = ⌊(n − k)/S⌋ + 1, taps start at the
    pixel S·i). Rows and columns are (channel, position…) flattened in C order.
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r} is not valid; expected one of {PADDINGS}")
    if padding == "valid":
        _positive_int("n", n)
        if n < K.shape[2]:
            raise ValueError(f"n={n} is too small for 'valid' padding with k={K.shape[2]}; expected n >= k")
    else:
        check_size(n, stride)
    M, C, k, d = K.shape[0], K.shape[1], K.shape[2], K.ndim - 2
    T = _axis_map(k, n, stride, padding, K.dtype)
    a, i, p = string.ascii_letters[:d], string.ascii_letters[d:2 * d], string.ascii_letters[2 * d:3 * d]
    spec = "yz" + a + "," + ",".join(a[j] + i[j] + p[j] for j in range(d)) + "->y" + i + "z" + p
    out = jnp.einsum(spec, K, *([T] * d), precision=_HIGHEST)
    return out.reshape(M * T.shape[1] ** d, C * n**d)


@partial(jax.jit, static_argnames="stride")
def circular_conv(x: Float[Array, "*B C *n"], K: Float[Array, "M C *k"], stride: int = 1) -> Float[Array, "*B M *m"]:
    """Strided circular convolution of x (…, C, n, …, n) with K: wrap by r, then a 'VALID' conv."""
    K = check_kernel(K)
    d, r = K.ndim - 2, (K.shape[2] - 1) // 2
    x = jnp.asarray(x)
    if x.ndim < d + 1 or x.shape[-d - 1] != K.shape[1]:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (..., C={K.shape[1]}, n, ...) with {d} spatial axes")
    batch = x.shape[:-d - 1]
    xb = x.reshape((-1,) + x.shape[-d - 1:])
    xp = jnp.pad(xb, [(0, 0), (0, 0)] + [(r, r)] * d, mode="wrap")
    y = jax.lax.conv_general_dilated(xp, K.astype(xp.dtype), (stride,) * d, "VALID", precision=_HIGHEST)
    return y.reshape(batch + y.shape[1:])


@partial(jax.jit, static_argnames="stride")
def kernel_gram(K: Float[Array, "M C *k"], stride: int = 1) -> Float[Array, "M M *u"]:
    """G = conv(K, K; zero padding P·S, stride S), P = ⌊(k−1)/S⌋, shape (M, M, 2P+1, …):

        G[m, m', u] = Σ_c Σ_a K[m, c, a + S(u − P)] · K[m', c, a]     (taps outside K are 0),

    the inner products of output channels m, m' at spatial offset S(u − P): entry ((m, i), (m', i + u − P))
    of 𝒦𝒦ᵀ. Computed as one einsum with 0/1 shift matrices (batches well under ``vmap``); equal to
    ``jax.lax.conv_general_dilated(K, K, (S,)*d, [(P*S, P*S)]*d)`` (tested).
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    k, d = K.shape[2], K.ndim - 2
    P = (k - 1) // stride
    u, a, b = jnp.arange(2 * P + 1)[:, None, None], jnp.arange(k)[None, :, None], jnp.arange(k)[None, None, :]
    shift = (b == a + stride * (u - P)).astype(K.dtype)  # (2P+1, k, k)
    A, B, U = string.ascii_letters[:d], string.ascii_letters[d:2 * d], string.ascii_letters[2 * d:3 * d]
    spec = "yz" + B + ",xz" + A + "," + ",".join(U[j] + A[j] + B[j] for j in range(d)) + "->yx" + U
    return jnp.einsum(spec, K, K, *([shift] * d), precision=_HIGHEST)


@partial(jax.jit, static_argnames="stride")
def orth_regularizer(K: Float[Array, "M C *k"], stride: int = 1) -> Float[Array, ""]:
    r"""L_orth(K) = ‖conv(K, K; zero padding P·S, stride S) − I_centre‖²_F − max(0, M − C·S^d).

    P = ⌊(k−1)/S⌋; conv(K, K) (:func:`kernel_gram`) treats K as a batch of M images with C channels
    and as a kernel with M outputs, giving G of shape (M, M, 2P+1, …); I_centre is δ_{mm'} at the
    centre shift. Zero exactly when the circular convolution is orthogonal (row or column case);
    equals ‖𝒦𝒦ᵀ − I‖²_F / (n/S)^d (row) or ‖𝒦ᵀ𝒦 − I‖²_F / (n/S)^d (column) for any n ≥ 2k − 1.
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    M, C, k, d = K.shape[0], K.shape[1], K.shape[2], K.ndim - 2
    P = (k - 1) // stride
    G = kernel_gram(K, stride)
    target = jnp.zeros_like(G).at[(jnp.arange(M), jnp.arange(M)) + (P,) * d].set(1.0)
    return jnp.sum((G - target) ** 2) - max(0, M - C * stride**d)


@partial(jax.jit, static_argnames="stride")
def spectral_error_bound(K: Float[Array, "M C *k"], stride: int = 1) -> Float[Array, ""]:
    """√(α · L_orth(K)): a bound on ‖𝒦𝒦ᵀ − I‖₂ (row) or ‖𝒦ᵀ𝒦 − I‖₂ (column) for every image size.

    α = M (2⌊(k−1)/S⌋ + 1)^d in the row case, C (2k − 1)^d in the column case.
    """
    K = check_kernel(K)
    M, C, k, d = K.shape[0], K.shape[1], K.shape[2], K.ndim - 2
    case = orthogonality_case(C, M, stride, d)
    alpha = M * (2 * ((k - 1) // stride) + 1) ** d if case == "row" else C * (2 * k - 1) ** d
    return jnp.sqrt(alpha * jnp.maximum(orth_regularizer(K, stride), 0.0))


class OrthogonalityErrors(NamedTuple):
    """‖E‖_F and ‖E‖₂ of E = 𝒦𝒦ᵀ − I (``case == "row"``) or 𝒦ᵀ𝒦 − I (``"column"``)."""

    frobenius: jax.Array
    spectral: jax.Array
    case: str


@partial(jax.jit, static_argnames=("n", "stride"))
def fourier_blocks(K: Float[Array, "M C *k"], n: int, stride: int = 1) -> Array:
    """The (n/S)^d blocks B_ω (M, C·S^d) of 𝒦 in the Fourier basis, shape ((n/S)^d, M, C·S^d).

    Splitting x into its S^d polyphase components makes the strided conv a stride-1 circular conv
    on the (n/S)^d grid with C·S^d channels; unitary DFTs then block-diagonalise it, so the singular
    values of 𝒦 are those of all B_ω together: B_ω = Σ_a K[:, :, a] ⊗_j e_{ρ(a_j)} e^{2πi ω_j q(a_j)/(n/S)},
    with a − r = S q(a) + ρ(a), 0 ≤ ρ < S.
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    n = check_size(n, stride)
    M, C, k, d = K.shape[0], K.shape[1], K.shape[2], K.ndim - 2
    nn, off = n // stride, jnp.arange(k) - (k - 1) // 2
    rho, q = off % stride, off // stride
    phase = jnp.exp(2j * jnp.pi * jnp.outer(q, jnp.arange(nn)) / nn)  # (k, ω)
    G = phase[:, :, None] * (rho[:, None] == jnp.arange(stride)[None, :])[:, None, :]  # (k, ω, ρ)
    a, w, p = string.ascii_letters[:d], string.ascii_letters[d:2 * d], string.ascii_letters[2 * d:3 * d]
    spec = "yz" + a + "," + ",".join(a[j] + w[j] + p[j] for j in range(d)) + "->" + w + "yz" + p
    B = jnp.einsum(spec, K.astype(G.dtype), *([G] * d), precision=_HIGHEST)
    return B.reshape(nn**d, M, C * stride**d)


def orthogonality_errors(K: Float[Array, "M C *k"], n: int, stride: int = 1,
                         method: str = "auto") -> OrthogonalityErrors:
    """Frobenius and spectral orthogonality errors of the circular convolution on n^d images.

    ``method="matrix"`` builds :func:`conv_matrix` (cost (C n^d)^3); ``"fft"`` uses
    :func:`fourier_blocks` (cost (n/S)^d (C S^d)^3); ``"auto"`` picks the matrix up to 2048 rows
    and columns. Both give the same numbers (tested).
    """
    K = check_kernel(K)
    stride = _positive_int("stride", stride)
    n = check_size(n, stride)
    M, C, d = K.shape[0], K.shape[1], K.ndim - 2
    case = orthogonality_case(C, M, stride, d)
    if method not in ("auto", "matrix", "fft"):
        raise ValueError(f"method={method!r} is not valid; expected 'auto', 'matrix' or 'fft'")
    if method == "auto":
        method = "matrix" if max(M * (n // stride) ** d, C * n**d) <= 2048 else "fft"
    return OrthogonalityErrors(*_errors(K, n, stride, method, case), case)


@partial(jax.jit, static_argnames=("n", "stride", "method", "case"))
def _errors(K, n: int, stride: int, method: str, case: str):
    """‖E‖_F from E itself; ‖E‖₂ = max |σ² − 1| over the singular values of 𝒦 (or of the blocks B_ω:
    the min(rows, cols) of them are exactly the eigenvalues of 𝒦𝒦ᵀ or 𝒦ᵀ𝒦 in the case at hand)."""
    A = conv_matrix(K, n, stride) if method == "matrix" else fourier_blocks(K, n, stride)
    Ah = jnp.conj(jnp.swapaxes(A, -1, -2))
    E = jnp.matmul(A, Ah, precision=_HIGHEST) if case == "row" else jnp.matmul(Ah, A, precision=_HIGHEST)
    E = E - jnp.eye(E.shape[-1], dtype=E.dtype)
    sigma = jnp.linalg.svd(A, compute_uv=False)
    return jnp.sqrt(jnp.sum(jnp.abs(E) ** 2)), jnp.max(jnp.abs(sigma**2 - 1.0))


@partial(jax.jit, static_argnames=("n", "stride"))
def spectral_norm(K: Float[Array, "M C *k"], n: int, stride: int = 1) -> Float[Array, ""]:
    """‖𝒦‖₂, the largest singular value of the circular convolution on n^d images (via FFT)."""
    B = fourier_blocks(K, n, stride)
    return jnp.max(jnp.linalg.svd(B, compute_uv=False))


def pixel_shuffle_kernel(C: int, stride: int, dim: int = 2, dtype=float) -> Float[Array, "M C *k"]:
    """An exactly orthogonal kernel with M = C·S^d outputs: invertible down-sampling (space-to-depth).

    Output channel (c, ρ) reads pixel S·i + ρ of channel c, ρ ∈ {0..S−1}^d. The kernel has the
    smallest odd size k ≥ 2S − 1 whose centred taps reach the offsets 0..S−1 (k = 2S − 1).
    """
    _positive_int("C", C), _positive_int("stride", stride), _positive_int("dim", dim)
    k, r = 2 * stride - 1, stride - 1
    K = np.zeros((C, stride**dim, C) + (k,) * dim)
    for j, offset in enumerate(np.ndindex(*(stride,) * dim)):
        K[(np.arange(C), j, np.arange(C)) + tuple(o + r for o in offset)] = 1.0
    return jnp.asarray(K.reshape((C * stride**dim, C) + (k,) * dim), dtype)


def identity_kernel(C: int, k: int = 3, dim: int = 2, dtype=float) -> Float[Array, "C C *k"]:
    """The identity convolution (centre tap δ_{mc}): orthogonal for stride 1."""
    _positive_int("C", C), _positive_int("k", k), _positive_int("dim", dim)
    if k % 2 == 0:
        raise ValueError(f"k={k} is not valid; expected an odd kernel size")
    K = jnp.zeros((C, C) + (k,) * dim, dtype)
    return K.at[(jnp.arange(C), jnp.arange(C)) + ((k - 1) // 2,) * dim].set(1.0)
