r"""Metrics of the implicit updates (arXiv 2507.16003, 2512.11255) of :mod:`pclab.theory.icl`.

All work on the rank-1 factors of :class:`~pclab.theory.icl.ImplicitUpdates`, ΔW = p qᵀ, without
forming a (d_ff, d) matrix where they can: ⟨p_a q_aᵀ, p_b q_bᵀ⟩_F = (p_a·p_b)(q_a·q_b).
Alignment is the Frobenius cosine across positions or across blocks; the rank and spectrum are
those of Σ_i ΔW_i = P Qᵀ, which has rank ≤ min(#terms, d). Two structural bounds follow from
the factors: with layer norm the column factors W_1(n_i − n_x) = W_1(γ ⊙ (n̂_i − n̂_x)) lie in
W_1(γ ⊙ 1^⊥), so rank ≤ d − 1; without it, in a first block fed a linear read-in of width e,
the row factors u_x = (I + a_o a_q W_o W_v) x lie in an e-dimensional space, so rank ≤ e.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .icl import ImplicitUpdates


@jax.jit
def update_inner(a: ImplicitUpdates, b: ImplicitUpdates) -> Float[Array, "..."]:
    """⟨ΔW_a, ΔW_b⟩_F = (p_a·p_b)(q_a·q_b) elementwise over the (broadcast) leading axes;
    ‖ΔW_a − ΔW_b‖²_F = ⟨a, a⟩ + ⟨b, b⟩ − 2⟨a, b⟩ without forming a matrix."""
    return jnp.sum(a.left * b.left, axis=-1) * jnp.sum(a.right * b.right, axis=-1)


@functools.partial(jax.jit, static_argnames="axis")
def update_cosines(upd: ImplicitUpdates, axis: int = -1) -> Float[Array, "... K K"]:
    r"""Pairwise Frobenius cosines cos(ΔW_a, ΔW_b) = (p_a·p_b)(q_a·q_b)/(‖p_a‖‖q_a‖‖p_b‖‖q_b‖)
    along ``axis`` of the leading axes (−1: positions; 0: blocks of :func:`stack_implicit_updates`).
    Returns the other leading axes then (K, K); NaN where an update is zero."""
    nlead = upd.left.ndim - 1
    ax = axis % nlead
    p, q = (jnp.moveaxis(a, ax, -2) for a in (upd.left, upd.right))
    gp, gq = jnp.einsum("...af,...bf->...ab", p, p), jnp.einsum("...ad,...bd->...ab", q, q)
    nrm = jnp.sqrt(jnp.diagonal(gp, axis1=-2, axis2=-1) * jnp.diagonal(gq, axis1=-2, axis2=-1))
    denom = nrm[..., :, None] * nrm[..., None, :]
    return jnp.where(denom > 0, gp * gq / jnp.where(denom > 0, denom, 1.0), jnp.nan)


@functools.partial(jax.jit, static_argnames="axis")
def summed_update_spectrum(upd: ImplicitUpdates, axis: int = -1) -> Float[Array, "... r"]:
    """Singular values (descending) of Σ_i ΔW_i summed along ``axis`` of the leading axes:
    (other leading axes, min(d_ff, d)). Σ_i ΔW_i = P Qᵀ has rank ≤ min(#terms, d)."""
    nlead = upd.left.ndim - 1
    ax = axis % nlead
    p, q = (jnp.moveaxis(a, ax, -2) for a in (upd.left, upd.right))
    total = jnp.einsum("...kf,...kd->...fd", p, q)
    return jnp.linalg.svd(total, compute_uv=False)


@jax.jit
def numerical_rank(s: Float[Array, "... r"], rtol: float = 1e-8) -> jax.Array:
    """#{σ_j > rtol · σ_max}: (...)."""
    s = jnp.asarray(s)
    return jnp.sum(s > rtol * s[..., :1], axis=-1)


@jax.jit
def effective_rank(s: Float[Array, "... r"]) -> jax.Array:
    """exp(−Σ_j p_j log p_j), p = σ/Σσ (Roy and Vetterli 2007): 1 for rank 1, r for a flat spectrum."""
    s = jnp.asarray(s)
    p = s / jnp.maximum(jnp.sum(s, axis=-1, keepdims=True), jnp.finfo(s.dtype).tiny)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1))
