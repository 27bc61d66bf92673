r"""``infer``: minimise the energy over the free activities, one compiled loop for every solver."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..energy import EnergySpec
from ..options import ActivityInit, Mode, Status, parse_option
from .problem import InferenceProblem
from .result import Solution, all_finite, rms, step_status
from .solvers import AbstractSolver, GradientDescent
from .steps import fixed_steps


def check_batch(model, x, y) -> None:
    """Raise ``ValueError`` naming the argument if x or y do not fit ``model``."""
    model.check_batch(x, y)


def initial_activities(model, x, init: ActivityInit = ActivityInit.FEEDFORWARD):
    """Starting activities: the feedforward pass z_l = f_l(z_{l−1}) or zeros."""
    if parse_option(ActivityInit, init, "init") is ActivityInit.FEEDFORWARD:
        return model.activities(x)
    return model.zero_activities(x)


def infer(
    model,
    x,
    y,
    *,
    solver: AbstractSolver = GradientDescent(0.1),
    spec: EnergySpec = EnergySpec(),
    max_steps: int = 20,
    rtol: float = 0.0,
    atol: float = 0.0,
    z0=None,
    init: ActivityInit | str = ActivityInit.FEEDFORWARD,
    mode: Mode | str = Mode.SUPERVISED,
    record_energy: bool = False,
    throw: bool = True,
) -> Solution:
    r"""Minimise Σ_i E_i over the free activities of any :class:`pclab.nn.AbstractPCN`.

    Runs ``u ← u + Δu`` with Δu from ``solver`` (in the solver's coordinates: activities, or
    prediction errors for Gauss–Newton) inside one ``lax.while_loop`` until
    ``rms(Δu) ≤ atol + rtol·rms(u)`` (converged), ``max_steps`` steps (step cap), or a
    non-finite update (which raises if ``throw``; else ``status = NONFINITE``). With
    ``rtol = atol = 0`` (the default) it runs exactly ``max_steps`` steps and checks for
    non-finite values once, at the end (unrolled if the model asks for it:
    :attr:`AbstractPCN.unroll_inference`). A direct solver (``ExactSolver``) takes one step and
    reports ``CONVERGED``.

    Args:
        model: the PCN. x: its input, or in generative mode the initial latent.
        y: the target, of the shape of ``model(x)`` (one-hot for CE).
        z0: optional starting activities, the structure of ``model.activities(x)``.
        mode: ``supervised`` (x, y clamped) or ``generative`` (only y clamped; x is free).
        record_energy: keep the batch-mean energy before each step in ``energies``.
    Returns:
        A :class:`Solution`.
    """
    mode = parse_option(Mode, mode, "mode")
    model.check_batch(x, y)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is not valid; expected an integer >= 1")
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol={rtol!r}, atol={atol!r} are not valid; expected numbers >= 0")
    if not isinstance(solver, AbstractSolver):
        raise ValueError(f"solver={solver!r} is not valid; expected a pclab inference solver")
    problem = InferenceProblem(model, x, y, spec, mode)
    solver.check(problem)
    z = initial_activities(model, x, init) if z0 is None else z0
    model.check_activities(z, x)
    direct = solver.max_useful_steps is not None
    max_steps = min(max_steps, solver.max_useful_steps) if direct else max_steps
    free0 = problem.free(z)
    dtype = jax.tree_util.tree_leaves(free0)[-1].dtype
    fixed = direct or (rtol == 0 and atol == 0)  # run exactly max_steps, no per-step norms

    def cond(carry):
        step, _, _, _, status, _ = carry
        return (step < max_steps) & (status == int(Status.MAX_STEPS))

    def body(carry):
        step, u, state, last, status, trace = carry
        if record_energy:
            trace = trace.at[step].set(problem.total_energy(solver.free(problem, u)) / problem.batch)
        du, state = solver.step(problem, u, state)
        u = jax.tree_util.tree_map(jnp.add, u, du)
        if fixed:
            return step + 1, u, state, du, status, trace
        norm = rms(du)
        done = norm <= (atol + rtol * rms(u) if rtol > 0 else atol)
        # a non-finite entry makes the sum of squares, hence the norm, non-finite
        return step + 1, u, state, norm.astype(dtype), step_status(norm, done), trace

    u0, state0 = solver.init(problem, free0)
    trace0 = jnp.full((max_steps,), jnp.nan, dtype) if record_energy else None
    last0 = jax.tree_util.tree_map(jnp.zeros_like, u0) if fixed else jnp.asarray(jnp.inf, dtype)
    carry = (jnp.asarray(0, jnp.int32), u0, state0, last0, jnp.asarray(int(Status.MAX_STEPS), jnp.int32), trace0)
    if fixed and model.unroll_inference:  # for models whose layers are slow inside a rolled loop
        carry = fixed_steps(lambda c, _: (body(c), None), carry, max_steps, unroll=True)[0]
    else:
        carry = jax.lax.while_loop(cond, body, carry)
    steps, u, _, last, status, trace = carry
    free = solver.free(problem, u)
    if fixed:
        norm = rms(last).astype(dtype)
        ok = jnp.isfinite(norm) & all_finite(free)
        done = int(Status.CONVERGED) if direct else status
        status = jnp.where(ok, done, int(Status.NONFINITE)).astype(jnp.int32)
    else:
        norm = last
    latent, z = problem.split(free)
    return _maybe_throw(Solution(z, latent, status, steps, norm, trace), throw)


def _maybe_throw(sol: Solution, throw: bool) -> Solution:
    if not throw:
        return sol
    z = eqx.error_if(
        sol.z,
        sol.status == int(Status.NONFINITE),
        "inference diverged: the activities became non-finite; lower the activity step size "
        "(solver lr / dt) or the weight learning rate",
    )
    return eqx.tree_at(lambda s: s.z, sol, z)
