r"""Gauss–Newton inference on the prediction errors, solved in output space, for any PCN.

Write the free activities through their prediction errors δ_l = z_l − f_l(z_{l−1}):
``z = Z(δ)`` is the feedforward pass with δ_l added at each layer
(:meth:`AbstractPCN.activities` with ``inject``), a bijection. In these coordinates the
energy of one example is

    E(δ) = ½ Σ_l ‖δ_l‖² + λ ℓ(y, ŷ(δ)),        ŷ(δ) = f_L(Z(δ)_{L−1}).

With J = ∂ŷ/∂δ (O × dim δ per example), g = λ ∂ℓ/∂ŷ and A = λ ∂²ℓ/∂ŷ², the Gauss–Newton
step solves (I + JᵀAJ) Δδ = −(δ + Jᵀg). Its unknowns reduce to O by the Woodbury identity,
and the new errors are

    δ ← Jᵀc,        c = A (I + K A)⁻¹ (Jδ + K g) − g,        K = J Jᵀ  (O × O).

Every layer is reached in one step, however deep the net: the stationarity condition
δ_l = −J_lᵀ g is the backward pass of the output error. For a linear net with MSE output the
step is exact (Newton on a quadratic), and c = S⁻¹r is the rescaled residual of the
equilibrated energy (arXiv 2408.11979, Theorem 1, S = I/λ + K). The rows of J are O
vector–Jacobian products of the injected forward pass, vmapped over the outputs (a pytree
shaped like the activities with a leading O axis), so any architecture works; a step costs
one forward pass and O backward passes, which suits models with few outputs per example.
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..energy import EnergySpec, hidden_errors, output_grad, output_hessian, output_loss
from ..nn.base import batch_sum_squares
from .solvers import AbstractSolver

_HI = jax.lax.Precision.HIGHEST


def _flat(leaf: Array, lead: int) -> Array:
    """(lead..., K, B, ...) → (lead..., K, B, F)."""
    return leaf.reshape(leaf.shape[: lead + 2] + (-1,))


def _output_derivatives(y_hat, y, spec: EnergySpec):
    """g = λ∂ℓ/∂ŷ (B, O) and A = λ∂²ℓ/∂ŷ² (B, O, O) with the output flattened per example."""
    b = y_hat.shape[0]
    if y_hat.ndim == 2:
        g, a = output_grad(y_hat, y, spec.loss), output_hessian(y_hat, y, spec.loss)
    else:  # e.g. (B, T, V) token logits: the exact per-example Hessian by autodiff
        shape = y_hat.shape[1:]
        per = lambda v, t: output_loss(v.reshape((1,) + shape), t.reshape((1,) + shape), spec.loss)[0]  # noqa: E731
        yf, tf = y_hat.reshape(b, -1), y.reshape(b, -1)
        g, a = jax.vmap(jax.grad(per))(yf, tf), jax.vmap(jax.hessian(per))(yf, tf)
    return spec.precision * g, spec.precision * a


def gauss_newton_errors(model, x, y, delta, spec: EnergySpec):
    """One Gauss–Newton step on the prediction errors δ (module docstring).

    Args: model, x, y as for :func:`pclab.infer`; delta: errors shaped like the activities.
    Returns the new errors Jᵀc and the batch-mean energy at the old ones.
    """

    def output(d):
        return model.output(model.activities(x, d))

    y_hat, vjp = jax.vjp(output, delta)
    b = y_hat.shape[0]
    n_out = math.prod(y_hat.shape[1:])
    eye = jnp.eye(n_out, dtype=y_hat.dtype)
    basis = jnp.broadcast_to(eye[:, None, :], (n_out, b, n_out)).reshape((n_out,) + y_hat.shape)
    (jac,) = jax.vmap(vjp)(basis)  # leaves (O, K, B, ...): jac[j, k, b] = ∂ŷ_bj/∂δ_k,b
    jl, dl = jax.tree_util.tree_leaves(jac), jax.tree_util.tree_leaves(delta)
    k = sum(jnp.einsum("jlbn,klbn->bjk", _flat(j, 1), _flat(j, 1), precision=_HI) for j in jl)
    j_delta = sum(jnp.einsum("jlbn,lbn->bj", _flat(j, 1), _flat(d, 0), precision=_HI) for j, d in zip(jl, dl))
    g, a = _output_derivatives(y_hat, y, spec)
    rhs = j_delta + jnp.einsum("bjk,bk->bj", k, g, precision=_HI)
    u = jnp.linalg.solve(eye + jnp.einsum("bjk,bkm->bjm", k, a, precision=_HI), rhs[..., None])[..., 0]
    c = jnp.einsum("bjk,bk->bj", a, u, precision=_HI) - g
    new = jax.tree_util.tree_map(
        lambda j: jnp.einsum("jlbn,bj->lbn", _flat(j, 1), c, precision=_HI).reshape(j.shape[1:]), jac)
    energy = jnp.mean(0.5 * batch_sum_squares(delta) + spec.precision * output_loss(y_hat, y, spec.loss))
    return new, energy


def check_supervised(solver, problem) -> None:
    if not problem.supervised:
        raise ValueError(f"{type(solver).__name__} supports mode='supervised' only")


class NewtonSolver(AbstractSolver):
    r"""Gauss–Newton inference in the prediction errors (see :mod:`pclab.inference.newton`).

    ``infer(..., max_steps=k)`` takes up to k steps, stopping early when
    ``rms(Δδ) ≤ atol + rtol·rms(δ)``. Exact in one step for linear nets with MSE output.
    For smooth nonlinear nets it converges linearly, at a rate set by the curvature the
    Gauss–Newton model drops (network curvature × output error): small for weak output
    precision λ. With ReLU, activation patterns can flip between steps and the iterates may
    cycle instead of converging. Supervised mode only; costs one forward and O (output size)
    backward passes per step.
    """

    step_size: ClassVar[str | None] = None

    def check(self, problem):
        check_supervised(self, problem)

    def init(self, problem, free):
        return hidden_errors(problem.model, free, problem.x), None

    def step(self, problem, u, state):
        new, _ = gauss_newton_errors(problem.model, problem.x, problem.y, u, problem.spec)
        return jax.tree_util.tree_map(jnp.subtract, new, u), state

    def free(self, problem, u):
        return problem.model.activities(problem.x, u)

    def passes(self, n_outputs):
        return 1.0 + 3.0 * n_outputs  # calibrated on the depth-128 profile (benchmarks/README.md)
