r"""Forward pass, loss and PC energy of a deep linear network given by its layer maps.

Conventions (uniform across :mod:`pclab.theory`): layer maps B_1..B_L, each (out, in); a
batch x (B, d_in), y (B, d_out); examples are rows, so layer l maps z ↦ z B_lᵀ. Energies and
losses are batch means of ½‖·‖², the output term weighted by the precision λ:

    L = 1/(2B) Σ_i ‖y_i − B_{L:1} x_i‖²,
    F(z) = 1/(2B) Σ_i [ Σ_{l=1}^{L−1} ‖z_il − B_l z_i,l−1‖² + λ ‖y_i − B_L z_i,L−1‖² ],

with z_i0 = x_i, the same as ``pclab.energy`` with ``EnergySpec(precision=λ)``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ._validate import as_maps, check_problem


def feedforward_activities(maps: Sequence[jax.Array], x: jax.Array) -> list[jax.Array]:
    """The feedforward pass ẑ_l = B_l ẑ_{l−1}, ẑ_0 = x, for l = 1..L.

    Returns a list of L arrays of shapes (B, n_1), …, (B, n_{L−1}), (B, d_out); the last is ŷ.
    """
    maps = as_maps(maps)
    x = jnp.asarray(x, maps[0].dtype)
    if x.ndim != 2 or x.shape[1] != maps[0].shape[1]:
        raise ValueError(f"x has shape {tuple(x.shape)} but maps[0] (B_1) has shape {tuple(maps[0].shape)}: "
                         f"expected (batch, {maps[0].shape[1]})")
    return _forward(maps, x)


@jax.jit
def _forward(maps, x):
    out, z = [], x
    for b in maps:
        z = z @ b.T
        out.append(z)
    return out


def end_to_end(maps: Sequence[jax.Array]) -> jax.Array:
    """The network's end-to-end map B_{L:1} = B_L ⋯ B_1, shape (d_out, d_in)."""
    maps = as_maps(maps)
    prod = maps[0]
    for b in maps[1:]:
        prod = b @ prod
    return prod


def linear_loss(maps: Sequence[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """The MSE loss L = 1/(2B) Σ_i ‖y_i − B_{L:1} x_i‖² (a scalar; no precision)."""
    maps, x, y = check_problem(maps, x, y)
    return _loss(maps, x, y)


@jax.jit
def _loss(maps, x, y):
    r = y - _forward(maps, x)[-1]
    return 0.5 * jnp.mean(jnp.sum(r**2, axis=-1))


def linear_energy(
    maps: Sequence[jax.Array], z: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0
) -> jax.Array:
    """The batch-mean PC energy F(z) of the module docstring at given hidden activities.

    Args:
        z: L−1 arrays z_1..z_{L−1}, shapes (B, n_l) (or one (L−1, B, N) array for equal widths).
    """
    maps, x, y = check_problem(maps, x, y, precision)
    z = [jnp.asarray(zl, x.dtype) for zl in z]
    if len(z) != len(maps) - 1:
        raise ValueError(f"z has {len(z)} layers; expected L−1 = {len(maps) - 1}")
    for l, (b, zl) in enumerate(zip(maps[:-1], z)):
        if zl.shape != (x.shape[0], b.shape[0]):
            raise ValueError(f"z[{l}] (z_{l + 1}) has shape {tuple(zl.shape)}; expected {(x.shape[0], b.shape[0])}")
    return _energy(maps, z, x, y, precision)


@jax.jit
def _energy(maps, z, x, y, precision):
    total, prev = 0.0, x
    for b, zl in zip(maps[:-1], z):
        total = total + jnp.sum((zl - prev @ b.T) ** 2, axis=-1)
        prev = zl
    total = total + precision * jnp.sum((y - prev @ maps[-1].T) ** 2, axis=-1)
    return 0.5 * jnp.mean(total)
