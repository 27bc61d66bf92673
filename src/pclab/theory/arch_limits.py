r"""The PC → BP width limit beyond dense nets: conv and transformer PCNs (arXiv 2602.07697, §3).

The limits paper shows that under μPC scalings the equilibrated energy F* tends to the BP loss
when the width N ≫ depth L, so that the PC weight gradient at the activity equilibrium z*
tends to the BP gradient, and reports that this holds for nonlinear MLPs, CNNs and transformers
*whenever inference reaches equilibrium*. This module measures it for any
:class:`pclab.nn.AbstractPCN`:

* :func:`equilibrium_alignment`: the cosine of g_PC = ∇_θ F(θ, z*) and g_BP = ∇_θ L, overall and
  per layer (:meth:`AbstractPCN.layers`), with the inference residual at z*:
  ``residual`` = rms(∇_z F) at z* and ``residual_rel`` = that over rms(∇_z F) at the
  feedforward start (the fraction of the initial activity gradient left), so a reader can see
  how far from equilibrium each number was taken;
* :func:`width_sweep`: that at several widths of one builder ``make(width, seed)``, with
  ``converged`` per cell (the solver's rtol test).

Widths are whatever the builder scales: channels of :func:`pclab.convnet`, ``d_model`` of
:func:`pclab.transformer`. The helpers are generic; ``pclab reproduce limits-nonlinear`` and
``mupc-reach-conv`` / ``mupc-reach-transformer`` use them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..energy import EnergySpec
from ..inference import AbstractSolver, infer
from ..learning import bp_grad, pc_weight_grad
from ..options import Status
from ..progress import progress_bar
from .alignment import cosine_similarity


@dataclass(frozen=True)
class EquilibriumAlignment:
    """PC–BP gradient cosines at the inference result and how close it is to equilibrium.

    Attributes:
        cosine: over all parameters. per_layer: one per :meth:`AbstractPCN.layers` entry
            (input side first, readout last).
        converged: the solver's tolerance test passed (False at the step cap or non-finite).
        infer_steps: inference steps taken. residual: rms of ∇_z F (batch-mean energy) at z*.
        residual_rel: residual / (rms of ∇_z F at the feedforward start; 0 if that is 0).
        pc_norm, bp_norm: 2-norms of the two gradients; layer_pc_norm, layer_bp_norm: per layer.
    """

    cosine: float
    per_layer: tuple[float, ...]
    converged: bool
    infer_steps: int
    residual: float
    residual_rel: float
    pc_norm: float
    bp_norm: float
    layer_pc_norm: tuple[float, ...] = ()
    layer_bp_norm: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("per_layer", "layer_pc_norm", "layer_bp_norm"):
            d[k] = list(d[k])
        return d


def _rms(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    total = sum(jnp.vdot(u, u) for u in leaves)
    count = sum(u.size for u in leaves)
    return jnp.sqrt(total / count)


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.vdot(u, u) for u in jax.tree_util.tree_leaves(tree)))


@eqx.filter_jit
def _equilibrium_alignment(model, x, y, solver, spec, max_steps, rtol, atol):
    z0 = model.activities(x)
    sol = infer(model, x, y, solver=solver, spec=spec, max_steps=max_steps, rtol=rtol, atol=atol, z0=z0,
                throw=False)
    b = jax.tree_util.tree_leaves(z0)[0].shape[1]  # activities are (K, B, ...)
    grad_start = _rms(model.activity_grad(z0, x, y, spec)) / b
    grad_end = _rms(model.activity_grad(sol.z, x, y, spec)) / b
    g_pc = eqx.filter(pc_weight_grad(model, sol.z, x, y, spec), eqx.is_array)
    g_bp = eqx.filter(bp_grad(model, x, y, spec), eqx.is_array)
    lp, lb = model.layers(g_pc), model.layers(g_bp)
    per_layer = jnp.stack([cosine_similarity(p, q) for p, q in zip(lp, lb)])
    return dict(cosine=cosine_similarity(g_pc, g_bp), per_layer=per_layer, status=sol.status, steps=sol.steps,
                residual=grad_end, residual_start=grad_start, pc_norm=_norm(g_pc), bp_norm=_norm(g_bp),
                layer_pc_norm=jnp.stack([_norm(p) for p in lp]), layer_bp_norm=jnp.stack([_norm(q) for q in lb]))


def equilibrium_alignment(
    model,
    x,
    y,
    *,
    solver: AbstractSolver,
    spec: EnergySpec = EnergySpec(),
    max_steps: int = 200,
    rtol: float = 1e-8,
    atol: float = 0.0,
) -> EquilibriumAlignment:
    """Cosine of the PC gradient at the inference result and the BP gradient of any PCN.

    Inference starts from the feedforward pass and runs ``solver`` (e.g. ``pclab.NewtonSolver()``
    iterated, or heavy-ball GD) until ``rms(Δ) ≤ atol + rtol·rms(u)`` or ``max_steps``; with
    ``rtol = atol = 0`` it runs exactly ``max_steps`` steps (``converged`` is then False unless
    the solver is direct), which is how the reach of T-step inference is measured.

    Args:
        model: any :class:`pclab.nn.AbstractPCN`. x, y: a batch for it (one-hot y for CE).
    """
    if not isinstance(solver, AbstractSolver):
        raise ValueError(f"solver={solver!r} is not valid; expected a pclab inference solver")
    out = _equilibrium_alignment(model, x, y, solver, spec, int(max_steps), float(rtol), float(atol))
    start = float(out["residual_start"])
    return EquilibriumAlignment(
        cosine=float(out["cosine"]),
        per_layer=tuple(float(c) for c in out["per_layer"]),
        converged=int(out["status"]) == int(Status.CONVERGED),
        infer_steps=int(out["steps"]),
        residual=float(out["residual"]),
        residual_rel=float(out["residual"]) / start if start > 0 else 0.0,
        pc_norm=float(out["pc_norm"]),
        bp_norm=float(out["bp_norm"]),
        layer_pc_norm=tuple(float(v) for v in out["layer_pc_norm"]),
        layer_bp_norm=tuple(float(v) for v in out["layer_bp_norm"]),
    )


def width_sweep(
    make: Callable[[int, int], object],
    x,
    y,
    widths: Sequence[int],
    *,
    seeds: int = 1,
    solver: AbstractSolver,
    spec: EnergySpec = EnergySpec(),
    max_steps: int = 200,
    rtol: float = 1e-8,
    progress: bool | None = None,
) -> list[dict]:
    """:func:`equilibrium_alignment` of ``make(width, seed)`` for every width and seed.

    Returns one record per (width, seed): ``width``, ``seed``, the fields of
    :class:`EquilibriumAlignment` (``per_layer`` a list). ``progress``: a bar over the
    networks (``None``: when stderr is a terminal).
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not valid; expected an integer >= 1")
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths={widths!r} is not valid; expected a non-empty sequence of integers >= 1")
    rows, bar = [], progress_bar(len(widths) * seeds, progress, "width sweep", "net")
    for w in widths:
        for s in range(seeds):
            a = equilibrium_alignment(make(w, s), x, y, solver=solver, spec=spec, max_steps=max_steps, rtol=rtol)
            rows.append(dict(width=int(w), seed=s, **a.as_dict()))
            bar.set_postfix(width=w)
            bar.update()
    bar.close()
    return rows


