r"""In-context learning as implicit rank-1 weight updates of a transformer block's MLP.

Dherin et al. (arXiv 2507.16003): for a *contextual block* T(C, x) = MLP(A(C, x)) whose MLP
starts with a weight W, the context C acts on the query x as the rank-1 update

    ΔW = W ΔA A(x)ᵀ / ‖A(x)‖²,   ΔA = A(C, x) − A(x):   T_W(C, x) = T_{W+ΔW}(x).

The generalisation (arXiv 2512.11255) covers every position i, every block and residual blocks
with layer norm. For a block of :class:`pclab.nn.transformer.TransformerPCN` with input tokens
h (T, d),

    u = h + A(h),   f(h) = u + a_2 W_2 g(a_1 W_1 LN₂(u) + b_1) + b_2,

and any query token x_i (default: x_i = h_i, the token at position i itself) run *alone*
(a length-1 sequence, u_x = x_i + A(x_i)), write n_i = LN₂(u_i) and n_x = LN₂(u_x)
(LN₂ = identity without ``pre_norm``). Then

    ΔW_i = W_1 (n_i − n_x) n_xᵀ / ‖n_x‖²    (added to W_1, shape (d_ff, d))
    Δb_i = u_i − u_x = ΔA_i + Δz_i          (added to b_2, shape (d,))

with ΔA_i = A(h)_i − A(x_i), Δz_i = h_i − x_i, give f_{W_1+ΔW_i, b_2+Δb_i}(x_i) = f(h)_i exactly:
(W_1 + ΔW_i) n_x = W_1 n_i makes the hidden layer see the context, so the MLP output is the
one with context, and Δb_i adds the part of the skip path u the MLP does not see. The
multiplier a_1 multiplies W_1 + ΔW_i as a whole and cancels: ΔW_i is the update of the stored
W_1 for every parameterisation. Without layer norm n_i − n_x = ΔA_i + Δz_i and n_x = A(x) + x
(the formula of 2512.11255); with it the normalised streams take their place in ΔW, Δb is
unchanged. Without the skip path (``skip=False``: T = MLP(A(C, x)), Dherin's block) Δb = 0 and,
at the last position, ΔW_T is Dherin's formula (:func:`dherin_update`).

Shapes: h (T, d) or (B, T, d); updates are kept as rank-1 factors (:class:`ImplicitUpdates`),
``dw`` materialises them. Works in float32 and float64; checked in float64 to 1e-10.
Alignment and rank: :mod:`pclab.theory.icl_metrics`; the regression task: :mod:`.icl_task`.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..nn.ops import layer_norm, linear
from ..nn.transformer import TransformerBlock, TransformerPCN

AttentionFn = Callable[[TransformerBlock, Float[Array, "B T d"]], Float[Array, "B T d"]]


class ImplicitUpdates(eqx.Module):
    """Rank-1 implicit updates ΔW = left ⊗ right (to W_1) and bias Δb (to b_2), per token.

    Attributes (``...`` = the leading axes, e.g. (B, T) or (n_blocks, B, T)):
        left: (..., d_ff) = W_1 (n_i − n_x).  right: (..., d) = n_x / ‖n_x‖².  bias: (..., d) = Δb.
    """

    left: Float[Array, "... f"]
    right: Float[Array, "... d"]
    bias: Float[Array, "... d"]

    @property
    def dw(self) -> Float[Array, "... f d"]:
        """ΔW = left rightᵀ, materialised: (..., d_ff, d)."""
        return self.left[..., :, None] * self.right[..., None, :]

    @property
    def norm(self) -> Float[Array, "..."]:
        """‖ΔW‖_F = ‖left‖ ‖right‖ (exact for a rank-1 matrix): (...)."""
        return jnp.linalg.norm(self.left, axis=-1) * jnp.linalg.norm(self.right, axis=-1)


# ----- input checks ------------------------------------------------------------------------------
def _check_model(model) -> None:
    if not isinstance(model, TransformerPCN):
        raise ValueError(f"model must be a TransformerPCN (pclab.transformer); got {type(model).__name__}")


def _check_block(model: TransformerPCN, blk) -> None:
    if not isinstance(blk, TransformerBlock):
        raise ValueError(f"blk must be one block's TransformerBlock (model.block_params(k)); got {type(blk).__name__}")
    if blk.w1 is None or blk.w2 is None or blk.b2 is None:
        raise ValueError("blk has no MLP (blk.w1, blk.w2 or blk.b2 is None): the implicit update acts on W_1 and b_2")
    if blk.w1.ndim != 2:
        raise ValueError(f"blk.w1 has shape {tuple(blk.w1.shape)}; pass one block (model.block_params(k)), "
                         "not the stack")
    if blk.w1.shape[0] == 0:
        raise ValueError(f"blk has no MLP: blk.w1 has shape {tuple(blk.w1.shape)} (d_ff = 0)")
    if blk.w1.shape[1] != model.d_model:
        raise ValueError(f"blk.w1 has shape {tuple(blk.w1.shape)} but model has width d_model = {model.d_model}")


def _check_tokens(blk: TransformerBlock, h, name: str = "h", min_tokens: int = 1) -> jax.Array:
    h = jnp.asarray(h)
    if h.ndim not in (2, 3):
        raise ValueError(f"{name} must be (T, d) or (B, T, d) block-input tokens; got shape {tuple(h.shape)}")
    if h.shape[-1] != blk.w1.shape[1]:
        raise ValueError(f"{name} has token width {h.shape[-1]} but the block has width d = {blk.w1.shape[1]} "
                         f"(blk.w1 has shape {tuple(blk.w1.shape)})")
    if h.shape[-2] < min_tokens:
        raise ValueError(f"{name} has {h.shape[-2]} tokens (an empty context); need at least {min_tokens}")
    if not jnp.issubdtype(h.dtype, jnp.floating):
        raise ValueError(f"{name} must hold real-valued block-input tokens; got dtype {h.dtype}")
    return h


# ----- the pieces of a block ---------------------------------------------------------------------
def _mlp_input(model: TransformerPCN, blk: TransformerBlock, s: jax.Array) -> jax.Array:
    """n = LN₂(s) with ``pre_norm``, else s: what W_1 multiplies."""
    return layer_norm(s, *blk.ln2) if model.pre_norm else s


def _alone(attention: AttentionFn, blk: TransformerBlock, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """A(x) for every token of x run alone, as a length-1 sequence: (..., d)."""
    flat = x.reshape(-1, 1, x.shape[-1])
    return attention(blk, flat).reshape(x.shape)


def _with_context(model, blk, h, skip, attention):
    attention = model.attention if attention is None else attention
    a = attention(blk, h)
    s = h + a if skip else a
    return (s if skip else 0.0) + model.mlp(blk, s)


def _context_free(model, blk, x, upd, skip, attention):
    def one(xi, p, q, db):
        b = eqx.tree_at(lambda t: (t.w1, t.b2), blk, (blk.w1 + jnp.outer(p, q), blk.b2 + db))
        return _with_context(model, b, xi[None, None], skip, attention)[0, 0]

    d, f = x.shape[-1], blk.w1.shape[0]
    out = jax.vmap(one)(x.reshape(-1, d), upd.left.reshape(-1, f), upd.right.reshape(-1, d), upd.bias.reshape(-1, d))
    return out.reshape(x.shape)


def _updates(model, blk, h, x, skip, attention) -> ImplicitUpdates:
    """h, x (B, T, d): the update formulas of the module docstring."""
    attention = model.attention if attention is None else attention
    a_ctx, a_x = attention(blk, h), _alone(attention, blk, x)
    s_ctx, s_x = (h + a_ctx, x + a_x) if skip else (a_ctx, a_x)
    n_ctx, n_x = _mlp_input(model, blk, s_ctx), _mlp_input(model, blk, s_x)
    left = linear(n_ctx - n_x, blk.w1)                                   # W_1 (n_i − n_x)
    right = n_x / jnp.sum(n_x * n_x, axis=-1, keepdims=True)             # n_x / ‖n_x‖²
    bias = s_ctx - s_x if skip else jnp.zeros_like(s_x)                  # ΔA_i + Δz_i
    return ImplicitUpdates(left, right, bias)


_with_context_jit, _context_free_jit, _updates_jit = (eqx.filter_jit(f)
                                                      for f in (_with_context, _context_free, _updates))


@eqx.filter_jit
def _error(model, blk, h, x, skip, attention):
    ref = _with_context(model, blk, h, skip, attention)
    got = _context_free(model, blk, x, _updates(model, blk, h, x, skip, attention), skip, attention)
    scale = jnp.maximum(jnp.linalg.norm(ref, axis=-1), jnp.finfo(ref.dtype).tiny)
    return jnp.linalg.norm(got - ref, axis=-1) / scale


def _batched(h: jax.Array, query) -> tuple[jax.Array, jax.Array]:
    """(B, T, d) tokens and queries (query None → h itself; else broadcast to h)."""
    hb = h if h.ndim == 3 else h[None]
    if query is not None and jnp.shape(query)[-1:] != (hb.shape[-1],):
        raise ValueError(f"query has shape {tuple(jnp.shape(query))}; expected tokens (..., {hb.shape[-1]})")
    if query is None:
        return hb, hb
    return hb, jnp.broadcast_to(jnp.asarray(query, hb.dtype), hb.shape)


def _unbatch(tree, h: jax.Array):
    return tree if h.ndim == 3 else jax.tree_util.tree_map(lambda a: a[0], tree)


def block_with_context(model: TransformerPCN, blk: TransformerBlock, h: Float[Array, "*B T d"], *,
                       skip: bool = True, attention: AttentionFn | None = None) -> Float[Array, "*B T d"]:
    """The block on the whole sequence: f(h) = u + MLP(u), u = h + A(h) (``skip``), or
    Dherin's contextual block T = MLP(A(h)) (``skip=False``). h (T, d) or (B, T, d)."""
    _check_model(model)
    _check_block(model, blk)
    h = _check_tokens(blk, h)
    return _unbatch(_with_context_jit(model, blk, _batched(h, None)[0], skip, attention), h)


