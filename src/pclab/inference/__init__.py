"""Inference: one loop (:func:`infer`) and its solvers, on an :class:`InferenceProblem`."""

from .exact import ExactSolver
from .infer import check_batch, infer, initial_activities
from .newton import NewtonSolver, gauss_newton_errors
from .problem import AbstractProblem, InferenceProblem
from .registry import SOLVERS, SolverEntry, has_step_size, make_solver
from .result import Solution
from .solvers import AbstractSolver, GradientDescent, ODESolver, OptaxSolver, heavy_ball

__all__ = [
    "AbstractSolver", "GradientDescent", "OptaxSolver", "ODESolver", "ExactSolver", "NewtonSolver", "heavy_ball",
    "AbstractProblem", "InferenceProblem", "Solution", "infer", "initial_activities", "check_batch", "gauss_newton_errors",
    "SOLVERS", "SolverEntry", "make_solver", "has_step_size",
]
