r"""A small Lipschitz conv classifier of :class:`OrthogonalConv` layers, its robustness certificate
and a backprop training loop with the orthogonality penalty (arXiv 2108.05623 §experiments).

Network: x (C, n, n) → [OrthogonalConv_l → φ]_{l=1..L} → flatten → W_out · + b → logits (O,),
φ = MaxMin (pairs of channels sorted, 1-Lipschitz and norm-preserving) or ReLU. Its Lipschitz
constant in ℓ2 is at most

    Lip ≤ ‖W_out‖₂ · Π_l ‖𝒦_l‖₂            (‖𝒦_l‖₂ exact by FFT at the layer's image size),

and a logit margin m(x) = f_y(x) − max_{j≠y} f_j(x) certifies that no perturbation of ℓ2 norm
below m(x) / (√2 · Lip) changes the prediction (each f_y − f_j is √2·Lip-Lipschitz).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from ..theory._random import normal_draw
from .orthogonal_conv import OrthogonalConv, _positive_int, orth_penalty

ACTIVATIONS = ("maxmin", "relu")


def maxmin(x: Float[Array, "*B C *n"], axis: int) -> Float[Array, "*B C *n"]:
    """GroupSort with groups of 2 along ``axis``: (a, b) ↦ (max(a, b), min(a, b))."""
    a, b = jnp.split(x, 2, axis=axis)
    return jnp.concatenate([jnp.maximum(a, b), jnp.minimum(a, b)], axis=axis)


class OrthConvNet(eqx.Module):
    """Conv layers ``convs`` (each an :class:`OrthogonalConv`), activation ``act``, dense head
    ``head`` (O, F) + ``head_bias`` (O,). ``image_size`` n is the input's spatial size."""

    convs: tuple[OrthogonalConv, ...]
    head: Float[Array, "O F"]
    head_bias: Float[Array, "O"]
    image_size: int = eqx.field(static=True)
    act: str = eqx.field(static=True)

    def sizes(self) -> list[int]:
        """The input image size of every conv layer."""
        out, n = [], self.image_size
        for conv in self.convs:
            out.append(n)
            n //= conv.stride
        return out

    def __call__(self, x: Float[Array, "*B C n n"]) -> Float[Array, "*B O"]:
        h = x
        for conv in self.convs:
            h = conv(h)
            h = maxmin(h, axis=-3) if self.act == "maxmin" else jax.nn.relu(h)
        h = h.reshape(h.shape[:-3] + (-1,))
        return h @ self.head.T + self.head_bias

    def lipschitz_bound(self) -> Float[Array, ""]:
        """‖W_out‖₂ · Π_l ‖𝒦_l‖₂, an upper bound on the ℓ2 Lipschitz constant of x ↦ logits."""
        norms = [conv.spectral_norm(n) for conv, n in zip(self.convs, self.sizes())]
        return jnp.linalg.norm(self.head, ord=2) * jnp.prod(jnp.stack(norms))


def orth_convnet(key: jax.Array, in_channels: int, image_size: int, n_classes: int = 10,
                 channels=(8, 16, 32), strides=(1, 2, 2), kernel_size: int = 3, act: str = "maxmin",
                 dtype=None) -> OrthConvNet:
    """An :class:`OrthConvNet` with one conv per entry of ``channels``/``strides`` (every stride must
    divide the image size it meets); head weights N(0, 1/F)."""
    _positive_int("in_channels", in_channels), _positive_int("image_size", image_size)
    _positive_int("n_classes", n_classes)
    if act not in ACTIVATIONS:
        raise ValueError(f"act={act!r} is not valid; expected one of {ACTIVATIONS}")
    if len(channels) != len(strides) or not channels:
        raise ValueError(f"channels {tuple(channels)} and strides {tuple(strides)} must be non-empty and of "
                         "equal length")
    if act == "maxmin" and any(c % 2 for c in channels):
        raise ValueError(f"channels={tuple(channels)}: MaxMin needs an even number of channels in every layer")
    keys = jax.random.split(key, len(channels) + 1)
    convs, c_in, n = [], in_channels, image_size
    for i, (c, s) in enumerate(zip(channels, strides)):
        if n % s:
            raise ValueError(f"strides[{i}]={s} does not divide the image size {n} at layer {i}")
        convs.append(OrthogonalConv(c_in, c, kernel_size, s, key=keys[i], dtype=dtype))
        c_in, n = c, n // s
    features = c_in * n * n
    head = normal_draw(keys[-1], (n_classes, features), dtype) / np.sqrt(features)
    return OrthConvNet(tuple(convs), head, jnp.zeros((n_classes,), head.dtype), image_size, act)


