r"""``infer``: minimise the energy over the free activities in one compiled loop."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..energy import EnergySpec, activity_grad, example_energies
from ..nn.pcn import PCN
from ..options import ActivityInit, Mode, Status, parse_option
from .exact import exact_activities
from .newton import AbstractModelSolver
from .result import Solution, rms, step_status
from .solvers import AbstractSolver, GradientDescent


class ExactSolver(AbstractModelSolver):
    """Exact equilibrium of a linear PCN with MSE output (block-tridiagonal solve, one 'step')."""

    def solve(self, model, x, y, spec, z0, max_steps, rtol, atol, record_energy=False) -> Solution:
        z_star = exact_activities(model, x, y, spec)
        status = jnp.where(_all_finite(z_star), int(Status.CONVERGED), int(Status.NONFINITE)).astype(jnp.int32)
        return Solution(z_star, None, status, jnp.asarray(1, jnp.int32), jnp.asarray(0.0, z_star.dtype))


def _all_finite(tree) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(t)) for t in jax.tree_util.tree_leaves(tree)]))


def check_batch(model: PCN, x, y) -> None:
    """Raise ``ValueError`` naming the argument if x or y do not fit ``model``."""
    for name, arr, dim in (("x", x, model.d_in), ("y", y, model.d_out)):
        if not hasattr(arr, "shape") or arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-d array (batch, features); got shape {getattr(arr, 'shape', None)}")
        if arr.shape[1] != dim:
            what = "input dim d_in" if name == "x" else "output dim d_out"
            raise ValueError(f"{name} has {arr.shape[1]} features; the model's {what} is {dim}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y have different batch sizes: {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < 1:
        raise ValueError("x and y are empty: batch size must be >= 1")
    for name, arr in (("x", x), ("y", y)):
        if not isinstance(arr, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(arr))):
            raise ValueError(f"{name} contains NaN or inf values; expected finite numbers")


def initial_activities(model: PCN, x, init: ActivityInit = ActivityInit.FEEDFORWARD) -> Float[Array, "L-1 B N"]:
    """Starting activities: the feedforward pass z_l = f_l(z_{l−1}) or zeros."""
    if parse_option(ActivityInit, init, "init") is ActivityInit.FEEDFORWARD:
        return model.activities(x)
    return jnp.zeros((model.depth - 1, x.shape[0], model.width), x.dtype)


def infer(
    model: PCN,
    x: Float[Array, "B D"],
    y: Float[Array, "B O"],
    *,
    solver: AbstractSolver = GradientDescent(0.1),
    spec: EnergySpec = EnergySpec(),
    max_steps: int = 20,
    rtol: float = 0.0,
    atol: float = 0.0,
    z0: Float[Array, "L-1 B N"] | None = None,
    init: ActivityInit | str = ActivityInit.FEEDFORWARD,
    mode: Mode | str = Mode.SUPERVISED,
    record_energy: bool = False,
    throw: bool = True,
) -> Solution:
    r"""Minimise Σ_i E_i over the free activities.

    Runs ``z ← z + Δz`` with Δz from ``solver`` inside one ``lax.while_loop`` until
    ``rms(Δz) ≤ atol + rtol·rms(z)`` (converged), ``max_steps`` steps (step cap), or a
    non-finite update (which raises if ``throw``; else ``status = NONFINITE``). With
    ``rtol = atol = 0`` (the default) it runs exactly ``max_steps`` steps and checks for
    non-finite values once, at the end. Solvers that need the model itself
    (:class:`AbstractModelSolver`: ``ExactSolver``, ``NewtonSolver``) run their own ``solve``
    with the same arguments, in supervised mode only.

    Args:
        model: the PCN. x: (B, D) input, or in generative mode the initial latent.
        y: (B, O) target (one-hot for CE). z0: optional starting activities (L−1, B, N).
        mode: ``supervised`` (x, y clamped) or ``generative`` (only y clamped; x is free).
        record_energy: keep the batch-mean energy before each step in ``energies``.
    Returns:
        A :class:`Solution`.
    """
    mode = parse_option(Mode, mode, "mode")
    check_batch(model, x, y)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is not valid; expected an integer >= 1")
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol={rtol!r}, atol={atol!r} are not valid; expected numbers >= 0")
    if isinstance(solver, AbstractModelSolver):
        if mode is not Mode.SUPERVISED:
            raise ValueError(f"{type(solver).__name__} supports mode='supervised' only")
        if z0 is None and parse_option(ActivityInit, init, "init") is ActivityInit.ZEROS:
            z0 = initial_activities(model, x, init)
        _check_z0(model, x, z0)
        return _maybe_throw(solver.solve(model, x, y, spec, z0, max_steps, rtol, atol, record_energy), throw)

    z = initial_activities(model, x, init) if z0 is None else z0
    _check_z0(model, x, z)

    if mode is Mode.SUPERVISED:
        mu1 = model.predict_first(x)  # constant during inference: computed once
        free = z
        total = lambda v: jnp.sum(example_energies(model, v, x, y, spec, mu1))  # noqa: E731
        grad_fn = lambda v: activity_grad(model, v, x, y, spec, mu1)  # noqa: E731
    else:
        free = (x, z)
        total = lambda v: jnp.sum(example_energies(model, v[1], v[0], y, spec))  # noqa: E731
        grad_fn = jax.grad(total)
    batch = x.shape[0]
    dtype = z.dtype

    fixed = rtol == 0 and atol == 0  # no tolerance: run exactly max_steps, no per-step norms

    def cond(carry):
        step, _, _, _, status, _ = carry
        return (step < max_steps) & (status == int(Status.MAX_STEPS))

    def body(carry):
        step, v, state, last, status, trace = carry
        if record_energy:
            trace = trace.at[step].set(total(v) / batch)
        dv, state = solver.step(grad_fn, v, state)
        v = jax.tree_util.tree_map(jnp.add, v, dv)
        if fixed:
            return step + 1, v, state, dv, status, trace
        norm = rms(dv)
        done = norm <= (atol + rtol * rms(v) if rtol > 0 else atol)
        # a non-finite entry makes the sum of squares, hence the norm, non-finite
        return step + 1, v, state, norm.astype(dtype), step_status(norm, done), trace

    trace0 = jnp.full((max_steps,), jnp.nan, dtype) if record_energy else None
    last0 = jax.tree_util.tree_map(jnp.zeros_like, free) if fixed else jnp.asarray(jnp.inf, dtype)
    carry = (jnp.asarray(0, jnp.int32), free, solver.init(free), last0,
             jnp.asarray(int(Status.MAX_STEPS), jnp.int32), trace0)
    steps, v, _, last, status, trace = jax.lax.while_loop(cond, body, carry)
    if fixed:
        norm = rms(last).astype(dtype)
        status = jnp.where(jnp.isfinite(norm) & _all_finite(v), status, int(Status.NONFINITE)).astype(jnp.int32)
    else:
        norm = last
    latent, z = (None, v) if mode is Mode.SUPERVISED else v
    return _maybe_throw(Solution(z, latent, status, steps, norm, trace), throw)


def _check_z0(model: PCN, x, z) -> None:
    if z is not None and z.shape != (model.depth - 1, x.shape[0], model.width):
        raise ValueError(f"z0 has shape {z.shape}; expected (depth-1, batch, width) = "
                         f"{(model.depth - 1, x.shape[0], model.width)}")


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
