r"""How close PC weight gradients are to BP gradients (arXiv 2602.07697).

For a pclab model θ and a batch (x, y) the PC gradient is ∇_θ F(θ, z*) at the activity
equilibrium z* (= ∇_θ F* by the envelope theorem) and the BP gradient is ∇_θ L of the
feedforward loss. Their cosine similarity

    cos(g_PC, g_BP) = ⟨g_PC, g_BP⟩ / (‖g_PC‖ ‖g_BP‖)

is reported over all parameters and per layer (:meth:`AbstractPCN.layers`: for a dense PCN
input W_1, each hidden W_l, output W_L, a layer's bias counting with its weights); it is 0 where a gradient is exactly zero (an update of
zero has no component along the other). Inference that stops early leaves layers far from the
output with a zero PC gradient: T GD steps from the feedforward pass reach only the top T
hidden layers, one Newton step reaches them all. For linear models F* = ½ rᵀS⁻¹r, so the cosine → 1
when λS → I: in the μPC width limit N ≫ L, and as the precision λ → 0 for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from ..energy import EnergySpec
from ..inference import AbstractSolver, ExactSolver, OptaxSolver, heavy_ball, infer
from ..learning import bp_grad, pc_weight_grad
from ..nn.dense import PCN, layer_maps
from ..options import Mode, OutputLoss, Status
from .equilibrium import equilibrium_activities


@dataclass(frozen=True)
class GradientAlignment:
    """Cosine similarities of PC and BP gradients and how the equilibrium was reached.

    Attributes:
        cosine: over all parameters. input, output: of W_1 (and b_1), of W_L (and b_L).
        hidden: one per hidden weight W_2..W_{L−1} (empty for depth 2).
        converged: inference reached its tolerance (always True for the exact solver).
        infer_steps: inference steps used. pc_norm, bp_norm: the two gradients' 2-norms.
    """

    cosine: float
    input: float
    hidden: tuple[float, ...]
    output: float
    converged: bool
    infer_steps: int
    pc_norm: float
    bp_norm: float

    @property
    def per_layer(self) -> tuple[float, ...]:
        """The L per-layer cosines in layer order: W_1, W_2..W_{L−1}, W_L."""
        return (self.input, *self.hidden, self.output)


def momentum_solver(lr: float = 0.2, momentum: float = 0.9) -> OptaxSolver:
    """:func:`pclab.inference.heavy_ball` with this module's default step (0.2)."""
    return heavy_ball(lr, momentum)


