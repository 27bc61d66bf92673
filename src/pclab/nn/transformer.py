r"""Transformer PCN: causal pre-LayerNorm blocks on a residual stream; each block's output is
a PC activity.

Tokens x (B, T) of a vocabulary of V, model width d, ``heads`` heads of d_head = d/heads:

    z_0 = E[x] + P[:T]                                        (embedding, an activity)
    u   = h + a_o · W_o · Attn(c; a_q W_q LN₁(h), a_q W_k LN₁(h), a_q W_v LN₁(h))
    f(h) = u + a_2 · W_2 · g(a_1 W_1 LN₂(u) + b_1) + b_2       (block; z_k = f(z_{k−1}))
    ŷ   = a_out · W_out · LN_f(z_last)                          (logits (B, T, V))

with causal attention of logit multiplier c. ``pre_norm=False`` drops LN₁, LN₂ and LN_f.
The activities are one (1 + n_blocks, B, T, d) array; the block parameters are stacked on a
leading axis (each drawn in one call), so the feedforward pass is a
``lax.scan`` and all block predictions are one vmapped call. Roles for the parameterisation:
W_q, W_k, W_v, W_1 ``hidden`` (fan-in d or d), W_o and W_2 ``residual`` with branch power 1
(μPC: 1/(√fan_in · n_blocks), the transformer scaling of arXiv 2602.07697), the logit
multiplier ``attention`` (SP 1/√d_head, μPC 1/d_head), the readout ``output`` (μPC 1/d).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..options import Activation, parse_option
from ..params import ParamInfo, Parameterisation, Role, get_param
from .base import AbstractPCN
from .ops import causal_attention, layer_norm, linear


class TransformerBlock(eqx.Module):
    """One block's parameters (leading stack axis when held by :class:`TransformerPCN`).

    Shapes: wq, wk, wv, wo (d, d); w1 (d_ff, d), b1 (d_ff,); w2 (d, d_ff), b2 (d,);
    ln1, ln2: (gain, bias) each (d,).
    """

    wq: Float[Array, "d d"]
    wk: Float[Array, "d d"]
    wv: Float[Array, "d d"]
    wo: Float[Array, "d d"]
    w1: Float[Array, "f d"]
    b1: Float[Array, " f"]
    w2: Float[Array, "d f"]
    b2: Float[Array, " d"]
    ln1: tuple[Float[Array, " d"], Float[Array, " d"]]
    ln2: tuple[Float[Array, " d"], Float[Array, " d"]]


class TransformerPCN(AbstractPCN):
    """A causal transformer PCN (module docstring). Build with :func:`pclab.transformer`.

    Attributes:
        embed: (V, d). pos: (context, d). blocks: a :class:`TransformerBlock` stacked on
        (n_blocks, …). ln_f: (gain, bias). w_out: (V, d). heads, pre_norm, act (g).
        mult: dict of multipliers {q, o, 1, 2, logit, out}.
    """

    embed: Float[Array, "V d"]
    pos: Float[Array, "C d"]
    blocks: TransformerBlock
    ln_f: tuple[Float[Array, " d"], Float[Array, " d"]]
    w_out: Float[Array, "V d"]
    heads: int = eqx.field(static=True)
    pre_norm: bool = eqx.field(static=True)
    act: Activation = eqx.field(static=True)
    mult: tuple[tuple[str, float], ...] = eqx.field(static=True)

    @property
    def d_model(self) -> int:
        return self.embed.shape[1]

    @property
    def vocab(self) -> int:
        return self.embed.shape[0]

    @property
    def context(self) -> int:
        return self.pos.shape[0]

    @property
    def n_blocks(self) -> int:
        return self.blocks.wq.shape[0]

    @property
    def depth(self) -> int:
        return self.n_blocks + 2

    def _m(self, name: str) -> float:
        return dict(self.mult)[name]

    def _norm(self, h, ln):
        return layer_norm(h, *ln) if self.pre_norm else h

    # ----- the two sub-blocks (used by pclab.theory.icl) ------------------------------------
    def attention(self, blk: TransformerBlock, h: Float[Array, "B T d"]) -> Float[Array, "B T d"]:
        """A(h) = a_o W_o Attn(LN₁(h)): the attention sub-block's output (added to h)."""
        b, t, d = h.shape
        e = d // self.heads
        hn = self._norm(h, blk.ln1)
        q, k, v = (self._m("q") * linear(hn, w).reshape(b, t, self.heads, e) for w in (blk.wq, blk.wk, blk.wv))
        att = causal_attention(q, k, v, self._m("logit")).reshape(b, t, d)
        return self._m("o") * linear(att, blk.wo)

    def mlp(self, blk: TransformerBlock, u: Float[Array, "... d"]) -> Float[Array, "... d"]:
        """MLP(LN₂(u)) = a_2 W_2 g(a_1 W_1 LN₂(u) + b_1) + b_2 (added to u)."""
        hidden = self.act(self._m("1") * linear(self._norm(u, blk.ln2), blk.w1) + blk.b1)
        return self._m("2") * linear(hidden, blk.w2) + blk.b2

    def block(self, blk: TransformerBlock, h: Float[Array, "B T d"]) -> Float[Array, "B T d"]:
        """f(h): attention then MLP sub-blocks, each with its residual connection."""
        u = h + self.attention(blk, h)
        return u + self.mlp(blk, u)

    def block_params(self, k: int) -> TransformerBlock:
        """The parameters of block k (0-based), unstacked."""
        return jax.tree_util.tree_map(lambda a: a[k], self.blocks)

    def embedding(self, x: Int[Array, "B T"]) -> Float[Array, "B T d"]:
        return self.embed[x] + self.pos[: x.shape[1]]

    # ----- the AbstractPCN interface --------------------------------------------------------
    def activities(self, x, inject=None):
        z0 = self.embedding(x)
        d0, rest = (None, None) if inject is None else (inject[0], inject[1:])
        z0 = z0 if d0 is None else z0 + d0

        def body(h, bd):
            blk, d = bd
            h = self.block(blk, h)
            h = h if d is None else h + d
            return h, h

        _, zs = jax.lax.scan(body, z0, (self.blocks, rest))
        return jnp.concatenate([z0[None], zs], axis=0)

    def predictions(self, z, x):
        rest = jax.vmap(self.block)(self.blocks, z[:-1])
        return jnp.concatenate([self.embedding(x)[None], rest], axis=0)

    def output(self, z) -> Float[Array, "B T V"]:
        return self._m("out") * linear(self._norm(z[-1], self.ln_f), self.w_out)

    def param_info(self):
        d, f, n = self.d_model, self.blocks.w1.shape[1], self.n_blocks
        hid = ParamInfo(Role.HIDDEN, d)
        norm = (ParamInfo(Role.NORM), ParamInfo(Role.NORM, is_bias=True))
        blk = TransformerBlock(hid, hid, hid, ParamInfo(Role.RESIDUAL, d, n, 1.0), hid,
                               ParamInfo(Role.HIDDEN, d, is_bias=True), ParamInfo(Role.RESIDUAL, f, n, 1.0),
                               ParamInfo(Role.RESIDUAL, f, n, 1.0, is_bias=True), norm, norm)
        emb = ParamInfo(Role.EMBEDDING)
        return eqx.tree_at(lambda m: (m.embed, m.pos, m.blocks, m.ln_f, m.w_out), eqx.filter(self, eqx.is_array),
                           (emb, emb, blk, norm, ParamInfo(Role.OUTPUT, d)))

    def layers(self, tree):
        blocks = [jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a, k=k: a[k], tree.blocks))
                  for k in range(tree.blocks.wq.shape[0])]
        return [[tree.embed, tree.pos], *blocks, [*tree.ln_f, tree.w_out]]

    def check_input(self, x) -> None:
        if not hasattr(x, "shape") or x.ndim != 2:
            raise ValueError(f"x must be a 2-d array of token ids (batch, time); got shape {getattr(x, 'shape', None)}")
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"x must hold integer token ids; got dtype {x.dtype}")
        if x.shape[1] > self.context or x.shape[1] < 1:
            raise ValueError(f"x has sequence length {x.shape[1]}; the model's context is 1..{self.context}")
        if not isinstance(x, jax.core.Tracer) and (int(jnp.min(x)) < 0 or int(jnp.max(x)) >= self.vocab):
            raise ValueError(f"x has token ids outside the vocabulary [0, {self.vocab})")

    def matmul_flops(self, batch: int) -> int:
        d, f, v, t = self.d_model, self.blocks.w1.shape[1], self.vocab, self.context
        per_block = 2 * batch * t * (4 * d * d + 2 * d * f) + 4 * batch * t * t * d
        return self.n_blocks * per_block + 2 * batch * t * d * v


