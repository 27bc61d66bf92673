r"""Second-order classification of a point of a plain deep linear chain, for F* and for the MSE.

At weights θ = (W_1..W_L) the report gives, for both objectives F* (equilibrated PC energy)
and L (MSE), the gradient norm ‖∇f‖₂ and the extreme Hessian eigenvalues λ_min, λ_max
(dense Hessians, see :mod:`.weight_hessian`), and classifies the point:

* ``critical``: ‖∇f‖₂ ≤ grad_tol;
* ``strict saddle``: critical and λ_min < −tol (a descent direction of negative curvature);
* otherwise ``not critical`` or ``degenerate`` (λ_min ≥ −tol: second order is inconclusive —
  a minimum or a non-strict saddle; deep nets have zero eigenvalues from rescaling symmetries,
  so a critical point is never called a strict minimum here).

Honest tolerances: rounding in the autodiff Hessian and in ``eigvalsh`` is O(eps·‖H‖), so
the default tol = √eps · max(1, ‖∇²F*‖₂, ‖∇²L‖₂) (≈1.5e-8·scale in float64, 3.5e-4·scale in
float32) sits far above rounding and far below curvatures of the data's scale; the default
grad_tol = √eps · max(1, F*, L) likewise. Both can be passed explicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp

from ._validate import check_problem
from .weight_hessian import derivatives


@dataclass(frozen=True)
class SaddleReport:
    """Gradient norms, extreme Hessian eigenvalues and classification for F* and L."""

    energy: float
    loss: float
    energy_grad_norm: float
    loss_grad_norm: float
    energy_lambda_min: float
    energy_lambda_max: float
    loss_lambda_min: float
    loss_lambda_max: float
    tol: float
    grad_tol: float

    @property
    def energy_critical(self) -> bool:
        return self.energy_grad_norm <= self.grad_tol

    @property
    def loss_critical(self) -> bool:
        return self.loss_grad_norm <= self.grad_tol

    @property
    def energy_strict_saddle(self) -> bool:
        return self.energy_critical and self.energy_lambda_min < -self.tol

    @property
    def loss_strict_saddle(self) -> bool:
        return self.loss_critical and self.loss_lambda_min < -self.tol

    def kind(self, objective: str = "energy") -> str:
        """'not critical', 'strict saddle' or 'degenerate' for ``objective`` 'energy' or 'loss'."""
        if objective not in ("energy", "loss"):
            raise ValueError(f"objective={objective!r} is not valid; expected 'energy' or 'loss'")
        if not getattr(self, f"{objective}_critical"):
            return "not critical"
        return "strict saddle" if getattr(self, f"{objective}_strict_saddle") else "degenerate"


def saddle_report(
    weights: Sequence[jax.Array],
    x: jax.Array,
    y: jax.Array,
    tol: float | None = None,
    grad_tol: float | None = None,
    precision=1.0,
) -> SaddleReport:
    """Classify the point ``weights`` (W_1..W_L, (out, in)) of F* and of the MSE on (x, y).

    x: (B, d_in), y: (B, d_out). ``tol``/``grad_tol``: see the module docstring (None = default).
    """
    weights, x, y = check_problem(weights, x, y, precision)
    for name, t in (("tol", tol), ("grad_tol", grad_tol)):
        if t is not None and not (t >= 0 and math.isfinite(t)):
            raise ValueError(f"{name}={t!r} is not valid; expected a finite number >= 0")
    f_val, g_f, h_f = derivatives(weights, x, y, "energy", precision)
    l_val, g_l, h_l = derivatives(weights, x, y, "loss")
    ev_f, ev_l = jnp.linalg.eigvalsh(h_f), jnp.linalg.eigvalsh(h_l)
    f_val, l_val = float(f_val), float(l_val)
    root_eps = math.sqrt(float(jnp.finfo(x.dtype).eps))
    scale_h = max(1.0, float(jnp.max(jnp.abs(ev_f))), float(jnp.max(jnp.abs(ev_l))))
    return SaddleReport(
        energy=f_val,
        loss=l_val,
        energy_grad_norm=float(jnp.linalg.norm(g_f)),
        loss_grad_norm=float(jnp.linalg.norm(g_l)),
        energy_lambda_min=float(ev_f[0]),
        energy_lambda_max=float(ev_f[-1]),
        loss_lambda_min=float(ev_l[0]),
        loss_lambda_max=float(ev_l[-1]),
        tol=root_eps * scale_h if tol is None else float(tol),
        grad_tol=root_eps * max(1.0, abs(f_val), abs(l_val)) if grad_tol is None else float(grad_tol),
    )
