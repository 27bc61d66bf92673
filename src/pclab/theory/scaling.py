r"""Is a parameterisation stable as width grows? The size of the first training step's change of
the output (arXiv 2602.07697: standard-parameterised PCNs cannot be scaled stably; science.md §3).

For a linear bias-free PCN with layer maps B_l = a_l W_l (+ I for residual hidden layers), one
Adam step from the initialisation moves every weight by ΔW = −η g/(|g| + ε) (Adam's first step,
bias-corrected: m̂ = g, v̂ = g²), whatever the gradient's scale. The output then moves by
Δŷ = ŷ(B + aΔW) − ŷ(B). Under a width-stable parameterisation rms(Δŷ) stays O(1) as the width N
grows; under SP (a_l = 1, W ~ U(±1/√fan_in)) the output layer alone gives Δŷ ≈ η Σ_n |z_n| = O(N):
the forward pass after one step blows up linearly in N. :func:`first_step_output_change`
computes it for PC (g = ∇_W F*, the equilibrium gradient by the envelope theorem) or BP
(g = ∇_W L), by autodiff of the closed forms in the maps (one compilation per shape, shared by
every parameterisation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..nn.dense import PCN, layer_maps
from ..params import get_param
from .alignment import pc_bp_alignment
from .equilibrium import equilibrated_energy
from .linear import feedforward_activities, linear_loss
from .random_maps import random_pcn
from .rescaling import rescaling_deviation
from .training_probes import energy_loss_ratio


@jax.jit
def _step_change(maps, scales, lrs, x, y, precision, eps, use_energy):
    f_pc = lambda m: equilibrated_energy(m, x, y, precision)  # noqa: E731
    f_bp = lambda m: linear_loss(m, x, y)  # noqa: E731
    g_maps = jax.lax.cond(use_energy, jax.grad(f_pc), jax.grad(f_bp), maps)
    new = []
    for b, g, a, lr in zip(maps, g_maps, scales, lrs):
        g_w = a * g  # ∂/∂W_l = a_l ∂/∂B_l
        new.append(b + a * (-lr * g_w / (jnp.abs(g_w) + eps)))
    y0 = feedforward_activities(maps, x)[-1]
    dy = feedforward_activities(new, x)[-1] - y0
    return jnp.sqrt(jnp.mean(dy**2)), jnp.sqrt(jnp.mean(y0**2))


def first_step_output_change(model: PCN, x: jax.Array, y: jax.Array, *, lr: float = 1e-2, algo: str = "pc",
                             precision: float = 1.0, eps: float = 1e-8, lr_scales=None) -> tuple[float, float]:
    """(rms Δŷ after one Adam step of rate ``lr``, rms ŷ at init) of a linear bias-free ``model``
    on (x (B, D), y (B, O)); ``algo`` 'pc' (∇F*) or 'bp' (∇L). ``eps``: Adam's ε (optax default).
    ``lr_scales``: optional per-role factors (input, hidden, output) on ``lr``, e.g.
    ``pclab.get_param('mupc').lr_scales(width, depth, skips)`` (``--scale-lr``)."""
    if algo not in ("pc", "bp"):
        raise ValueError(f"algo={algo!r} is not valid; expected 'pc' or 'bp'")
    maps = layer_maps(model)
    dt = maps[0].dtype
    scales = [model.mult.input] + [model.mult.hidden] * (len(maps) - 2) + [model.mult.output]
    scales = [jnp.asarray(s, dt) for s in scales]
    if lr_scales is None:
        f = (1.0, 1.0, 1.0)
    elif hasattr(lr_scales, "hidden"):  # a pclab Multipliers
        f = (lr_scales.input, lr_scales.hidden, lr_scales.output)
    else:
        f = tuple(float(v) for v in lr_scales)
    lrs = [jnp.asarray(lr * f[0], dt)] + [jnp.asarray(lr * f[1], dt)] * (len(maps) - 2) + [jnp.asarray(lr * f[2], dt)]
    dy, y0 = _step_change(maps, scales, lrs, jnp.asarray(x, dt), jnp.asarray(y, dt), jnp.asarray(precision, dt),
                          jnp.asarray(eps, dt), algo == "pc")
    return float(dy), float(y0)


def scaling_sweep(x: jax.Array, y: jax.Array, widths, hidden_layers, *, params=("sp", "mupc"), seeds: int = 1,
                  lr: float = 1e-2) -> list[dict]:
    """One row per (param, H, N, seed) of linear residual PCNs (:func:`pclab.theory.random_pcn`, dtype
    of x): the PC–BP cosine at the exact equilibrium (``cosine``), F*/L (``energy_over_loss``),
    ‖S − I‖₂ (``s_minus_i``), and rms Δŷ after one Adam step of rate ``lr`` for PC with the
    unscaled rate (``step_change``) and with the parameterisation's per-layer factors
    (``step_change_scaled``; equal for SP), with rms ŷ at init (``output_rms``)."""
    if seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not valid; expected an integer >= 1")
    dt = jnp.result_type(x)
    rows = []
    for param in params:
        for h in hidden_layers:
            for n in widths:
                for s in range(seeds):
                    model = random_pcn(s, x.shape[1], n, h + 1, y.shape[1], param=param, skips=True, dtype=dt)
                    maps = layer_maps(model)
                    dy, y0 = first_step_output_change(model, x, y, lr=lr)
                    dys, _ = first_step_output_change(model, x, y, lr=lr,
                                                      lr_scales=get_param(param).lr_scales(n, h + 1, True))
                    rows.append(dict(param=param, hidden_layers=h, width=n, seed=s,
                                     cosine=pc_bp_alignment(model, x, y).cosine,
                                     energy_over_loss=float(energy_loss_ratio(maps, x, y)),
                                     s_minus_i=float(rescaling_deviation(maps)), step_change=dy,
                                     step_change_scaled=dys, output_rms=y0))
    return rows