def seed_mean(rows: list[dict], key: str, widths: Sequence[int]) -> np.ndarray:
    """Mean of ``rows[key]`` over seeds at each width (rows from :func:`width_sweep`); for
    ``key='per_layer'`` an array (len(widths), n_layers)."""
    out = []
    for w in widths:
        vals = [np.asarray(r[key], dtype=float) for r in rows if r["width"] == w]
        out.append(np.mean(vals, axis=0))
    return np.asarray(out)


def layer_reach(
    model,
    x,
    y,
    probes: dict[str, tuple[AbstractSolver, int]],
    *,
    precisions: Sequence[float] = (1.0, 0.01),
    loss: str = "mse",
    floor: float = 0.0,
) -> list[dict]:
    """Which layers a fixed inference budget reaches: for each output precision λ and each probe
    ``label → (solver, steps)``, run exactly ``steps`` steps from the feedforward pass and record
    each layer's PC–BP cosine (0 where the PC gradient is exactly zero: not reached).

    A layer counts as reached when ‖g_PC,l‖ > ``floor`` · ‖g_BP,l‖. ``floor = 0`` is the exact
    light cone (dense PCNs, whose feedforward errors are exactly zero inside the compiled loop);
    conv and transformer PCNs recompute their layer maps in a differently fused program inside
    the loop, so in float32 the unreached layers carry rounding-level gradients in random
    directions (measured ‖g_PC,l‖/‖g_BP,l‖ ≤ 6e-8 for a conv PCN, ≤ 2e-6 for a transformer),
    and a floor such as 1e-5 separates those from signal (faint signal below it counts as
    not reached).

    Returns one record per (λ, probe): ``precision``, ``inference`` (the label), ``steps``,
    ``per_layer`` (list), ``cosine``, ``reached``, ``aligned`` (cos > 0.9), ``layers``,
    ``norm_ratio`` (list of ‖g_PC,l‖ / ‖g_BP,l‖).
    """
    rows = []
    for lam in precisions:
        spec = EnergySpec(loss, lam)
        for label, (solver, steps) in probes.items():
            a = equilibrium_alignment(model, x, y, solver=solver, spec=spec, max_steps=steps, rtol=0.0)
            cos = np.asarray(a.per_layer)
            pc, bp = np.asarray(a.layer_pc_norm), np.asarray(a.layer_bp_norm)
            ratio = np.divide(pc, bp, out=np.full_like(pc, np.inf), where=bp > 0)
            hit = (pc > floor * bp) & (cos != 0)
            rows.append(dict(precision=float(lam), inference=label, steps=int(steps), per_layer=list(a.per_layer),
                             cosine=a.cosine, reached=int(np.sum(hit)), aligned=int(np.sum(cos > 0.9)),
                             layers=len(cos), norm_ratio=[float(r) for r in ratio]))
    return rows
