"""The result of an inference run."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from ..options import Status


class Solution(eqx.Module):
    """What :func:`pclab.infer` returns.

    Attributes:
        z: equilibrium hidden activities, the structure of ``model.activities(x)``
            (e.g. (L−1, B, N) for a dense PCN).
        latent: the free input activity (B, D) in generative mode, else ``None``.
        status: int32 scalar, a :class:`pclab.Status` (0 converged, 1 step cap, 2 non-finite).
        steps: int32 scalar, the number of solver steps taken.
        update_norm: RMS of the last update Δz.
        energies: (max_steps,) batch-mean energy before each step (NaN after the last step),
            or ``None`` unless ``record_energy=True``.
    """

    z: PyTree[Array]
    latent: PyTree[Array] | None
    status: Int[Array, ""]
    steps: Int[Array, ""]
    update_norm: Float[Array, ""]
    energies: Float[Array, " T"] | None = None

    @property
    def converged(self):
        return self.status == int(Status.CONVERGED)


def step_status(norm, done):
    """Status after a step whose update has RMS ``norm``: non-finite, converged (``done``) or
    still running (step cap), as an int32 scalar."""
    return jnp.where(~jnp.isfinite(norm), int(Status.NONFINITE),
                     jnp.where(done, int(Status.CONVERGED), int(Status.MAX_STEPS))).astype(jnp.int32)


def rms(tree) -> Array:
    """Root mean square over all entries of an array or pytree of arrays."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(t)) for t in leaves) / sum(t.size for t in leaves))


def all_finite(tree) -> Array:
    """Whether every entry of a pytree of arrays is finite (a boolean scalar)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(t)) for t in jax.tree_util.tree_leaves(tree)]))
