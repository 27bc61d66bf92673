r"""Augmented-Lagrangian predictive coding (PC-ALM; "Augmented Lagrangian Predictive Coding",
arXiv 2605.31022, 2026), as formulated here.

Backprop is the constrained problem min ℓ(y, f_L(z_{L−1})) s.t. z_l = f_l(z_{l−1}) for every
layer. PC relaxes the constraints into a quadratic penalty; PC-ALM adds a Lagrange multiplier
μ_l per layer and example (the shape of z_l) and descends, per example,

    L_i(z, μ) = λ ℓ(y, f_L(z_{L−1})) + Σ_{l=1}^{L−1} [ μ_l · e_l + (ρ/2) ‖e_l‖² ],
    e_l = z_l − f_l(z_{l−1}),  z_0 = x (or the free latent in generative mode)

by alternating, at each of the T inference steps (one ``lax.scan``), a primal step of the
run's gradient solver on Σ_i L_i over the free activities and a dual ascent step

    z ← z + solver step on Σ_i L_i(z, μ)         (GD: z ← z − γ ∇_z Σ_i L_i)
    μ_l ← μ_l + β e_l(z)                          (at the new z)

from the feedforward pass (e = 0) and μ = 0. The weight gradient is ∇_θ (1/B) Σ_i L_i at the
final (z, μ). Hyperparameters: ``rho`` = ρ > 0 and ``dual_lr`` = β ≥ 0 (the method of
multipliers takes β = ρ, the default).

Why it helps: at a KKT point (e = 0, ∇_z L = 0) the multipliers are μ_l = −δ_l with δ_l = λ∂ℓ/∂z_l
the backprop adjoint, and ∇_θ L = Σ_l δ_l·∂f_l/∂θ is exactly the BP gradient, whereas the PC
equilibrium gives a rescaled loss (a different gradient) at finite precision.

Limits (tested): ρ = 1, μ = 0 makes L the PC energy, so the first primal step is PC's; with
β = 0 the multipliers stay 0 and L = ρ·[½Σ‖e‖² + (λ/ρ)ℓ], so T ALM steps with step γ equal T PC
steps with step ργ at output precision λ/ρ, and ∇_θ L = ρ·∇_θ F at those activities.
Works with every model (only the PCN interface is used) and with gradient solvers only.
Shapes: z and μ have the structure of ``model.activities(x)``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ..energy import EnergySpec, hidden_errors, output_loss
from ..nn.base import AbstractPCN, batch_sum_squares
from ..options import ActivityInit, Mode, parse_option
from ..inference.problem import AbstractProblem
from .gradient_inference import add, check_gradient_solver, descend, per_example_dot
from .rules import LEARNING_RULES, AbstractLearningRule, StepInfo


def lagrangian_terms(model: AbstractPCN, z, x, y, mu, rho, spec: EnergySpec = EnergySpec()) -> Float[Array, " B"]:
    """Per-example augmented Lagrangian L_i(z, μ) (module docstring)."""
    e = hidden_errors(model, z, x)
    out = spec.precision * output_loss(model.output(z), y, spec.loss)
    return out + per_example_dot(mu, e) + 0.5 * rho * batch_sum_squares(e)


def lagrangian(model: AbstractPCN, z, x, y, mu, rho, spec: EnergySpec = EnergySpec()) -> Float[Array, ""]:
    """The batch-mean augmented Lagrangian (1/B) Σ_i L_i; its weight gradient is ALM's."""
    return jnp.mean(lagrangian_terms(model, z, x, y, mu, rho, spec))


class ALMProblem(AbstractProblem):
    """The primal problem at fixed multipliers μ: min Σ_i L_i over z (or (latent, z))."""

    model: AbstractPCN
    x: PyTree[Array]
    y: Array
    mu: PyTree[Array]
    rho: Array | float
    spec: EnergySpec = eqx.field(static=True)
    mode: Mode = eqx.field(static=True)

    def total_energy(self, free):
        latent, z = self.split(free)
        x = self.x if latent is None else latent
        return jnp.sum(lagrangian_terms(self.model, z, x, self.y, self.mu, self.rho, self.spec))

    def grad(self, free):
        return jax.grad(self.total_energy)(free)


class ALM(AbstractLearningRule):
    r"""PC-ALM (module docstring): primal descent on z and dual ascent on μ, alternating.

    Attributes:
        rho: the penalty ρ > 0 (1 with ``dual_lr=0``: PC).
        dual_lr: the dual step β ≥ 0 (``None``: β = ρ).
    """

    rho: float = 1.0
    dual_lr: float | None = None

    def __check_init__(self):
        r, b = self.rho, self.dual_lr
        if not eqx.is_array(r) and (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < float("inf")):
            raise ValueError(f"rho={r!r} is not valid; expected a finite number > 0")
        if b is not None and not eqx.is_array(b) and (
                isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < float("inf")):
            raise ValueError(f"dual_lr={b!r} is not valid; expected a finite number >= 0 (or None for rho)")

    @property
    def beta(self):
        return self.rho if self.dual_lr is None else self.dual_lr

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        parse_option(Mode, mode, "mode")
        check_gradient_solver("alm", solver, "takes primal steps on its augmented Lagrangian")

    def infer(self, model, x, y, spec, inference, mode=Mode.SUPERVISED, record_energy=False, z0=None):
        """The T primal–dual steps: (latent or None, z, μ, :class:`Descent`). The recorded
        energy is the batch-mean Lagrangian before each step."""
        mode = parse_option(Mode, mode, "mode")
        self.validate(solver=inference.solver, mode=mode)
        model.check_batch(x, y)
        solver = inference.solver
        if z0 is None:
            z0 = model.activities(x)
        if parse_option(ActivityInit, inference.init, "init") is ActivityInit.ZEROS:
            z0 = jax.tree_util.tree_map(jnp.zeros_like, z0)
        mu0 = jax.tree_util.tree_map(jnp.zeros_like, z0)
        problem = lambda mu: ALMProblem(model, x, y, mu, self.rho, spec, mode)  # noqa: E731
        u0, s0 = solver.init(problem(mu0), problem(mu0).free(z0))
        beta = self.beta

        def step(c):
            u, s, mu = c
            prob = problem(mu)
            du, s = solver.step(prob, u, s)
            u = add(u, du)
            latent, z = prob.split(solver.free(prob, u))
            dmu = jax.tree_util.tree_map(lambda e: beta * e, hidden_errors(model, z, x if latent is None else latent))
            return (u, s, add(mu, dmu)), (du, dmu)

        def energy(c):
            prob = problem(c[2])
            return prob.total_energy(solver.free(prob, c[0])) / prob.batch

        run = descend(step, (u0, s0, mu0), max_steps=inference.max_steps, rtol=inference.rtol, atol=inference.atol,
                      free=lambda c: (c[0], c[2]), energy=energy if record_energy else None,
                      unroll=model.unroll_inference)
        u, _, mu = run.carry
        latent, z = problem(mu).split(solver.free(problem(mu), u))
        return latent, z, mu, run

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        z0 = model.activities(x)
        ff_loss = jnp.mean(output_loss(model.output(z0), y, spec.loss))
        latent, z, mu, run = self.infer(model, x, y, spec, inference, mode, z0=z0)
        z, mu = jax.lax.stop_gradient((z, mu))
        x_used = x if latent is None else jax.lax.stop_gradient(latent)
        f, grads = eqx.filter_value_and_grad(lambda m: lagrangian(m, z, x_used, y, mu, self.rho, spec))(model)
        return grads, StepInfo(ff_loss, f, run.steps, run.status)


LEARNING_RULES.register("alm", ALM())
