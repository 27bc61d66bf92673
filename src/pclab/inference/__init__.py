"""Inference solvers and ``infer``."""

from .infer import ExactSolver, check_batch, infer, initial_activities
from .result import Solution
from .solvers import AbstractSolver, GradientDescent, ODESolver, OptaxSolver

__all__ = [
    "AbstractSolver", "GradientDescent", "OptaxSolver", "ODESolver", "ExactSolver",
    "Solution", "infer", "initial_activities", "check_batch",
]
