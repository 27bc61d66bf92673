r"""Gradient inference on energies other than the PC energy (bPC, PC-ALM), and the checks
shared by the rules that run it.

:func:`pclab.infer` minimises the PC energy of a model. A rule with its own energy (the
bidirectional energy, an augmented Lagrangian) builds a small problem object with the two
methods gradient solvers use, ``grad(free)`` (∂/∂free of the batch-*sum* energy, so step
sizes do not depend on the batch size) and ``total_energy(free)``, and runs the same solvers
(:class:`~pclab.GradientDescent`, :class:`~pclab.OptaxSolver`, :class:`~pclab.ODESolver`)
through :func:`descend`: one ``lax.scan`` of exactly ``max_steps`` steps when ``rtol = atol =
0`` (the default), else one ``lax.while_loop`` that stops when ``rms(Δ) ≤ atol + rtol·rms(u)``.
Newton and the exact solve are specific to the PC energy and are refused by
:func:`check_gradient_solver`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..inference import GradientDescent, ODESolver, OptaxSolver
from ..inference.result import all_finite, rms
from ..inference.steps import fixed_steps
from ..options import Status

# Solvers that only ask the problem for its gradient: they run on any energy.
GRADIENT_SOLVERS = {"gd": GradientDescent, "momentum": OptaxSolver, "adam": OptaxSolver, "ode": ODESolver}
DENSE_MODELS = ("mlp", "resnet")


def check_gradient_solver(algo: str, solver, why: str) -> None:
    """Raise ``ValueError`` unless ``solver`` is ``None`` or a gradient solver."""
    if solver is not None and not isinstance(solver, tuple(GRADIENT_SOLVERS.values())):
        raise ValueError(f"algo={algo!r} {why}, so it needs a gradient solver; got {type(solver).__name__}. "
                         f"Valid: solver={', '.join(map(repr, GRADIENT_SOLVERS))} (not 'newton' or 'exact', "
                         "which solve the plain PC energy)")


class Descent(NamedTuple):
    """What :func:`descend` returns: the final carry, the number of steps, the status
    (a :class:`pclab.Status` as int32) and the energy before each step ((T,), NaN after the
    last step) or ``None``."""

    carry: Any
    steps: Array
    status: Array
    energies: Array | None


def descend(step: Callable, carry0, *, max_steps: int, rtol: float = 0.0, atol: float = 0.0,
            free: Callable = lambda c: c[0], energy: Callable | None = None, unroll: bool = False) -> Descent:
    """Iterate ``carry, delta = step(carry)`` (``delta``: the update of this step, a pytree).

    Args:
        step: one solver step on the carry. carry0: the start.
        max_steps: the cap T. rtol, atol: stop when ``rms(delta) ≤ atol + rtol·rms(free(carry))``
            (both 0: run exactly T steps, check finiteness once at the end).
        free: the free variables of a carry (for the tolerance and the finiteness check).
        energy: ``energy(carry) -> scalar``, recorded before each step if given.
        unroll: unroll the fixed-step scan (models whose layers are slow in a rolled loop).
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is not valid; expected an integer >= 1")
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol={rtol!r}, atol={atol!r} are not valid; expected numbers >= 0")
    dtype = jax.tree_util.tree_leaves(free(carry0))[-1].dtype
    running = jnp.asarray(int(Status.MAX_STEPS), jnp.int32)
    if rtol == 0 and atol == 0:
        def body(c, _):
            e = energy(c) if energy is not None else None
            c, _ = step(c)
            return c, e

        carry, trace = fixed_steps(body, carry0, max_steps, bool(unroll))
        ok = all_finite(free(carry))
        status = jnp.where(ok, running, int(Status.NONFINITE)).astype(jnp.int32)
        return Descent(carry, jnp.asarray(max_steps, jnp.int32), status, trace)

    def cond(state):
        i, _, status, _ = state
        return (i < max_steps) & (status == int(Status.MAX_STEPS))

    def wbody(state):
        i, c, _, trace = state
        if energy is not None:
            trace = trace.at[i].set(energy(c))
        c, delta = step(c)
        norm = rms(delta)
        done = norm <= atol + rtol * rms(free(c))
        status = jnp.where(~jnp.isfinite(norm), int(Status.NONFINITE),
                           jnp.where(done, int(Status.CONVERGED), int(Status.MAX_STEPS))).astype(jnp.int32)
        return i + 1, c, status, trace

    trace0 = jnp.full((max_steps,), jnp.nan, dtype) if energy is not None else None
    steps, carry, status, trace = jax.lax.while_loop(cond, wbody, (jnp.asarray(0, jnp.int32), carry0, running, trace0))
    status = jnp.where(all_finite(free(carry)), status, int(Status.NONFINITE)).astype(jnp.int32)
    return Descent(carry, steps, status, trace)


def add(a, b):
    """Leafwise a + b of two pytrees of one structure."""
    return jax.tree_util.tree_map(jnp.add, a, b)


def per_example_dot(a, b) -> Array:
    """Σ over layers and features of a·b, per example, for activity-shaped pytrees (batch on
    axis 1 of every leaf): shape (B,)."""
    return sum(jnp.sum(u * v, axis=(0, *range(2, u.ndim)))
               for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
