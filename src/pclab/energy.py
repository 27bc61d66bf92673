r"""The PC energy and its parts.

For one example with hidden activities z_1..z_{L−1}, input z_0 (= x, or a free latent in
generative mode) and target y,

    E_i = ½ Σ_{l=1}^{L−1} ‖z_l − f_l(z_{l−1})‖²  +  λ · ℓ(y, f_L(z_{L−1}))

with ℓ = ½‖y − ŷ‖² (MSE) or −Σ y·log softmax(ŷ) (CE) and output precision λ.

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

from .nn.pcn import PCN, stacked_t
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


def output_loss(y_hat: Float[Array, "B O"], y: Float[Array, "B O"], loss: OutputLoss) -> Float[Array, " B"]:
    """Per-example output term ℓ(y, ŷ): ½‖y − ŷ‖² or −Σ y·log softmax(ŷ)."""
    if loss is OutputLoss.MSE:
        return 0.5 * jnp.sum((y - y_hat) ** 2, axis=-1)
    return -jnp.sum(y * jax.nn.log_softmax(y_hat, axis=-1), axis=-1)


def hidden_errors(
    model: PCN, z: Float[Array, "L-1 B N"], x: Float[Array, "B D"], mu_first: Float[Array, "B N"] | None = None
) -> Float[Array, "L-1 B N"]:
    """Prediction errors e_l = z_l − f_l(z_{l−1}) of all hidden layers, computed at once.

    ``mu_first`` may pass a precomputed f_1(x) (it is constant during supervised inference).
    """
    mu1 = model.predict_first(x) if mu_first is None else mu_first
    mu = jnp.concatenate([mu1[None], model.predict_hidden(z[:-1])], axis=0)
    return z - mu


def example_energies(
    model: PCN,
    z: Float[Array, "L-1 B N"],
    x: Float[Array, "B D"],
    y: Float[Array, "B O"],
    spec: EnergySpec = EnergySpec(),
    mu_first: Float[Array, "B N"] | None = None,
) -> Float[Array, " B"]:
    """Per-example energies E_i (see module docstring)."""
    e = hidden_errors(model, z, x, mu_first)
    hidden = 0.5 * jnp.sum(e**2, axis=(0, 2))
    return hidden + spec.precision * output_loss(model.predict_output(z[-1]), y, spec.loss)


def energy(model: PCN, z, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, ""]:
    """F = (1/B) Σ_i E_i, the batch-mean energy. z: (L−1, B, N), x: (B, D), y: (B, O)."""
    return jnp.mean(example_energies(model, z, x, y, spec))


def layer_energies(model: PCN, z, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, " L"]:
    """Batch-mean energy of each layer: ½ mean_i ‖e_l‖² for l < L, then λ·mean_i ℓ. Sums to F."""
    e = hidden_errors(model, z, x)
    hidden = 0.5 * jnp.mean(jnp.sum(e**2, axis=2), axis=1)
    out = spec.precision * jnp.mean(output_loss(model.predict_output(z[-1]), y, spec.loss))
    return jnp.concatenate([hidden, out[None]])


def loss(model: PCN, x, y, spec: EnergySpec = EnergySpec()) -> Float[Array, ""]:
    """BP loss L = (1/B) Σ_i ℓ(y_i, ŷ(x_i)) of the feedforward network (no precision)."""
    return jnp.mean(output_loss(model(x), y, spec.loss))


def output_grad(y_hat: Float[Array, "B O"], y: Float[Array, "B O"], loss: OutputLoss) -> Float[Array, "B O"]:
    """∂ℓ/∂ŷ per example: ŷ − y (MSE) or softmax(ŷ)·Σy − y (CE)."""
    if loss is OutputLoss.MSE:
        return y_hat - y
    return jax.nn.softmax(y_hat, axis=-1) * jnp.sum(y, axis=-1, keepdims=True) - y


def output_hessian(y_hat: Float[Array, "B O"], y: Float[Array, "B O"], loss: OutputLoss) -> Float[Array, "B O O"]:
    """∂²ℓ/∂ŷ² per example: I (MSE) or (Σy)·(diag p − p pᵀ), p = softmax(ŷ) (CE)."""
    if loss is OutputLoss.MSE:
        return jnp.broadcast_to(jnp.eye(y_hat.shape[-1], dtype=y_hat.dtype), y_hat.shape + y_hat.shape[-1:])
    p = jax.nn.softmax(y_hat, axis=-1)
    s = jnp.sum(y, axis=-1)[:, None, None]
    return s * (jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :])


def activity_grad(
    model: PCN, z: Float[Array, "L-1 B N"], x, y, spec: EnergySpec = EnergySpec(), mu_first=None
) -> Float[Array, "L-1 B N"]:
    r"""∂(Σ_i E_i)/∂z, shape (L−1, B, N): each example's own gradient (batch-size free).

    Written out (and tested against ``jax.grad``) so that each inference step is two batched
    matmuls and a few fused elementwise passes:

        ∂E/∂z_l = e_l − s·e_{l+1} − a φ'(z_l) ⊙ (W_{l+1}ᵀ e_{l+1})          l < L−1
        ∂E/∂z_{L−1} = e_{L−1} + λ a_L φ'(z_{L−1}) ⊙ (W_Lᵀ ∂ℓ/∂ŷ)
    """
    mu1 = model.predict_first(x) if mu_first is None else mu_first
    phi, dphi = jax.jvp(model.act, (z,), (jnp.ones_like(z),))  # φ and φ' in one pass
    e = z - jnp.concatenate([mu1[None], model.hidden_from_phi(z[:-1], phi[:-1])], axis=0)
    back = model.mult.hidden * dphi[:-1] * stacked_t(e[1:], model.w_hidden)
    if model.skips:
        back = back + e[1:]
    y_hat = model.output_from_phi(phi[-1])
    top = spec.precision * model.mult.output * dphi[-1] * jnp.matmul(output_grad(y_hat, y, spec.loss), model.w_out, precision=jax.lax.Precision.HIGHEST)
    return e - jnp.concatenate([back, -top[None]], axis=0)
