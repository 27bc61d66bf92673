r"""Small ReLU networks fitted to a target function by backprop (Optax), and the targets used to
check the approximation rates of :mod:`.approximation` (arXiv 2206.04360).

A network of depth L (L affine layers, L − 1 hidden ReLU layers of one width N) on inputs
x ∈ [0,1]^d computes g(x) = A_L ∘ ReLU ∘ A_{L−1} ∘ ⋯ ∘ ReLU ∘ A_1 (x) with A_l(z) = W_l z + b_l;
its parameter count is W = Σ_l (n_{l−1} + 1) n_l. ``params`` is a list of (W_l (n_l, n_{l−1}),
b_l (n_l,)) pairs; inputs are rows, x (n, d) ↦ g(x) (n,). Training is full-batch Adam with a
cosine-decayed rate on the mean squared error over fixed training points (plain BP).

The first layer's biases place each unit's kink hyperplane through a uniform random point of
[0,1]^d (b = −W c), so that the initial pieces cover the domain.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


def relu_n_params(d: int, width: int, depth: int) -> int:
    """W = (d + 1)N + (depth − 2)(N + 1)N + (N + 1) for depth ≥ 2 affine layers of width N."""
    _check_arch(d, width, depth)
    return (d + 1) * width + (depth - 2) * (width + 1) * width + (width + 1)


def _check_arch(d, width, depth):
    for name, v, lo in (("d", d, 1), ("width", width, 1), ("depth", depth, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r} is not valid; expected an integer >= {lo}")


def relu_init(key: jax.Array, d: int, width: int, depth: int, dtype=None) -> list[tuple[jax.Array, jax.Array]]:
    """He-normal weights; first-layer kinks through uniform points of [0,1]^d, other biases 0.

    Drawn by NumPy from a generator seeded with the key's data (no per-shape compilation)."""
    _check_arch(d, width, depth)
    dt = jnp.result_type(float) if dtype is None else dtype
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    dims = [d] + [width] * (depth - 1) + [1]
    params = []
    for l in range(depth):
        W = rng.standard_normal((dims[l + 1], dims[l])) * math.sqrt(2.0 / dims[l])
        b = -np.sum(W * rng.uniform(size=(dims[1], d)), axis=1) if l == 0 else np.zeros(dims[l + 1])
        params.append((jnp.asarray(W, dt), jnp.asarray(b, dt)))
    return params


def relu_apply(params, x: jax.Array) -> jax.Array:
    """g(x) for x (n, d) → (n,)."""
    z = x
    for W, b in params[:-1]:
        z = jax.nn.relu(z @ W.T + b)
    W, b = params[-1]
    return (z @ W.T + b)[:, 0]


_apply_jit = jax.jit(relu_apply)


class ReluFit(NamedTuple):
    """The trained ``params``, the training MSE per step (steps,), W and L."""

    params: list
    losses: np.ndarray
    n_params: int
    depth: int

    def __call__(self, x: jax.Array) -> jax.Array:
        return _apply_jit(self.params, x)


@partial(jax.jit, static_argnames=("steps", "lr"))
def _train(params, x, y, steps: int, lr: float):
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=1e-2))
    loss = lambda p: jnp.mean((relu_apply(p, x) - y) ** 2)  # noqa: E731

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p)
        upd, s = opt.update(g, s, p)
        return (optax.apply_updates(p, upd), s), value

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, losses


def fit_relu(key: jax.Array, target: Callable, x_train: jax.Array, width: int, depth: int,
             steps: int = 3000, lr: float = 1e-2) -> ReluFit:
    """Fit a ReLU network (width N, depth L) to ``target`` on ``x_train`` (n, d) by full-batch Adam
    (cosine decay from ``lr`` to lr/100 over ``steps``, one compiled ``lax.scan``) on the MSE
    (1/n) Σ (g(x_i) − f(x_i))²."""
    x_train = jnp.asarray(x_train)
    if x_train.ndim != 2 or x_train.shape[0] < 1:
        raise ValueError(f"x_train must be a non-empty 2-d (n, d) array; got shape {tuple(x_train.shape)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not valid; expected an integer >= 1")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} is not valid; expected a finite number > 0")
    d = x_train.shape[1]
    params = relu_init(key, d, width, depth, x_train.dtype)
    y = jnp.asarray(target(x_train), x_train.dtype).reshape(-1)
    params, losses = _train(params, x_train, y, steps, float(lr))
    return ReluFit(params, np.asarray(losses), relu_n_params(d, width, depth), depth)


def fit_relu_family(key: jax.Array, target: Callable, x_train: jax.Array, widths, depth: int,
                    steps: int = 3000, lr: float = 1e-2) -> list[ReluFit]:
    """:func:`fit_relu` for each width (keys split from ``key``), in order of ``widths``."""
    widths = list(widths)
    return [fit_relu(k, target, x_train, n, depth, steps, lr) for k, n in zip(jax.random.split(key, len(widths)), widths)]


def weierstrass(alpha: float, d: int = 1, terms: int = 12) -> Callable:
    r"""A Hölder-α target on [0,1]^d (0 < α < 1): f(x) = c Σ_{k<terms} 2^{−kα} Π_j cos(2^k π x_j),
    normalised (c) so that Σ_k 2^{−kα} c = 1 (values in [−1, 1])."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not valid; expected 0 < alpha < 1")
    weights = 2.0 ** (-alpha * np.arange(terms))
    weights = weights / weights.sum()
    freqs = np.pi * 2.0 ** np.arange(terms)

    def f(x):
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"x must have shape (n, {d}); got {tuple(x.shape)}")
        waves = jnp.prod(jnp.cos(x[:, None, :] * jnp.asarray(freqs, x.dtype)[None, :, None]), axis=2)
        return waves @ jnp.asarray(weights, x.dtype)

    return f


def monotone_step(jump_at: float = 0.3, jump: float = 0.5) -> Callable:
    """A monotone target on [0,1] with one jump: f(x) = (1 − jump)·x + jump·1[x > jump_at]; no
    continuous g is uniformly closer than jump/2."""
    return lambda x: (1.0 - jump) * x[:, 0] + jump * (x[:, 0] > jump_at)
