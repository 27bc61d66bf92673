r"""``InferenceProblem``: what every inference solver minimises.

The total energy Σ_i E_i of a model over its free variables: the hidden activities z
(``supervised``: x and y clamped), or the pair (latent input, z) (``generative``: only y
clamped). Solvers see this object only, so every architecture and mode runs through the same
solvers and the same loop (:func:`pclab.infer`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from ..energy import EnergySpec, example_energies
from ..nn.base import AbstractPCN
from ..options import Mode


class AbstractProblem(eqx.Module):
    """The free variables of an inference problem: the activities z (supervised), or the pair
    (latent input, z) (generative, the latent starting at ``x``). Concrete problems add
    ``total_energy(free)`` and ``grad(free)``, and the fields ``x`` (input or initial latent),
    ``y`` (target, batch first) and ``mode`` (declared there, so that each keeps its own field
    order and positional construction)."""

    @property
    def supervised(self) -> bool:
        return self.mode is Mode.SUPERVISED

    @property
    def batch(self) -> int:
        return self.y.shape[0]

    def free(self, z):
        """The free variables starting from activities ``z``."""
        return z if self.supervised else (self.x, z)

    def split(self, free) -> tuple[Array | None, PyTree[Array]]:
        """(latent or ``None``, activities) of the free variables."""
        return (None, free) if self.supervised else free


class InferenceProblem(AbstractProblem):
    """min over the free variables of Σ_i E_i(model; x, y).

    Attributes:
        model: any :class:`AbstractPCN`. x: the input (supervised) or the initial latent
        (generative). y: the target, shape of ``model(x)``. spec: the output term. mode.
    """

    model: AbstractPCN
    x: PyTree[Array]
    y: Array
    spec: EnergySpec = eqx.field(static=True)
    mode: Mode = eqx.field(static=True)

    def total_energy(self, free) -> Array:
        """Σ_i E_i at the free variables (a scalar)."""
        latent, z = self.split(free)
        return jnp.sum(example_energies(self.model, z, self.x if latent is None else latent, self.y, self.spec))

    def grad(self, free):
        """∇ of :meth:`total_energy`: each example's own gradient (batch-size free)."""
        if self.supervised:
            return self.model.activity_grad(free, self.x, self.y, self.spec)
        return jax.grad(self.total_energy)(free)
