r"""In-context linear regression for the implicit-update theory (arXiv 2507.16003, 2512.11255).

A prompt holds n context pairs and a query, tokens of width d_x + 1:

    t_j = [x_j, y_j] (j < n),   t_n = [x_q, 0],   y = wᵀx/√d_x + σε,   x, w, ε ~ N(0, I),

and the model predicts y_q at the query's position. Under causal attention the query at
position n sees only t_0..t_n, so a prompt may go on after it with more pairs of the same task:
training with a random query position per prompt trains every context length in one shape.

:class:`ICLTransformer` is the project's :class:`~pclab.nn.transformer.TransformerPCN` blocks
(``model.block``, the same block the implicit-update functions take) between a linear read-in
of the real-valued tokens and a linear read-out; its token embedding is not used. It is
trained by backprop with Optax on fresh random tasks (:func:`train_icl`). Baselines at the
query: the constant 0 (best constant, error E y² = 1 + σ²), least squares on the context
(minimum norm), and one step of GD from w = 0, ŷ = η (1/n) Σ_j y_j x_jᵀx_q, with the best η.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from ..nn.ops import layer_norm, linear
from ..nn.transformer import TransformerPCN, transformer


class ICLBatch(NamedTuple):
    """Prompts: tokens (B, T, d_x+1), target y_q (B,), query_pos (B,) = number of context
    pairs before the query, w (B, d_x) the task weights."""

    tokens: Float[Array, "B T e"]
    target: Float[Array, " B"]
    query_pos: Int[Array, " B"]
    w: Float[Array, "B dx"]


def _check_sizes(**sizes) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} is not valid; expected an integer >= 1")


def regression_prompts(key: jax.Array, batch: int, n_context: int, d_x: int, *, noise: float = 0.0,
                       min_context: int | None = None, dtype=jnp.float32) -> ICLBatch:
    """``batch`` fresh tasks of ``n_context + 1`` tokens; the query sits at position n_context,
    or at a uniform position in [min_context, n_context] per prompt (pairs after it unseen)."""
    _check_sizes(batch=batch, n_context=n_context, d_x=d_x)
    if min_context is not None and not (isinstance(min_context, int) and 0 <= min_context <= n_context):
        raise ValueError(f"min_context={min_context!r} is not valid; expected an integer in [0, n_context]")
    return _prompts(key, batch, n_context, d_x, noise, min_context, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 5, 6))
def _prompts(key, batch, n_context, d_x, noise, min_context, dtype) -> ICLBatch:
    kn, kp = jax.random.split(key)
    t = n_context + 1
    g = jax.random.normal(kn, (batch, d_x + t * d_x + t), dtype)  # one draw: w, x, ε (compiles once)
    w, x, eps = g[:, :d_x], g[:, d_x:d_x + t * d_x].reshape(batch, t, d_x), g[:, d_x + t * d_x:]
    y = jnp.einsum("btd,bd->bt", x, w) / jnp.sqrt(d_x) + noise * eps
    pos = (jnp.full((batch,), n_context) if min_context is None
           else jax.random.randint(kp, (batch,), min_context, n_context + 1))
    is_q = jnp.arange(t)[None] == pos[:, None]
    tokens = jnp.concatenate([x, jnp.where(is_q, 0.0, y)[..., None]], axis=-1)
    return ICLBatch(tokens, jnp.take_along_axis(y, pos[:, None], 1)[:, 0], pos.astype(jnp.int32), w)


@jax.jit
def context_sweep(batch: ICLBatch) -> ICLBatch:
    """The same tasks and queries at every context length n = 1..N: prompt (b, n) is
    [t_0..t_{n−1}, query, t_n..t_{N−1}] with the query at position n. Needs query_pos = N.
    Returns a batch of B·N prompts ordered (b, n)."""
    b, t, e = batch.tokens.shape
    n = t - 1
    ctx, q = batch.tokens[:, :n], batch.tokens[:, n]

    def at(k):
        return jnp.concatenate([ctx[:, :k], q[:, None], ctx[:, k:]], axis=1)

    tokens = jnp.stack([at(k) for k in range(1, n + 1)], axis=1).reshape(b * n, t, e)
    rep = lambda a: jnp.repeat(a, n, axis=0)  # noqa: E731
    return ICLBatch(tokens, rep(batch.target), jnp.tile(jnp.arange(1, n + 1, dtype=jnp.int32), b), rep(batch.w))


class ICLTransformer(eqx.Module):
    """Read-in, the blocks of ``core`` (a :class:`TransformerPCN`), read-out:
    z_0 = a_in W_in t (a_in = 1/√(d_x+1)), z_k = core.block(blk_k, z_{k−1}),
    ŷ = w_out · LN_f(z_n) (LN_f with ``pre_norm``). w_in (d, d_x+1), w_out (d,)."""

    core: TransformerPCN
    w_in: Float[Array, "d e"]
    w_out: Float[Array, " d"]

    def read_in(self, tokens: Float[Array, "*B T e"]) -> Float[Array, "*B T d"]:
        return linear(tokens, self.w_in) / jnp.sqrt(self.w_in.shape[1])

    def activities(self, tokens: Float[Array, "B T e"]) -> Float[Array, "L B T d"]:
        """(1 + n_blocks, B, T, d): the read-in, then every block's output."""
        z0 = self.read_in(tokens)

        def body(h, blk):
            h = self.core.block(blk, h)
            return h, h

        _, zs = jax.lax.scan(body, z0, self.core.blocks)
        return jnp.concatenate([z0[None], zs], axis=0)

    def read_out(self, z: Float[Array, "... d"]) -> Float[Array, "..."]:
        z = layer_norm(z, *self.core.ln_f) if self.core.pre_norm else z
        return z @ self.w_out / jnp.sqrt(self.w_out.shape[0])

    def __call__(self, tokens: Float[Array, "B T e"]) -> Float[Array, "B T"]:
        """The prediction at every position (B, T); the query's is at ``query_pos``."""
        return self.read_out(self.activities(tokens)[-1])