def cosine_similarity(a, b) -> jax.Array:
    """⟨a, b⟩/(‖a‖‖b‖) of two arrays or pytrees of the same structure (flattened), a scalar in
    [−1, 1] (clipped: rounding puts parallel float32 vectors at 1 + 1e-7); 0 if either is zero."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    dot = sum(jnp.vdot(u, v) for u, v in zip(la, lb))
    den = jnp.sqrt(sum(jnp.vdot(u, u) for u in la)) * jnp.sqrt(sum(jnp.vdot(v, v) for v in lb))
    return jnp.where(den > 0, jnp.clip(dot / jnp.where(den > 0, den, 1.0), -1.0, 1.0), 0.0)


@eqx.filter_jit
def rule_bp_cosines(rule, model, x, y, spec: EnergySpec, inference, mode=Mode.SUPERVISED) -> list[jax.Array]:
    """Per-layer cos(g_rule, g_BP), in :meth:`AbstractPCN.layers` order: ``rule``'s weight
    gradient (:meth:`AbstractLearningRule.grads` with ``inference``) against the BP gradient of
    the feedforward loss, on the batch (x, y). One scalar per layer."""
    g_rule = eqx.filter(rule.grads(model, x, y, spec, inference, mode)[0], eqx.is_array)
    g_bp = eqx.filter(bp_grad(model, x, y, spec), eqx.is_array)
    return [cosine_similarity(a, b) for a, b in zip(model.layers(g_rule), model.layers(g_bp))]


@eqx.filter_jit
def _alignment(model, x, y, solver, spec, max_steps, rtol, atol):
    bias_free = isinstance(model, PCN) and all(b is None for b in (model.b_in, model.b_hidden, model.b_out))
    if isinstance(solver, ExactSolver) and bias_free:  # closed form: same z*, cheaper to compile
        z = jnp.stack(equilibrium_activities(layer_maps(model), x, y, spec.precision))
        status, steps = jnp.asarray(int(Status.CONVERGED)), jnp.asarray(1)
    else:
        sol = infer(model, x, y, solver=solver, spec=spec, max_steps=max_steps, rtol=rtol, atol=atol, throw=False)
        z, status, steps = sol.z, sol.status, sol.steps
    g_pc = eqx.filter(pc_weight_grad(model, z, x, y, spec), eqx.is_array)
    g_bp = eqx.filter(bp_grad(model, x, y, spec), eqx.is_array)
    per_layer = jnp.stack([cosine_similarity(p, b) for p, b in zip(model.layers(g_pc), model.layers(g_bp))])
    norm = lambda t: jnp.sqrt(sum(jnp.vdot(u, u) for u in jax.tree_util.tree_leaves(t)))  # noqa: E731
    return dict(
        cosine=cosine_similarity(g_pc, g_bp), per_layer=per_layer, status=status, steps=steps,
        pc_norm=norm(g_pc), bp_norm=norm(g_bp),
    )


def pc_bp_alignment(
    model: PCN,
    x: jax.Array,
    y: jax.Array,
    *,
    solver: "AbstractSolver | str | None" = None,
    spec: EnergySpec = EnergySpec(),
    max_steps: int | None = None,
    rtol: float = 1e-6,
    atol: float = 0.0,
) -> GradientAlignment:
    """Cosine similarity of the PC gradient at equilibrium and the BP gradient of ``model``.

    Args:
        model: any :class:`pclab.nn.AbstractPCN` (linear or not); x, y: a batch for it.
        solver: ``'exact'`` / ``pclab.ExactSolver()`` (linear model, MSE output: the closed form
            of :func:`equilibrium_activities` when bias-free, else pclab's exact solver), any
            pclab solver, or None = exact when possible, else :func:`momentum_solver`.
        max_steps, rtol, atol: passed to :func:`pclab.infer` (default max_steps 5000; ignored by
            the exact solver). Check ``converged`` before trusting a nonlinear result.
    """
    exact_ok = model.linear and spec.loss is OutputLoss.MSE
    if solver is None:
        solver = ExactSolver() if exact_ok else momentum_solver()
    elif isinstance(solver, str):
        if solver != "exact":
            raise ValueError(f"solver={solver!r} is not valid; expected 'exact', a pclab solver or None")
        solver = ExactSolver()
    if isinstance(solver, ExactSolver) and not exact_ok:
        raise ValueError("solver='exact' needs a linear model (act='linear') with loss='mse'")
    if not isinstance(solver, AbstractSolver):
        raise ValueError(f"solver={solver!r} is not valid; expected 'exact', a pclab solver or None")
    if isinstance(solver, ExactSolver):  # tolerances are moot: normalise them to share compilations
        max_steps, rtol, atol = 1, 0.0, 0.0
    elif max_steps is None:
        max_steps = 5000
    out = _alignment(model, x, y, solver, spec, max_steps, rtol, atol)
    return GradientAlignment(
        cosine=float(out["cosine"]),
        input=float(out["per_layer"][0]),
        hidden=tuple(float(c) for c in out["per_layer"][1:-1]),
        output=float(out["per_layer"][-1]),
        converged=int(out["status"]) == int(Status.CONVERGED),
        infer_steps=int(out["steps"]),
        pc_norm=float(out["pc_norm"]),
        bp_norm=float(out["bp_norm"]),
    )
