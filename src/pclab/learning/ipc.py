r"""Incremental predictive coding (iPC): the weights learn at every inference step.

Standard PC alternates an inner loop (T inference steps at fixed weights θ) and one weight
step. iPC (Salvatori et al., "A stable, fast, and fully automatic learning algorithm for
predictive coding networks", ICLR 2024; pcx's ``iPC`` benchmark) interleaves them: from the
feedforward pass z_0 it takes T joint steps, each an activity step *and* a weight step at the
same point (z_t, θ_t) of the batch-mean energy F = (1/B) Σ_i E_i:

    z_{t+1} = z_t + Δz_t,      Δz_t = solver step on Σ_i E_i(θ_t; z_t)     (e.g. −γ ∇_z Σ_i E_i)
    θ_{t+1} = θ_t + s · u_t,   u_t  = optimizer update of ∇_θ F(θ_t, z_t)

for t = 0..T−1 (T = the run's ``infer_steps``), so one batch makes T weight updates. The
activity step is the run's solver (gd, momentum, adam, ode; its state, e.g. momentum, carries
across the weight changes); the weight step is the run's optimizer (its state advances T
times per batch, as in pcx, where the weight optimiser steps at every inference step) scaled
by the rule's hyperparameter ``weight_step`` = s (``--algo-opt weight_step=0.25``), so that
one weight lr and a smaller per-step factor can be tried without changing the optimizer.
With s = 0 the weights never move and the activities are exactly PC inference
(:func:`pclab.infer` with the same solver and T fixed steps).

Shapes: activities as :meth:`AbstractPCN.activities` (leaves (K, B, ...)); the energy trace
is (T,). The loop is one ``lax.scan`` over the T steps (unrolled where the model asks for it,
:attr:`AbstractPCN.unroll_inference`), so ``update`` is jittable and vmappable over stacked
models, optimiser states and step sizes (the lr grid).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from ..energy import output_loss
from ..inference import GradientDescent, InferenceProblem, ODESolver, OptaxSolver
from ..inference.result import all_finite
from ..inference.steps import fixed_steps
from ..options import ActivityInit, Mode, Status, parse_option
from .rules import LEARNING_RULES, AbstractLearningRule, StepInfo, pc_energy_and_weight_grad

# Solvers that take one incremental step from the current activities: they can be interleaved
# with weight steps. Newton and the exact solve jump to an equilibrium of the *current* weights.
INTERLEAVABLE = {"gd": GradientDescent, "momentum": OptaxSolver, "adam": OptaxSolver, "ode": ODESolver}


class Trajectory(NamedTuple):
    """What :meth:`IPC.run` returns.

    Attributes:
        model: the weights after the T interleaved steps.
        opt_state: the optimiser state after them.
        z: the final activities z_T. latent: the free input (generative mode) or ``None``.
        energies: (T,) batch-mean energy F(θ_t, z_t) before each step.
        ff_loss: the feedforward loss of the batch before the first step.
    """

    model: object
    opt_state: object
    z: object
    latent: object
    energies: Array
    ff_loss: Array


def _scan_steps(model, x, y, spec, inference, mode, weight_fn: Callable, wstate):
    """T joint (activity, weight) steps; ``weight_fn(model, wstate, grad) -> (model, wstate)``."""
    mode = parse_option(Mode, mode, "mode")
    z0 = model.activities(x)
    ff_loss = jnp.mean(output_loss(model.output(z0), y, spec.loss))
    if parse_option(ActivityInit, inference.init, "init") is ActivityInit.ZEROS:
        z0 = jax.tree_util.tree_map(jnp.zeros_like, z0)
    solver = inference.solver
    problem = InferenceProblem(model, x, y, spec, mode)
    solver.check(problem)
    u0, s0 = solver.init(problem, problem.free(z0))
    params, static = eqx.partition(model, eqx.is_array)

    def body(carry, _):
        params, wstate, u, s = carry
        m = eqx.combine(params, static)
        prob = InferenceProblem(m, x, y, spec, mode)
        latent, z = prob.split(solver.free(prob, u))
        f, g = pc_energy_and_weight_grad(m, z, x if latent is None else latent, y, spec)
        du, s = solver.step(prob, u, s)
        u = jax.tree_util.tree_map(jnp.add, u, du)
        m, wstate = weight_fn(m, wstate, g)
        return (eqx.filter(m, eqx.is_array), wstate, u, s), f

    (params, wstate, u, _), energies = fixed_steps(
        body, (params, wstate, u0, s0), inference.max_steps, bool(model.unroll_inference))
    model = eqx.combine(params, static)
    latent, z = problem.split(solver.free(InferenceProblem(model, x, y, spec, mode), u))
    return model, wstate, z, latent, energies, ff_loss


class IPC(AbstractLearningRule):
    r"""Incremental PC (module docstring): T interleaved activity and weight steps per batch.

    Attributes:
        weight_step: s ≥ 0, the factor on the run optimizer's update at every inference step
            (1: the optimizer's own step; 0: weights frozen, i.e. plain PC inference).
    """

    weight_step: float = 1.0

    def __check_init__(self):
        s = self.weight_step  # a Python number is checked; an array (a vmapped grid) passes
        if not eqx.is_array(s) and (isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s < float("inf")):
            raise ValueError(f"weight_step={s!r} is not valid; expected a finite number >= 0")

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        if solver is not None and not isinstance(solver, tuple(INTERLEAVABLE.values())):
            raise ValueError(
                f"algo='ipc' interleaves one activity step with one weight step, so it needs a step-by-step "
                f"solver; got {type(solver).__name__}. Valid: solver={', '.join(map(repr, INTERLEAVABLE))} "
                "(not 'newton' or 'exact', which jump to the equilibrium of fixed weights)")

    def run(self, model, opt_state, x, y, optimizer: optax.GradientTransformation, spec, inference,
            mode=Mode.SUPERVISED) -> Trajectory:
        """The T interleaved steps on one batch, with the activities and the energy trace."""

        def weight_fn(m, state, g):
            updates, state = optimizer.update(g, state, eqx.filter(m, eqx.is_array))
            updates = jax.tree_util.tree_map(lambda v: self.weight_step * v, updates)
            return eqx.apply_updates(m, updates), state

        return Trajectory(*_scan_steps(model, x, y, spec, inference, mode, weight_fn, opt_state))

    def update(self, model, opt_state, x, y, optimizer, spec, inference, mode=Mode.SUPERVISED):
        t = self.run(model, opt_state, x, y, optimizer, spec, inference, mode)
        ok = all_finite((eqx.filter(t.model, eqx.is_array), t.z)) & jnp.isfinite(t.energies[-1])
        status = jnp.where(ok, int(Status.MAX_STEPS), int(Status.NONFINITE)).astype(jnp.int32)
        steps = jnp.asarray(inference.max_steps, jnp.int32)
        return t.model, t.opt_state, StepInfo(t.ff_loss, t.energies[-1], steps, status)

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        r"""The small-weight-step direction of iPC: (1/T) Σ_t ∇_θ F(θ, z_t) along the T inference
        steps at fixed weights θ (the iPC update is −lr·T times it to first order in the
        weight step under SGD). Used for diagnostics (e.g. the PC/BP gradient cosine);
        training goes through :meth:`update`."""
        n = inference.max_steps

        def accumulate(m, acc, g):
            return m, jax.tree_util.tree_map(lambda a, b: a + b / n, acc, g)

        zeros = jax.tree_util.tree_map(jnp.zeros_like, eqx.filter(model, eqx.is_array))
        _, acc, z, _, energies, ff_loss = _scan_steps(model, x, y, spec, inference, mode, accumulate, zeros)
        ok = all_finite(z) & jnp.isfinite(energies[-1])
        status = jnp.where(ok, int(Status.MAX_STEPS), int(Status.NONFINITE)).astype(jnp.int32)
        return acc, StepInfo(ff_loss, energies[-1], jnp.asarray(n, jnp.int32), status)


LEARNING_RULES.register("ipc", IPC())
