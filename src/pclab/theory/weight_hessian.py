r"""Gradients and dense Hessians of F* and of the MSE loss w.r.t. all weights of a plain chain.

A plain deep linear chain has layer maps equal to its weights, B_l = W_l (shapes (out, in)).
Parameters are flattened layer by layer, each row-major: θ = (vec W_1, …, vec W_L) with
vec W[o, i] at index o·in + i, so P = Σ_l out_l·in_l. The two objectives are

    F*(θ) = 1/(2B) Σ_i r_iᵀ S⁻¹ r_i   (equilibrated PC energy, precision λ),
    L(θ)  = 1/(2B) Σ_i ‖r_i‖²,         r_i = y_i − W_{L:1} x_i,

and their derivatives are taken by JAX autodiff of the closed forms (``jax.hessian`` =
forward-over-reverse), returning (P,) gradients and (P, P) Hessians.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import as_maps, check_problem
from .equilibrium import equilibrated_energy
from .linear import linear_loss


def flatten_weights(weights: Sequence[jax.Array]) -> jax.Array:
    """θ = concat(vec W_1, …, vec W_L), row-major per layer, shape (P,)."""
    weights = as_maps(weights, "weights")
    return jnp.concatenate([w.reshape(-1) for w in weights])


def unflatten_weights(theta: jax.Array, shapes: Sequence[tuple[int, int]]) -> list[jax.Array]:
    """Inverse of :func:`flatten_weights`: split θ (P,) into arrays of the given (out, in) shapes."""
    sizes = [int(np.prod(s)) for s in shapes]
    if theta.ndim != 1 or theta.shape[0] != sum(sizes):
        raise ValueError(f"theta has shape {tuple(theta.shape)}; expected ({sum(sizes)},) for shapes {list(shapes)}")
    ends = np.cumsum(sizes)
    return [theta[e - n:e].reshape(s) for e, n, s in zip(ends, sizes, shapes)]


def layer_slices(weights: Sequence[jax.Array]) -> list[slice]:
    """Index range of each layer's weights inside θ."""
    ends = np.cumsum([int(np.prod(w.shape)) for w in weights])
    return [slice(int(e - w.size), int(e)) for e, w in zip(ends, weights)]


@jax.jit
def _derivatives(weights, x, y, precision):
    """{'energy': (F*, ∇F*, ∇²F*), 'loss': (L, ∇L, ∇²L)} at once: one compilation per shape
    serves every public function below."""
    shapes = [tuple(w.shape) for w in weights]
    theta = jnp.concatenate([w.reshape(-1) for w in weights])
    out = {}
    for name, fn in (("energy", lambda w: equilibrated_energy(w, x, y, precision)),
                     ("loss", lambda w: linear_loss(w, x, y))):
        f = lambda th, fn=fn: fn(unflatten_weights(th, shapes))  # noqa: E731
        value, grad = jax.value_and_grad(f)(theta)
        h = jax.hessian(f)(theta)
        out[name] = (value, grad, 0.5 * (h + h.T))
    return out


def derivatives(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array, objective: str = "energy",
                precision=1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(value, ∇_θ f (P,), ∇²_θ f (P, P)) of ``objective`` 'energy' (F*, precision λ) or 'loss' (L)."""
    if objective not in ("energy", "loss"):
        raise ValueError(f"objective={objective!r} is not valid; expected 'energy' or 'loss'")
    weights, x, y = check_problem(weights, x, y, precision)
    return _derivatives(weights, x, y, precision)[objective]


def energy_gradient(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0) -> jax.Array:
    """∇_θ F*, shape (P,)."""
    return derivatives(weights, x, y, "energy", precision)[1]


def loss_gradient(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """∇_θ L, shape (P,)."""
    return derivatives(weights, x, y, "loss")[1]


def energy_hessian(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0) -> jax.Array:
    """∇²_θ F*, shape (P, P), symmetric. ``weights``: W_1..W_L (out, in); x (B, d_in); y (B, d_out)."""
    return derivatives(weights, x, y, "energy", precision)[2]


def loss_hessian(weights: Sequence[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """∇²_θ L of the MSE loss, shape (P, P), symmetric."""
    return derivatives(weights, x, y, "loss")[2]
