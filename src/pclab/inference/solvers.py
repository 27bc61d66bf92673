r"""Inference solvers: one interface for every way of descending the energy in the activities.

A solver sees the activities ``z`` (any pytree) and a function ``grad_fn(z) = ∇_z E`` and
proposes an update Δz; :func:`pclab.infer` applies ``z ← z + Δz`` in one compiled loop and
stops on the size of Δz. Interface::

    state = solver.init(z)
    dz, state = solver.step(grad_fn, z, state)
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax

GradFn = Callable[[Any], Any]


def _check_positive(name, value, what):
    """Python numbers must be > 0; arrays (e.g. a vmapped grid of step sizes) pass through."""
    if isinstance(value, (int, float)) and not value > 0:
        raise ValueError(f"{name}={value!r} is not valid; expected a number > 0 ({what})")


def _tree_scale(a, tree):
    return jax.tree_util.tree_map(lambda t: a * t, tree)


class AbstractSolver(eqx.Module):
    """Base class of inference solvers (see module docstring)."""

    @abc.abstractmethod
    def init(self, z) -> Any: ...

    @abc.abstractmethod
    def step(self, grad_fn: GradFn, z, state) -> tuple[Any, Any]: ...


class GradientDescent(AbstractSolver):
    r"""Euler step of the gradient flow dz/dt = −∇_z E: ``Δz = −lr · ∇_z E``."""

    lr: float = 0.1

    def __check_init__(self):
        _check_positive("lr", self.lr, "activity step size")

    def init(self, z):
        return None

    def step(self, grad_fn, z, state):
        return _tree_scale(-self.lr, grad_fn(z)), state


class OptaxSolver(AbstractSolver):
    """Any Optax transformation applied to the activity gradient, e.g. ``optax.sgd(0.1, 0.9)``."""

    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def init(self, z):
        return self.optimizer.init(z)

    def step(self, grad_fn, z, state):
        updates, state = self.optimizer.update(grad_fn(z), state, z)
        return updates, state


def heavy_ball(lr, momentum: float = 0.9) -> OptaxSolver:
    """Heavy-ball GD on the activities, Δz ← momentum·Δz − lr·∇E: converges in ~√κ steps where
    plain GD needs ~κ (κ the activity Hessian's condition number); stable for
    lr·λ_max(H_z) < 2(1 + momentum). ``lr`` may be a traced array (vmapped grids)."""
    return OptaxSolver(optax.sgd(lr, momentum=momentum))


class ODESolver(AbstractSolver):
    r"""One step of size ``dt`` of a Diffrax Runge–Kutta solver on dz/dt = −∇_z E.

    ``solver`` is any explicit Diffrax solver (``diffrax.Heun()``, ``diffrax.Tsit5()``...).
    Each step costs as many gradient evaluations as the solver has stages.
    """

    dt: float = 0.1
    solver: diffrax.AbstractSolver = diffrax.Heun()

    def __check_init__(self):
        _check_positive("dt", self.dt, "ODE step size")

    def _term(self, grad_fn):
        return diffrax.ODETerm(lambda t, z, args: _tree_scale(-1.0, grad_fn(z)))

    def init(self, z):
        # A dummy term with the right structure: Runge–Kutta solvers keep no data-dependent state
        # except for FSAL solvers, whose first stage is recomputed (made_jump=True) each step.
        return None

    def step(self, grad_fn, z, state):
        term = self._term(grad_fn)
        solver_state = self.solver.init(term, 0.0, self.dt, z, None)
        z1, _, _, _, _ = self.solver.step(term, 0.0, self.dt, z, None, solver_state, made_jump=True)
        return jax.tree_util.tree_map(jnp.subtract, z1, z), state