def margins(logits: Float[Array, "B O"], labels: Int[Array, "B"]) -> Float[Array, "B"]:
    """f_y − max_{j≠y} f_j (negative where the prediction is wrong)."""
    true = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[1], dtype=bool), -jnp.inf, logits)
    return true - jnp.max(others, axis=1)


def certified_radius(logits: Float[Array, "B O"], labels: Int[Array, "B"], lipschitz) -> Float[Array, "B"]:
    """margin / (√2 · Lip): the ℓ2 radius within which the prediction provably does not change."""
    return margins(logits, labels) / (jnp.sqrt(2.0) * lipschitz)


class Certificate(NamedTuple):
    """Test accuracy, the Lipschitz bound, every example's certified radius (negative if wrong)."""

    accuracy: float
    lipschitz: float
    radius: np.ndarray

    def certified_accuracy(self, eps: float) -> float:
        """Fraction of examples classified correctly with certified radius > eps."""
        return float(np.mean(self.radius > eps))


def certify(model: OrthConvNet, x: Float[Array, "N C n n"], y: Int[Array, "N"], batch_size: int = 1000) -> Certificate:
    """Accuracy and certified radii of ``model`` on (x, y), in batches."""
    lip = model.lipschitz_bound()
    fwd = eqx.filter_jit(lambda m, xb: m(xb))
    logits = jnp.concatenate([fwd(model, x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    rad = certified_radius(logits, jnp.asarray(y), lip)
    return Certificate(float(jnp.mean(jnp.argmax(logits, 1) == y)), float(lip), np.asarray(rad))


def train_classifier(model, x: Float[Array, "N ..."], y: Int[Array, "N"], *, key: jax.Array, lam: float = 0.0,
                     epochs: int = 1, batch_size: int = 128, lr: float = 1e-3):
    """Adam on mean cross-entropy + ``lam`` · :func:`orth_penalty` (backprop), shuffled minibatches
    (the last partial batch of an epoch is dropped). Returns (model, per-step losses (steps,)).
    ``lam`` is traced: different weights reuse one compiled epoch."""
    _positive_int("epochs", epochs), _positive_int("batch_size", batch_size)
    if x.shape[0] < batch_size:
        raise ValueError(f"batch_size={batch_size} exceeds the {x.shape[0]} training examples")
    opt = _adam(float(lr))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)
    x, y = jnp.asarray(x), jnp.asarray(y)
    losses = []
    for e in range(epochs):
        params, state, ls = _epoch(params, state, static, x, y, jax.random.fold_in(key, e),
                                   jnp.asarray(lam, x.dtype), batch_size, opt)
        losses.append(ls)
    return eqx.combine(params, static), jnp.concatenate(losses)


@functools.lru_cache(maxsize=16)
def _adam(lr: float) -> optax.GradientTransformation:
    """One optimiser object per rate, so that repeated calls hit the compilation cache."""
    return optax.adam(lr)


@eqx.filter_jit
def _epoch(params, state, static, x, y, key, lam, batch_size, opt):
    steps = x.shape[0] // batch_size
    perm = jax.random.permutation(key, x.shape[0])[: steps * batch_size].reshape(steps, batch_size)

    def objective(p, xb, yb):
        m = eqx.combine(p, static)
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(m(xb), yb))
        return ce + lam * orth_penalty(m)

    def step(carry, idx):
        p, s = carry
        val, g = jax.value_and_grad(objective)(p, x[idx], y[idx])
        upd, s = opt.update(g, s, p)
        return (optax.apply_updates(p, upd), s), val

    (params, state), ls = jax.lax.scan(step, (params, state), perm)
    return params, state, ls
