r"""Error-reparameterised PC (ePC): inference over the prediction errors, not the activities.

Every activity configuration is the feedforward pass with errors δ_l injected at each layer,
z = Z(δ) (:meth:`AbstractPCN.activities` with ``inject=δ``, a bijection whose prediction errors
are exactly δ). In these coordinates the energy of one example is

    E(δ) = ½ Σ_{l=1}^{L−1} ‖δ_l‖² + λ · ℓ(y, f_L(Z(δ)_{L−1})),

the same function as PC's E(z) at z = Z(δ), so the two have the same minimum value and the
same minimiser. Its gradient ∇_δ E = δ + λ Jᵀ ∂ℓ/∂ŷ (J = ∂ŷ/∂δ) is one backward pass
through the feedforward pass: every layer feels the output error from the first step, however
deep the net, where GD on the activities needs one step per layer to carry it down (the ePC
authors' "exponential signal decay"; ``pclab reproduce mupc-reach``). ePC here runs the
run's activity solver (gd, momentum, adam, ode) on δ instead of z through
:class:`ErrorSolver`, starting from δ = 0 (the feedforward pass; or the errors of the zero
activities with ``init='zeros'``); ``newton`` is already a Gauss–Newton step in these very
coordinates (:mod:`pclab.inference.newton`) and ``exact`` the coordinate-free equilibrium,
so both pass through unchanged (ePC with them is the same computation as PC with them).

Learning is as in PC: ∇_θ F(θ, z) at the final activities z = Z(δ_T) held fixed (batch-mean
energy, :func:`pclab.pc_weight_grad`), then one optimiser step. Activity step sizes and the
number of steps are the run's ``InferenceConfig`` (``--activity-lr``, ``--infer-steps``).
Shapes: δ has the structure of the activities (leaves (K, B, ...)). Supervised mode only.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from ..energy import EnergySpec, hidden_errors, output_loss
from ..inference import (
    AbstractSolver,
    ExactSolver,
    GradientDescent,
    NewtonSolver,
    ODESolver,
    OptaxSolver,
)
from ..nn.base import batch_sum_squares
from ..options import Mode, parse_option
from .rules import LEARNING_RULES, PC, AbstractLearningRule

WRAPPED = {"gd": GradientDescent, "momentum": OptaxSolver, "adam": OptaxSolver, "ode": ODESolver}
PASSED = {"newton": NewtonSolver, "exact": ExactSolver}


class ErrorProblem(eqx.Module):
    """Σ_i E_i(δ) of a model in error coordinates (module docstring), with the two methods a
    gradient solver uses: :meth:`total_energy` and :meth:`grad` (each example's own gradient)."""

    model: object
    x: object
    y: jax.Array
    spec: EnergySpec = eqx.field(static=True)

    @property
    def batch(self) -> int:
        return self.y.shape[0]

    @property
    def supervised(self) -> bool:
        return True

    def total_energy(self, delta) -> jax.Array:
        y_hat = self.model.output(self.model.activities(self.x, delta))
        out = self.spec.precision * output_loss(y_hat, self.y, self.spec.loss)
        return jnp.sum(0.5 * batch_sum_squares(delta) + out)

    def grad(self, delta):
        return jax.grad(self.total_energy)(delta)


class ErrorSolver(AbstractSolver):
    """Run a gradient solver (``inner``: GD, an Optax transformation, an ODE step) on the
    prediction errors δ: u = δ, ``free(u)`` = Z(δ). The energies that :func:`pclab.infer`
    records are those of the activities Z(δ), comparable with PC's."""

    inner: AbstractSolver

    def check(self, problem):
        if not problem.supervised:
            raise ValueError("ePC (ErrorSolver) supports mode='supervised' only")

    def _errors(self, problem) -> ErrorProblem:
        return ErrorProblem(problem.model, problem.x, problem.y, problem.spec)

    def init(self, problem, free):
        return self.inner.init(self._errors(problem), hidden_errors(problem.model, free, problem.x))

    def step(self, problem, u, state):
        return self.inner.step(self._errors(problem), u, state)

    def free(self, problem, u):
        return problem.model.activities(problem.x, u)

    def passes(self, n_outputs):
        return self.inner.passes(n_outputs) + 1.0  # the injected forward pass


def error_solver(solver: AbstractSolver) -> AbstractSolver:
    """The solver ePC runs for the run's ``solver``: a gradient solver wrapped in
    :class:`ErrorSolver`; Newton and exact unchanged. ``ValueError`` naming the valid ones."""
    if isinstance(solver, (ErrorSolver, *PASSED.values())):
        return solver
    if isinstance(solver, tuple(WRAPPED.values())):
        return ErrorSolver(solver)
    raise ValueError(f"algo='epc' cannot run solver {type(solver).__name__}; valid: solver="
                     f"{', '.join(map(repr, WRAPPED))} (run on the errors δ) or "
                     f"{', '.join(map(repr, PASSED))} (already error-coordinate / exact)")


class EPC(AbstractLearningRule):
    r"""Error-reparameterised PC (module docstring): the run's solver on δ, then ∇_θ F at Z(δ)."""

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        if parse_option(Mode, mode, "mode") is not Mode.SUPERVISED:
            raise ValueError("algo='epc' needs mode='supervised' (it reparameterises the errors "
                             "between a clamped input and a clamped target)")
        if solver is not None:
            error_solver(solver)

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        self.validate(solver=inference.solver, mode=mode)
        inference = dataclasses.replace(inference, solver=error_solver(inference.solver))
        return PC().grads(model, x, y, spec, inference, mode)


LEARNING_RULES.register("epc", EPC())


def step_size_warning(model, step_size: float) -> str | None:
    """A warning when ePC's activity step η is large for the depth: one GD step from δ = 0
    moves the output by about η·Σ_l J_l J_lᵀ ∂ℓ/∂ŷ, a sum over the L layer maps, so η must
    shrink like 1/L (0.5/L trains; docs/results.md). Warns when η·L > 2, else ``None``."""
    n_layers = len(model.layers(eqx.filter(model, eqx.is_array)))
    if step_size * n_layers <= 2.0:
        return None
    return (f"--algo epc with activity_lr={step_size:g} on {n_layers} layer maps: the step should shrink "
            f"like 1/L and {step_size:g} x {n_layers} > 2 usually blows up the energy; try "
            f"--activity-lr {0.5 / n_layers:.3g} (0.5/L)")
