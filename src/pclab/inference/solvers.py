r"""Inference solvers: one interface for every way of descending the energy.

A solver works in its own coordinates u (the activities themselves for gradient methods, the
prediction errors for Gauss–Newton) on an :class:`InferenceProblem`::

    u, state = solver.init(problem, free)      # free: the starting free variables
    du, state = solver.step(problem, u, state)  # infer() applies u ← u + du
    free = solver.free(problem, u)              # back to the free variables

:func:`pclab.infer` runs every solver in the same compiled loop and stops on the size of
du. Each solver class declares ``name`` (its CLI name), ``step_size`` (the field that
``--activity-lr`` sets, or ``None``) and ``passes`` (its cost per step in layer passes, for
the cost model).
"""

from __future__ import annotations

from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .problem import InferenceProblem


def _check_positive(name, value, what):
    """Python numbers must be > 0; arrays (e.g. a vmapped grid of step sizes) pass through."""
    if isinstance(value, (int, float)) and not value > 0:
        raise ValueError(f"{name}={value!r} is not valid; expected a number > 0 ({what})")


def _tree_scale(a, tree):
    return jax.tree_util.tree_map(lambda t: a * t, tree)


class AbstractSolver(eqx.Module):
    """Base class of inference solvers (see module docstring)."""

    step_size: ClassVar[str | None] = "lr"
    max_useful_steps: ClassVar[int | None] = None  # e.g. 1 for a direct solve

    def check(self, problem: InferenceProblem) -> None:
        """Raise ``ValueError`` if the solver cannot run ``problem`` (at trace time)."""

    def init(self, problem: InferenceProblem, free) -> tuple[Any, Any]:
        return free, None

    def step(self, problem: InferenceProblem, u, state) -> tuple[Any, Any]:  # pragma: no cover
        raise NotImplementedError

    def free(self, problem: InferenceProblem, u):
        return u

    def passes(self, n_outputs: int) -> float:
        """Layer passes per inference step (a forward and a transposed pass = 2)."""
        return 2.0


class GradientDescent(AbstractSolver):
    r"""Euler step of the gradient flow dz/dt = −∇_z E: ``Δz = −lr · ∇_z E``."""

    lr: float = 0.1

    def __check_init__(self):
        _check_positive("lr", self.lr, "activity step size")

    def step(self, problem, u, state):
        return _tree_scale(-self.lr, problem.grad(u)), state


class OptaxSolver(AbstractSolver):
    """Any Optax transformation applied to the activity gradient, e.g. ``optax.sgd(0.1, 0.9)``."""

    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def init(self, problem, free):
        return free, self.optimizer.init(free)

    def step(self, problem, u, state):
        return self.optimizer.update(problem.grad(u), state, u)


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

    step_size: ClassVar[str | None] = "dt"

    dt: float = 0.1
    solver: diffrax.AbstractSolver = diffrax.Heun()

    def __check_init__(self):
        _check_positive("dt", self.dt, "ODE step size")

    def step(self, problem, u, state):
        term = diffrax.ODETerm(lambda t, z, args: _tree_scale(-1.0, problem.grad(z)))
        solver_state = self.solver.init(term, 0.0, self.dt, u, None)
        u1, _, _, _, _ = self.solver.step(term, 0.0, self.dt, u, None, solver_state, made_jump=True)
        return jax.tree_util.tree_map(jnp.subtract, u1, u), state

    def passes(self, n_outputs):
        tableau = getattr(self.solver, "tableau", None)
        return 2.0 * (1 + len(tableau.c)) if tableau is not None else 4.0  # 2 per stage
