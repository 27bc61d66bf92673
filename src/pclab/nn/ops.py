r"""Array operations shared by the PCN architectures, all at full matmul precision.

PC energies are sums of squared *differences* of layer outputs computed by different kernels
(a scanned forward pass vs. one batched prediction pass): reduced-precision products (TF32 on
GPUs) leave errors of ~1e-3 at the feedforward start and corrupt inference, so every product
here asks for ``Precision.HIGHEST``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

HIGHEST = jax.lax.Precision.HIGHEST


def conv2d(x: Float[Array, "B H W C"], k: Float[Array, "M C k k"], stride: int = 1) -> Float[Array, "B H/s W/s M"]:
    """2-d cross-correlation, channels-last images (NHWC), kernels (M, C, k, k), zero 'SAME'
    padding, ``stride`` in both directions:
    out[b, i, j, m] = Σ_{c,u,v} k[m, c, u, v] · x[b, s·i + u − p, s·j + v − p, c].

    Channels-last because XLA:CPU runs a channels-first convolution inside a loop body (the
    inference loop) over 10× slower than at top level; channels-last keeps its fast path."""
    return jax.lax.conv_general_dilated(x, k, (stride, stride), "SAME", dimension_numbers=("NHWC", "OIHW", "NHWC"),
                                        precision=HIGHEST)


def layer_norm(x: Float[Array, "... d"], gain: Float[Array, " d"], bias: Float[Array, " d"],
               eps: float = 1e-5) -> Float[Array, "... d"]:
    """LN(x) = gain ⊙ (x − mean(x)) / √(var(x) + ε) + bias over the last axis."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return gain * (x - mu) * jax.lax.rsqrt(var + eps) + bias


def linear(x: Float[Array, "... I"], w: Float[Array, "O I"]) -> Float[Array, "... O"]:
    """x Wᵀ at full precision."""
    return jnp.matmul(x, w.T, precision=HIGHEST)


def causal_attention(q: Float[Array, "B T H e"], k: Float[Array, "B T H e"], v: Float[Array, "B T H e"],
                     logit_scale: float) -> Float[Array, "B T H e"]:
    r"""Causal multi-head attention: out_t = Σ_{s ≤ t} softmax_s(c·q_t·k_s) v_s per head, with
    the logit multiplier c (1/√d_head in SP, 1/d_head in μP)."""
    t = q.shape[1]
    logits = logit_scale * jnp.einsum("bthe,bshe->bhts", q, k, precision=HIGHEST)
    mask = jnp.tril(jnp.ones((t, t), bool))
    logits = jnp.where(mask, logits, -jnp.inf)
    return jnp.einsum("bhts,bshe->bthe", jax.nn.softmax(logits, axis=-1), v, precision=HIGHEST)
