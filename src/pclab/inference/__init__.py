"""Inference solvers and ``infer``."""

from .infer import ExactSolver, check_batch, infer, initial_activities
from .newton import AbstractModelSolver, NewtonSolver
from .result import Solution
from .solvers import AbstractSolver, GradientDescent, ODESolver, OptaxSolver, heavy_ball

__all__ = [
    "AbstractSolver", "AbstractModelSolver", "GradientDescent", "OptaxSolver", "ODESolver", "ExactSolver",
    "NewtonSolver", "heavy_ball",
    "Solution", "infer", "initial_activities", "check_batch",
]