def context_free_block(model: TransformerPCN, blk: TransformerBlock, x: Float[Array, "... d"],
                       updates: ImplicitUpdates | None = None, *, skip: bool = True,
                       attention: AttentionFn | None = None) -> Float[Array, "... d"]:
    """The block on each token of x *alone* (a length-1 sequence), with W_1 + ΔW and b_2 + Δb
    of that token's entry of ``updates`` (leading axes equal to x's), or unmodified if None.
    By the identity, ``context_free_block(model, blk, h, implicit_updates(model, blk, h))``
    equals ``block_with_context(model, blk, h)``. x (..., d) → (..., d)."""
    _check_model(model)
    _check_block(model, blk)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != model.d_model:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected tokens (..., d) with d = {model.d_model}")
    if updates is None:
        zero_f, zero_d = jnp.zeros(x.shape[:-1] + blk.w1.shape[:1], x.dtype), jnp.zeros_like(x)
        updates = ImplicitUpdates(zero_f, zero_d, zero_d)
    if updates.right.shape != x.shape:
        raise ValueError(f"updates are for tokens of shape {tuple(updates.right.shape)} but x has shape "
                         f"{tuple(x.shape)}")
    return _context_free_jit(model, blk, x, updates, skip, attention)


# ----- the implicit updates ----------------------------------------------------------------------
def implicit_updates(model: TransformerPCN, blk: TransformerBlock, h: Float[Array, "*B T d"], *,
                     query: Float[Array, "... d"] | None = None, skip: bool = True,
                     attention: AttentionFn | None = None) -> ImplicitUpdates:
    r"""The implicit update (ΔW_i, Δb_i) of every position i of one block (module docstring).

    Args:
        model: the :class:`TransformerPCN` (its attention, MLP, multipliers, ``pre_norm``).
        blk: one block's parameters, ``model.block_params(k)``.
        h: the block's input tokens with their context, (T, d) or (B, T, d); for block k of a
            token model ``model.activities(x)[k]``.
        query: the token run alone at each position, broadcastable to h (e.g. (d,), (B, 1, d),
            or the first block's input for a deeper block); default h itself (Δz_i = 0).
        skip: the residual block f (default) or Dherin's T = MLP(A(C, x)) (then Δb = 0).
        attention: A(blk, h) → (B, T, d), default ``model.attention`` (causal); any contextual
            layer works, e.g. attention without the causal mask.

    Returns:
        :class:`ImplicitUpdates` with leading axes h.shape[:-1]: ΔW_i = W_1 (n_i − n_x) n_xᵀ/‖n_x‖²,
        Δb_i = u_i − u_x (``skip``) or 0.
    """
    _check_model(model)
    _check_block(model, blk)
    h = _check_tokens(blk, h)
    hb, x = _batched(h, query)
    return _unbatch(_updates_jit(model, blk, hb, x, skip, attention), h)