def icl_transformer(key: jax.Array, d_x: int, *, d_model: int = 32, heads: int = 2, blocks: int = 2,
                    d_ff: int | None = None, pre_norm: bool = True, act: str = "gelu", param: str = "sp",
                    dtype=jnp.float32) -> ICLTransformer:
    """An :class:`ICLTransformer` for tokens of width d_x + 1 (``pclab.transformer`` blocks)."""
    k_core, k_in, k_out = jax.random.split(key, 3)
    core = transformer(k_core, 1, d_model=d_model, heads=heads, blocks=blocks, context=1, d_ff=d_ff,
                       pre_norm=pre_norm, act=act, param=param, dtype=dtype)
    return ICLTransformer(core, jax.random.normal(k_in, (d_model, d_x + 1), dtype),
                          jax.random.normal(k_out, (d_model,), dtype))


@eqx.filter_jit
def query_predictions(model: ICLTransformer, batch: ICLBatch) -> Float[Array, " B"]:
    """ŷ at each prompt's query position: (B,)."""
    return jnp.take_along_axis(model(batch.tokens), batch.query_pos[:, None], 1)[:, 0]


def icl_loss(model: ICLTransformer, batch: ICLBatch) -> jax.Array:
    """Mean squared error at the query, (1/B) Σ_b (ŷ_q − y_q)²."""
    return jnp.mean(jnp.square(query_predictions(model, batch) - batch.target))


def train_icl(key: jax.Array, model: ICLTransformer, *, steps: int = 2000, batch: int = 64, n_context: int = 16,
              noise: float = 0.0, lr: float = 3e-3, min_context: int = 1) -> tuple[ICLTransformer, jax.Array]:
    """Adam (warm-up + cosine decay, gradient clipping at 1) on fresh prompts every step, the
    query at a random position in [min_context, n_context]; one ``lax.scan``. Returns the
    trained model and the loss at every step (steps,)."""
    _check_sizes(steps=steps, batch=batch, n_context=n_context)
    if not (isinstance(min_context, int) and 0 <= min_context <= n_context):
        raise ValueError(f"min_context={min_context!r} is not valid; expected an integer in [0, n_context]")
    return _train(model, jax.random.split(key, steps), batch, n_context, float(noise), float(lr), min_context)


@eqx.filter_jit
def _train(model, keys, batch, n_context, noise, lr, min_context):
    d_x, dtype, steps = model.w_in.shape[1] - 1, model.w_in.dtype, keys.shape[0]
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adam(optax.warmup_cosine_decay_schedule(0.0, lr, max(1, steps // 20), steps)))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step(carry, k):
        p, state = carry
        data = _prompts(k, batch, n_context, d_x, noise, min_context, dtype)
        loss, g = jax.value_and_grad(lambda q: icl_loss(eqx.combine(q, static), data))(p)
        upd, state = opt.update(g, state, p)
        return (optax.apply_updates(p, upd), state), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), keys)
    return eqx.combine(params, static), losses


@jax.jit
def baseline_predictions(batch: ICLBatch) -> dict[str, jax.Array]:
    """Query predictions (B,) from the context pairs j < query_pos: least squares (minimum
    norm) and one step of GD from 0, s = (1/n) Σ_j y_j x_jᵀx_q, scaled by the best η on the batch."""
    x, y = batch.tokens[..., :-1], batch.tokens[..., -1]
    t = x.shape[1]
    m = (jnp.arange(t)[None] < batch.query_pos[:, None]).astype(x.dtype)
    xq = jnp.take_along_axis(x, batch.query_pos[:, None, None], 1)[:, 0]
    gram = jnp.einsum("bt,bti,btj->bij", m, x, x)
    r = jnp.einsum("bt,bt,bti->bi", m, y, x)
    w_ls = jnp.einsum("bij,bj->bi", jnp.linalg.pinv(gram, hermitian=True), r)
    s = jnp.einsum("bi,bi->b", r, xq) / jnp.maximum(batch.query_pos, 1)
    eta = jnp.sum(s * batch.target) / jnp.maximum(jnp.sum(s * s), jnp.finfo(s.dtype).tiny)
    return {"least squares": jnp.einsum("bi,bi->b", w_ls, xq), "one-step GD": eta * s,
            "constant": jnp.zeros_like(s)}


def online_gd(model: ICLTransformer, batch: ICLBatch, lr: float) -> tuple[jax.Array, jax.Array]:
    r"""Fine-tune the context-free model (every token alone) on its prompt by online GD on the
    W_1 of every block, one step per context pair: W ← W − lr ∇_W ½(f_W([x_j, 0]) − y_j)²,
    j = 0..N−1 (needs query_pos = N). Returns (W − W_0 per prompt (B, n_blocks, d_ff, d), the
    fine-tuned prediction at the query (B,))."""
    n = batch.tokens.shape[1] - 1
    w0 = model.core.blocks.w1

    def alone(w, tok):
        m = eqx.tree_at(lambda mm: mm.core.blocks.w1, model, w)
        return m(tok[None, None])[0, 0]

    def one(tokens):
        pairs = tokens[:n]
        queries = pairs.at[:, -1].set(0.0)

        def step(w, j):
            g = jax.grad(lambda ww: 0.5 * jnp.square(alone(ww, queries[j]) - pairs[j, -1]))(w)
            return w - lr * g, None

        w, _ = jax.lax.scan(step, w0, jnp.arange(n))
        return w - w0, alone(w, tokens[n])

    return jax.vmap(one)(batch.tokens)
