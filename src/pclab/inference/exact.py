r"""Exact equilibrium of a *linear* PCN with MSE output: ``ExactSolver``.

Any linear model: one Gauss–Newton step in the prediction errors is exact (the energy is a
quadratic in them). The dense PCN overrides it with a block-tridiagonal solve: with layer maps B_l and biases c_l, the energy of one example is a convex quadratic in
z_1..z_M (M = L−1) whose stationarity conditions are

    D_l z_l − B_l z_{l−1} − B_{l+1}ᵀ z_{l+1} = r_l,
    D_l = I + B_{l+1}ᵀB_{l+1} (l < M),   D_M = I + λ B_LᵀB_L,
    r_l = c_l − B_{l+1}ᵀ c_{l+1} (+ B_1 x at l = 1),   r_M = c_M + λ B_Lᵀ(y − c_L).

Block Gaussian elimination (the block Thomas algorithm) solves it in O(L·N³) with two
``lax.scan`` sweeps over depth, without forming the (L−1)N × (L−1)N Hessian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from typing import ClassVar

from ..energy import EnergySpec, hidden_errors
from ..options import OutputLoss
from .newton import check_supervised, gauss_newton_errors
from .solvers import AbstractSolver

_HI = jax.lax.Precision.HIGHEST


def check_exact(model, spec: EnergySpec) -> None:
    """Raise ``ValueError`` unless the model is linear and the output term MSE."""
    if not model.linear:
        act = getattr(getattr(model, "act", None), "value", None)
        raise ValueError("the exact solver needs a linear model (act='linear')" + (f", got act={act!r}" if act else ""))
    if spec.loss is not OutputLoss.MSE:
        raise ValueError(f"the exact solver needs loss='mse', got loss={spec.loss.value!r}")


class ExactSolver(AbstractSolver):
    """Exact equilibrium of a linear PCN with MSE output in one step: the model's own solve
    (:meth:`AbstractPCN.exact_activities`), else one Gauss–Newton step from zero errors."""

    step_size: ClassVar[str | None] = None
    max_useful_steps: ClassVar[int | None] = 1

    def check(self, problem):
        check_supervised(self, problem)
        check_exact(problem.model, problem.spec)

    def step(self, problem, u, state):
        model, x, y, spec = problem.model, problem.x, problem.y, problem.spec
        z_star = model.exact_activities(x, y, spec)
        if z_star is None:
            zeros = jax.tree_util.tree_map(jnp.zeros_like, u)
            z_star = model.activities(x, gauss_newton_errors(model, x, y, zeros, spec)[0])
        return jax.tree_util.tree_map(jnp.subtract, z_star, u), state

    def passes(self, n_outputs):
        return 1.0 + 3.0 * n_outputs


def block_tridiagonal_activities(
    model, x: Float[Array, "B D"], y: Float[Array, "B O"], spec: EnergySpec = EnergySpec()
) -> Float[Array, "L-1 B N"]:
    """The unique minimiser z* of the energy of a linear dense PCN with MSE output (any batch),
    by block Gaussian elimination (all products at full precision)."""
    check_exact(model, spec)
    n, dt = model.width, model.w_hidden.dtype
    eye = jnp.eye(n, dtype=dt)
    b_hid = model.mult.hidden * model.w_hidden + (eye if model.skips else 0.0)  # B_2..B_{L−1}
    b_out = model.mult.output * model.w_out  # B_L
    lam = spec.precision
    zeros = lambda *s: jnp.zeros(s, dt)  # noqa: E731
    mm = lambda a, b: jnp.matmul(a, b, precision=_HI)  # noqa: E731
    c_hid = jnp.concatenate(
        [(model.b_in if model.b_in is not None else zeros(n))[None],
         model.b_hidden if model.b_hidden is not None else zeros(model.depth - 2, n)]
    )  # c_1..c_M, (M, N)
    c_out = model.b_out if model.b_out is not None else zeros(model.d_out)

    # Right-hand sides r_l, (M, B, N).
    r = jnp.broadcast_to(c_hid[:, None, :], (c_hid.shape[0], x.shape[0], n))
    r = r.at[:-1].add(-jnp.einsum("hoi,ho->hi", b_hid, c_hid[1:], precision=_HI)[:, None, :])
    r = r.at[0].add(model.predict_first(x) - c_hid[0])
    r = r.at[-1].add(lam * mm(y - c_out, b_out))

    # Diagonal blocks D_l (M, N, N); upper blocks U_l = −B_{l+1}ᵀ; lower blocks −B_l.
    diag = jnp.concatenate(
        [eye + jnp.einsum("hki,hkj->hij", b_hid, b_hid, precision=_HI), (eye + lam * mm(b_out.T, b_out))[None]]
    )
    lower = jnp.concatenate([zeros(1, n, n), b_hid])  # B_l for l = 1..M (zero for l = 1)
    upper = jnp.concatenate([b_hid, zeros(1, n, n)])  # B_{l+1} for l = 1..M (zero for l = M)

    def forward(carry, blocks):
        c_prev, d_prev = carry  # C'_{l−1} (N, N), d'_{l−1} (B, N)
        d_l, low, up, r_l = blocks
        den = d_l - mm(low, c_prev)  # D_l − B_l C'_{l−1}
        c_l = jnp.linalg.solve(den, up.T)  # C'_l = den⁻¹ B_{l+1}ᵀ  (z_l = d'_l + C'_l z_{l+1})
        d_new = jnp.linalg.solve(den, (r_l + mm(d_prev, low.T)).T).T
        return (c_l, d_new), (c_l, d_new)

    init = (zeros(n, n), zeros(x.shape[0], n))
    _, (cs, ds) = jax.lax.scan(forward, init, (diag, lower, upper, r))

    def backward(z_next, cd):
        c_l, d_l = cd
        z_l = d_l + mm(z_next, c_l.T)
        return z_l, z_l

    _, zs = jax.lax.scan(backward, zeros(x.shape[0], n), (cs, ds), reverse=True)
    return zs