def implicit_update_error(model: TransformerPCN, blk: TransformerBlock, h: Float[Array, "*B T d"], *,
                          query: Float[Array, "... d"] | None = None, skip: bool = True,
                          attention: AttentionFn | None = None) -> Float[Array, "*B T"]:
    """Relative error ‖f(h)_i − f_{W_1+ΔW_i, b_2+Δb_i}(x_i)‖ / ‖f(h)_i‖ at every position: (*B, T)."""
    _check_model(model)
    _check_block(model, blk)
    h = _check_tokens(blk, h)
    hb, x = _batched(h, query)
    return _unbatch(_error(model, blk, hb, x, skip, attention), h)


@eqx.filter_jit
def _stack(model, h0, attention):
    def body(h, blk):
        return _with_context(model, blk, h, True, attention), h

    _, inputs = jax.lax.scan(body, h0, model.blocks)
    return jax.vmap(lambda blk, h: _updates(model, blk, h, h, True, attention))(model.blocks, inputs), inputs


def stack_implicit_updates(model: TransformerPCN, h0: Float[Array, "*B T d"], *,
                           attention: AttentionFn | None = None) -> tuple[ImplicitUpdates, Float[Array, "n *B T d"]]:
    r"""The implicit updates of every block from its own input: block k gets
    h_k = f_{k−1}(⋯ f_0(h_0)) and x_i = h_{k,i} (arXiv 2512.11255, any block).

    h0: the first block's input (T, d) or (B, T, d), ``model.embedding(x)`` for token ids.
    Returns (updates with a leading (n_blocks,) axis, the block inputs (n_blocks, *B, T, d)).
    Running each block alone on its query token with its update reproduces the stack's output
    token by token (the outputs chain: block k's output at i is block k+1's query at i).
    """
    _check_model(model)
    _check_block(model, model.block_params(0))
    h0 = _check_tokens(model.block_params(0), h0, "h0")
    upd, inputs = _stack(model, _batched(h0, None)[0], attention)
    if h0.ndim == 2:
        upd, inputs = jax.tree_util.tree_map(lambda a: a[:, 0], (upd, inputs))
    return upd, inputs


