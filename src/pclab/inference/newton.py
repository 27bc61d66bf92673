r"""Gauss–Newton inference on the prediction errors, solved in output space.

Write the free activities through their prediction errors δ_l = z_l − f_l(z_{l−1}):
``z = Z(δ)`` is the feedforward pass with δ_l added at each hidden layer
(:meth:`PCN.activities` with ``inject``), a bijection. In these coordinates the energy of one
example is

    E(δ) = ½ Σ_l ‖δ_l‖² + λ ℓ(y, ŷ(δ)),        ŷ(δ) = f_L(Z(δ)_{L−1}).

With J = [J_1 … J_{L−1}], J_l = ∂ŷ/∂δ_l (O × N), g = λ ∂ℓ/∂ŷ and A = λ ∂²ℓ/∂ŷ², the
Gauss–Newton step solves (I + JᵀAJ) Δδ = −(δ + Jᵀg). Its (L−1)N unknowns reduce to O by the
Woodbury identity, and the new errors are

    δ ← Jᵀc,        c = A (I + K A)⁻¹ (Jδ + K g) − g,        K = J Jᵀ = Σ_l J_l J_lᵀ  (O × O).

Every hidden layer is reached in one step, however deep the net: the stationarity condition
δ_l = −J_lᵀ g is the backward pass of the output error. For a linear net with MSE output the
step is exact (Newton on a quadratic), and c = S⁻¹r is science.md's rescaled residual
(Theorem 1, S = I/λ + K). Each step costs one forward pass and O vectorised backward
passes (J is materialised as (O, L−1, B, N)), so it suits classifiers with few outputs.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..energy import EnergySpec, hidden_errors, output_grad, output_hessian, output_loss
from ..nn.pcn import PCN
from ..options import Status
from .result import Solution, rms, step_status
from .solvers import AbstractSolver


class AbstractModelSolver(AbstractSolver):
    """A solver that needs the model itself, not only ∇_z E (supervised mode only).

    :func:`pclab.infer` calls ``solve`` instead of stepping ``init``/``step``.
    """

    def init(self, z):  # pragma: no cover - never stepped; infer() calls solve()
        return None

    def step(self, grad_fn, z, state):  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} is dispatched by infer() through solve()")

    @abc.abstractmethod
    def solve(
        self, model: PCN, x, y, spec: EnergySpec, z0, max_steps: int, rtol: float, atol: float, record_energy: bool
    ) -> Solution:
        """Minimise the energy; ``z0`` (L−1, B, N) is the start, ``None`` for the feedforward pass.
        ``record_energy``: fill ``Solution.energies`` (batch mean before each step) if the
        solver can."""


def gauss_newton_errors(
    model: PCN, x: Float[Array, "B D"], y: Float[Array, "B O"], delta: Float[Array, "L-1 B N"], spec: EnergySpec
) -> tuple[Float[Array, "L-1 B N"], Float[Array, ""]]:
    """One Gauss–Newton step on the prediction errors δ (module docstring).

    Returns the new errors Jᵀc and the batch-mean energy at the old ones.
    """

    def output(d):
        return model.predict_output(model.activities(x, d)[-1])

    y_hat, vjp = jax.vjp(output, delta)
    n_out = y_hat.shape[-1]
    basis = jnp.broadcast_to(jnp.eye(n_out, dtype=y_hat.dtype)[:, None, :], (n_out,) + y_hat.shape)
    (jac,) = jax.vmap(vjp)(basis)  # (O, L−1, B, N): jac[j, l, b] = ∂ŷ_bj/∂δ_l
    hi = jax.lax.Precision.HIGHEST
    k = jnp.einsum("jlbn,klbn->bjk", jac, jac, precision=hi)
    j_delta = jnp.einsum("jlbn,lbn->bj", jac, delta, precision=hi)
    g = spec.precision * output_grad(y_hat, y, spec.loss)
    a = spec.precision * output_hessian(y_hat, y, spec.loss)
    eye = jnp.eye(n_out, dtype=y_hat.dtype)
    rhs = j_delta + jnp.einsum("bjk,bk->bj", k, g, precision=hi)
    u = jnp.linalg.solve(eye + jnp.einsum("bjk,bkm->bjm", k, a, precision=hi), rhs[..., None])[..., 0]
    c = jnp.einsum("bjk,bk->bj", a, u, precision=hi) - g
    energy = jnp.mean(0.5 * jnp.sum(delta**2, axis=(0, 2)) + spec.precision * output_loss(y_hat, y, spec.loss))
    return jnp.einsum("jlbn,bj->lbn", jac, c, precision=hi), energy


class NewtonSolver(AbstractModelSolver):
    r"""Gauss–Newton inference in the prediction errors (see :mod:`pclab.inference.newton`).

    ``infer(..., max_steps=k)`` takes up to k steps, stopping early when
    ``rms(Δδ) ≤ atol + rtol·rms(δ)``. Exact in one step for linear nets with MSE output.
    For smooth nonlinear nets it converges linearly, at a rate set by the curvature the
    Gauss–Newton model drops (network curvature × output error): small for weak output
    precision λ. With ReLU, activation patterns can flip between steps and the iterates may
    cycle instead of converging. Supervised mode only; costs one forward and O (output size)
    backward passes per step.
    """

    def solve(self, model, x, y, spec, z0, max_steps, rtol, atol, record_energy=False) -> Solution:
        if z0 is None:  # the feedforward pass: all prediction errors are zero
            delta0 = jnp.zeros((model.depth - 1, x.shape[0], model.width), x.dtype)
        else:
            delta0 = hidden_errors(model, z0, x)

        def cond(carry):
            step, _, _, status, _ = carry
            return (step < max_steps) & (status == int(Status.MAX_STEPS))

        def body(carry):
            step, delta, _, _, trace = carry
            new, energy = gauss_newton_errors(model, x, y, delta, spec)
            if record_energy:
                trace = trace.at[step].set(energy)
            norm = rms(new - delta)
            done = norm <= atol + rtol * rms(new)
            return step + 1, new, norm, step_status(norm, done), trace

        trace0 = jnp.full((max_steps,), jnp.nan, delta0.dtype) if record_energy else None
        carry = (jnp.asarray(0, jnp.int32), delta0, jnp.asarray(jnp.inf, delta0.dtype),
                 jnp.asarray(int(Status.MAX_STEPS), jnp.int32), trace0)
        steps, delta, norm, status, trace = jax.lax.while_loop(cond, body, carry)
        return Solution(model.activities(x, delta), None, status, steps, norm, trace)
