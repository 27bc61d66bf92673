"""Inference solvers by name (``--solver NAME``): how to build each from a step size.

Register a new one with ``SOLVERS.register("name", SolverEntry(build, "description"))``; the
CLI, the config, the sweep and the cost model then know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import optax

from ..registry import Registry
from .exact import ExactSolver
from .newton import NewtonSolver
from .solvers import AbstractSolver, GradientDescent, ODESolver, OptaxSolver, heavy_ball


@dataclass(frozen=True)
class SolverEntry:
    """``build(step_size)`` → a solver; ``has_step_size``: whether ``--activity-lr`` matters."""

    build: Callable[[float], AbstractSolver]
    description: str
    has_step_size: bool = True


SOLVERS: Registry[SolverEntry] = Registry("solver")
SOLVERS.register("gd", SolverEntry(GradientDescent, "Euler steps of gradient descent"))
SOLVERS.register("momentum", SolverEntry(heavy_ball, "heavy-ball GD (Optax SGD, momentum 0.9)"))
SOLVERS.register("adam", SolverEntry(lambda lr: OptaxSolver(optax.adam(lr)), "Adam on the activities (Optax)"))
SOLVERS.register("ode", SolverEntry(ODESolver, "Heun steps of the gradient-flow ODE (Diffrax)"))
SOLVERS.register("newton", SolverEntry(lambda lr: NewtonSolver(), "Gauss–Newton in the prediction errors", False))
SOLVERS.register("exact", SolverEntry(lambda lr: ExactSolver(), "exact solve (linear nets, MSE)", False))


def make_solver(name: str, lr) -> AbstractSolver:
    """The solver registered as ``name`` with step size ``lr`` (a number, or an array under vmap)."""
    return SOLVERS.get(name).build(lr)


def has_step_size(name: str) -> bool:
    """Whether ``--activity-lr`` sets this solver's step (Newton and exact have none)."""
    return SOLVERS.get(name).has_step_size