@eqx.filter_jit
def _dherin(model, blk, seq, attention):
    attention = model.attention if attention is None else attention
    a_cx = _mlp_input(model, blk, attention(blk, seq)[:, -1])           # a(C, x)
    a_x = _mlp_input(model, blk, _alone(attention, blk, seq[:, -1]))    # a(x)
    w_da = linear(a_cx - a_x, blk.w1)                                   # W ΔA
    return ImplicitUpdates(w_da, a_x / jnp.sum(a_x * a_x, axis=-1, keepdims=True), jnp.zeros_like(a_x))


def dherin_update(model: TransformerPCN, blk: TransformerBlock, context: Float[Array, "*B n d"],
                  query: Float[Array, "*B d"], *, attention: AttentionFn | None = None) -> ImplicitUpdates:
    r"""Dherin et al.'s formula (arXiv 2507.16003): no skip path, last position.

    For T(C, x) = MLP(A(C, x)) with W = W_1 acting on a = LN₂(A) (a = A without ``pre_norm``):
    ΔW = W (a(C, x) − a(x)) a(x)ᵀ / ‖a(x)‖², so that T_{W+ΔW}(x) = T_W(C, x); Δb = 0.
    context C (n, d) or (B, n, d) with n ≥ 1; query x (d,) or (B, d). Returns updates with
    leading axes x.shape[:-1]; apply with ``context_free_block(..., skip=False)``.
    """
    _check_model(model)
    _check_block(model, blk)
    context = _check_tokens(blk, context, "context")
    query = jnp.asarray(query, context.dtype)
    if query.shape != context.shape[:-2] + context.shape[-1:]:
        raise ValueError(f"query has shape {tuple(query.shape)}; expected {context.shape[:-2] + context.shape[-1:]} "
                         f"for context of shape {tuple(context.shape)}")
    seq = jnp.concatenate([context, query[..., None, :]], axis=-2)
    return _unbatch(_dherin(model, blk, seq if seq.ndim == 3 else seq[None], attention), context)
