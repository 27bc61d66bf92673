r"""The PC energy and its parts, for any :class:`pclab.nn.AbstractPCN`.

For one example with activities z_1..z_{L−1} (a pytree), input z_0 (= x, or a free latent in
generative mode) and target y,

    E_i = ½ Σ_{l=1}^{L−1} ‖z_l − f_l(z_{l−1})‖²  +  λ · ℓ(y, f_L(z_{L−1}))

with ℓ = ½‖y − ŷ‖² (MSE) or −Σ y·log softmax(ŷ) (CE, over the last axis; summed over any
other output axes such as sequence positions) and output precision λ.

**Batch convention.** :func:`energy` is the batch *mean* F = (1/B) Σ_i E_i, the quantity whose
weight gradient is used for learning. Inference descends the batch *sum* Σ_i E_i, whose
activity gradient for example i is ∂E_i/∂z_i: activity step sizes therefore do not depend
on the batch size (:func:`activity_grad`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .nn.base import batch_sum_squares, layer_sum_squares
from .options import OutputLoss, parse_option


@dataclass(frozen=True)
class EnergySpec:
    """How the output term is formed: loss type and output precision λ > 0."""

    loss: OutputLoss = OutputLoss.MSE
    precision: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "loss", parse_option(OutputLoss, self.loss, "loss"))
        p = self.precision
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0 or p == float("inf"):
            raise ValueError(f"precision={p!r} is not valid; expected a finite number > 0")


def _per_example(v: Array) -> Array:
    return v if v.ndim == 1 else jnp.sum(v.reshape(v.shape[0], -1), axis=1)


def output_loss(y_hat: Float[Array, "B ... O"], y: Float[Array, "B ... O"], loss: OutputLoss) -> Float[Array, " B"]:
    """Per-example output term ℓ(y, ŷ): ½‖y − ŷ‖² or −Σ y·log softmax(ŷ) (softmax over the
    last axis), summed over every non-batch axis."""
    if loss is OutputLoss.MSE:
        return _per_example(0.5 * jnp.sum((y - y_hat) ** 2, axis=-1))
    return _per_example(-jnp.sum(y * jax.nn.log_softmax(y_hat, axis=-1), axis=-1))


def hidden_errors(model, z, x):
    """Prediction errors e_l = z_l − f_l(z_{l−1}) of every layer, computed at once (pytree)."""
    return jax.tree_util.tree_map(jnp.subtract, z, model.predictions(z, x))


def example_energies(model, z, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, " B"]:
    """Per-example energies E_i (see module docstring)."""
    hidden = 0.5 * batch_sum_squares(hidden_errors(model, z, x))
    return hidden + spec.precision * output_loss(model.output(z), y, spec.loss)


def energy(model, z, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, ""]:
    """F = (1/B) Σ_i E_i, the batch-mean energy."""
    return jnp.mean(example_energies(model, z, x, y, spec))


def layer_energies(model, z, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, " L"]:
    """Batch-mean energy of each layer: ½ mean_i ‖e_l‖² for l < L, then λ·mean_i ℓ. Sums to F."""
    out = spec.precision * jnp.mean(output_loss(model.output(z), y, spec.loss))
    return jnp.concatenate([layer_sum_squares(hidden_errors(model, z, x)), out[None]])


def loss(model, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, ""]:
    """BP loss L = (1/B) Σ_i ℓ(y_i, ŷ(x_i)) of the feedforward network (no precision)."""
    return jnp.mean(output_loss(model(x), y, spec.loss))


def output_grad(y_hat: Float[Array, "B O"], y: Float[Array, "B O"], loss: OutputLoss) -> Float[Array, "B O"]:
    """∂ℓ/∂ŷ per example: ŷ − y (MSE) or softmax(ŷ)·Σy − y (CE, softmax over the last axis)."""
    if loss is OutputLoss.MSE:
        return y_hat - y
    return jax.nn.softmax(y_hat, axis=-1) * jnp.sum(y, axis=-1, keepdims=True) - y


def output_hessian(y_hat: Float[Array, "B O"], y: Float[Array, "B O"], loss: OutputLoss) -> Float[Array, "B O O"]:
    """∂²ℓ/∂ŷ² per example for 2-d outputs: I (MSE) or (Σy)·(diag p − p pᵀ), p = softmax(ŷ) (CE)."""
    if loss is OutputLoss.MSE:
        return jnp.broadcast_to(jnp.eye(y_hat.shape[-1], dtype=y_hat.dtype), y_hat.shape + y_hat.shape[-1:])
    p = jax.nn.softmax(y_hat, axis=-1)
    s = jnp.sum(y, axis=-1)[:, None, None]
    return s * (jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :])


def activity_grad(model, z, x, y, spec: EnergySpec = EnergySpec()):
    """∂(Σ_i E_i)/∂z, the structure of z: each example's own gradient (batch-size free).
    Autodiff unless the model overrides :meth:`AbstractPCN.activity_grad`."""
    return model.activity_grad(z, x, y, spec)