def transformer(
    key: jax.Array,
    vocab: int,
    *,
    d_model: int = 64,
    heads: int = 4,
    blocks: int = 4,
    context: int = 64,
    d_ff: int | None = None,
    pre_norm: bool = True,
    act: "Activation | str" = "gelu",
    param: "Parameterisation | str" = "mupc",
    dtype=jnp.float32,
) -> TransformerPCN:
    """A causal transformer PCN over ``vocab`` tokens (module docstring); ``d_ff`` = 4·d."""
    for name, v in (("vocab", vocab), ("d_model", d_model), ("heads", heads), ("blocks", blocks), ("context", context)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} is not valid; expected an integer >= 1")
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
    d_ff = 4 * d_model if d_ff is None else d_ff
    act, param, dtype = parse_option(Activation, act, "act"), get_param(param), jnp.dtype(dtype)
    hid = ParamInfo(Role.HIDDEN, d_model)
    res_o, res_2 = ParamInfo(Role.RESIDUAL, d_model, blocks, 1.0), ParamInfo(Role.RESIDUAL, d_ff, blocks, 1.0)
    k_emb, k_pos, k_out, k_blk = jax.random.split(key, 4)

    ks = jax.random.split(k_blk, 6)
    n, d, f = blocks, d_model, d_ff
    ones, zeros = jnp.ones((n, d), dtype), jnp.zeros((n, d), dtype)
    stacked = TransformerBlock(  # each parameter drawn stacked on the block axis in one call
        *(param.init(ks[i], (n, d, d), hid, dtype) for i in range(3)), param.init(ks[3], (n, d, d), res_o, dtype),
        param.init(ks[4], (n, f, d), hid, dtype), jnp.zeros((n, f), dtype),
        param.init(ks[5], (n, d, f), res_2, dtype), zeros, (ones, zeros), (ones, zeros))
    emb = ParamInfo(Role.EMBEDDING)
    mult = (("q", param.multiplier(hid)), ("o", param.multiplier(res_o)), ("1", param.multiplier(hid)),
            ("2", param.multiplier(res_2)), ("logit", param.multiplier(ParamInfo(Role.ATTENTION, d_model // heads))),
            ("out", param.multiplier(ParamInfo(Role.OUTPUT, d_model))))
    return TransformerPCN(
        embed=param.init(k_emb, (vocab, d_model), emb, dtype), pos=param.init(k_pos, (context, d_model), emb, dtype),
        blocks=stacked, ln_f=(jnp.ones((d_model,), dtype), jnp.zeros((d_model,), dtype)),
        w_out=param.init(k_out, (vocab, d_model), ParamInfo(Role.OUTPUT, d_model), dtype),
        heads=heads, pre_norm=bool(pre_norm), act=act, mult=mult)
