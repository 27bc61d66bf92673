r"""``pclab reproduce lcn-flow``: gradient flow of linear convolutional networks in parameter and in
function space (arXiv 2507.06367), registered from :mod:`pclab.experiments.conv_theory_figures`.

Shows (float64): the parameter flow ẇ = −∇_w ℓ(μ(w)) and the function-space flow v̇ = −K ∇_v ℓ(v)
giving the same v(t) (1-D, strides (2, 2, 1); 2-D, stride 1, filters 2×2 and 3×3); the invariants
δ_l along the flow, whose RK4 drift shrinks like dt⁴; the D = 1, stride-1 counterexample (equal v and
δ, different K, so the two parameter flows from it drift apart); and the metric at fibre points
found by Levenberg–Marquardt from random restarts (one K per (v, δ) except at stride 1 with swappable
factors).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pclab.io import atomic_write_csv, atomic_write_json
from pclab.report.figures import line_plot, panels, save_figure
from pclab.theory import lcn as LCN
from pclab.theory import lcn_flow as LF
from pclab.theory._random import normal_draw

from .registry import register

SETTINGS = {"1-D, strides (2, 2, 1)": (((3,), (2,), (2,)), (2, 2, 1)),
            "2-D, stride 1, 2x2 * 3x3": (((2, 2), (3, 3)), (1, 1))}
FIBRES = {"1-D, stride 1": (((2,), (2,)), (1, 1)), "1-D, stride 2": (((2,), (2,)), (2, 1)),
          "2-D, stride 1, 2x2 * 2x2": (((2, 2), (2, 2)), (1, 1)),
          "2-D, stride 1, 2x2 * 2x3": (((2, 2), (2, 3)), (1, 1)),
          "1-D, strides (2, 3, 1)": (((3,), (2,), (2,)), (2, 3, 1))}


def _random_filters(key, shapes, scale=1.0):
    return [scale * normal_draw(jax.random.fold_in(key, i), sh) / np.sqrt(np.prod(sh)) for i, sh in enumerate(shapes)]


class _Quadratic:
    """ℓ(v) = ½‖v − v*‖² (hashable by identity, so flows with it reuse their compiled integrator)."""

    def __init__(self, target):
        self.target = target

    def __call__(self, v):
        return 0.5 * jnp.sum((v - self.target) ** 2)


def _restart_metrics(shapes, strides, restarts: int, key):
    """Relative ‖K(w') − K(w)‖_F at fibre points w' of (μ(w), δ(w)) found from random starts."""
    res, dk = LCN.fibre_metrics(_random_filters(key, shapes, 2.0), strides, jax.random.fold_in(key, 1), restarts)
    return np.asarray(res), np.asarray(dk)


@register("lcn-flow", "Linear conv nets: parameter- vs function-space gradient flow, conserved invariants, "
          "the D = 1 stride-1 counterexample and the metric on fibres (arXiv 2507.06367)")
def lcn_flow(out: Path, quick: bool) -> dict:
    out = Path(out)
    T, rtol, restarts = (2.0, 1e-9, 16) if quick else (8.0, 1e-11, 48)
    ts = np.linspace(0.0, T, 41)
    fibres = dict(list(FIBRES.items())[:4]) if quick else FIBRES
    rows, summary, flows = [], {}, {}
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        for name, (shapes, strides) in SETTINGS.items():
            w0 = _random_filters(key, shapes)
            loss = _Quadratic(normal_draw(jax.random.fold_in(key, 7), LCN.end_to_end_filter(w0, strides).shape))
            p = LF.parameter_flow(loss, w0, strides, ts, rtol=rtol, atol=rtol * 1e-2)
            f = LF.function_space_flow(loss, w0, strides, ts, rtol=rtol, atol=rtol * 1e-2)
            gap = np.asarray(jnp.max(jnp.abs(p.v - f.v).reshape(len(ts), -1), axis=1))
            flows[name] = (p, f, gap)
            summary[name] = dict(max_flow_gap=float(gap.max()), loss_start=float(p.loss[0]), loss_end=float(p.loss[-1]),
                                 max_invariant_drift=float(jnp.max(jnp.abs(p.invariants - p.invariants[0]))),
                                 steps_parameter=p.steps, steps_function=f.steps)
            rows += [dict(setting=name, t=float(t), loss_parameter=float(p.loss[i]), loss_function=float(f.loss[i]),
                          flow_gap=float(gap[i])) for i, t in enumerate(ts)]
        shapes, strides = SETTINGS["1-D, strides (2, 2, 1)"]
        w0 = _random_filters(key, shapes)
        loss = _Quadratic(normal_draw(jax.random.fold_in(key, 7), LCN.end_to_end_filter(w0, strides).shape))
        drift = {}
        for dt in (0.05, 0.025, 0.0125):
            p = LF.parameter_flow(loss, w0, strides, ts, adaptive=False, dt0=dt)
            drift[dt] = np.asarray(jnp.max(jnp.abs(p.invariants - p.invariants[0]), axis=1))
        summary["invariant_drift_fixed_step"] = {f"dt={dt}": float(d.max()) for dt, d in drift.items()}
        a, b = 0.5, -1.5
        w, w_swap = LCN.swapped_factors(a, b)
        cex_loss = {1: _Quadratic(jnp.array([0.3, -1.0, 2.0])), 2: _Quadratic(jnp.array([0.3, -1.0, 2.0, 0.5]))}
        cex = {s: [LF.parameter_flow(cex_loss[s], pt, (s, 1), ts, rtol=rtol, atol=rtol * 1e-2) for pt in pair]
               for s, pair in ((1, (w, w_swap)), (2, (w, [-w[0], -w[1]])))}
        k_gap = float(jnp.linalg.norm(LCN.metric(w, (1, 1)) - LCN.metric(w_swap, (1, 1))))
        v_gap = {s: np.asarray(jnp.linalg.norm((pa.v - pb.v).reshape(len(ts), -1), axis=1))
                 for s, (pa, pb) in cex.items()}
        summary["counterexample"] = dict(a=a, b=b, v_equal=float(jnp.max(jnp.abs(
            LCN.end_to_end_filter(w, (1, 1)) - LCN.end_to_end_filter(w_swap, (1, 1))))),
            delta_equal=float(jnp.max(jnp.abs(LCN.invariants(w) - LCN.invariants(w_swap)))), K_difference=k_gap,
            v_divergence_end=float(v_gap[1][-1]))
        rows += [dict(setting="counterexample, stride 1", t=float(t), flow_gap=float(v_gap[1][i]))
                 for i, t in enumerate(ts)]
        fib_rows, fib = [], {}
        for i, (name, (shapes, strides)) in enumerate(fibres.items()):
            res, dk = _restart_metrics(shapes, strides, restarts, jax.random.fold_in(key, 50 + i))
            ok = res < 1e-10
            fib[name] = dk[ok]
            fib_rows += [dict(setting=name, restart=r, residual=float(res[r]), converged=bool(ok[r]),
                              K_rel_difference=float(dk[r])) for r in range(restarts)]
            summary[f"fibre {name}"] = dict(converged=int(ok.sum()), max_K_rel_difference=float(dk[ok].max())
                                            if ok.any() else None)
    fig, axes = panels(5, ncols=3, panel_size=(5.0, 3.8),
                       suptitle="Gradient flow of linear conv nets: parameter vs function space (arXiv 2507.06367)")
    p, f, _ = flows["1-D, strides (2, 2, 1)"]
    vp, vf = np.asarray(p.v), np.asarray(f.v)
    for j in range(vp.shape[1]):
        axes[0].plot(ts, vp[:, j], color=f"C{j % 10}", lw=1)
        axes[0].plot(ts[::4], vf[::4, j], "o", mfc="none", ms=4, color=f"C{j % 10}")
    axes[0].set(title="1-D, strides (2,2,1): v(t), lines = parameter flow,\nmarkers = function-space flow",
                xlabel="t", ylabel="end-to-end filter coefficients")
    line_plot(axes[1], ts, {name: np.maximum(g, 1e-17) for name, (_, _, g) in flows.items()},
              title="max |v_param(t) - v_function(t)|", xlabel="t", ylabel="gap", logy=True)
    line_plot(axes[2], ts, {f"RK4, dt = {dt}": np.maximum(d, 1e-17) for dt, d in drift.items()},
              title="invariant drift max_l |δ_l(t) - δ_l(0)| (1-D)", xlabel="t", ylabel="drift", logy=True)
    line_plot(axes[3], ts, {"stride 1: w vs swapped w'": np.maximum(v_gap[1], 1e-17),
                            "stride 2: w vs -w (same fibre)": np.maximum(v_gap[2], 1e-17)},
              title=f"equal (v, δ) at t = 0, a = {a}, b = {b}\n||K(w) - K(w')||_F = {k_gap:.3f}: ||v(t) - v'(t)||",
              xlabel="t", ylabel="||v - v'||", logy=True)
    for i, (name, dk) in enumerate(fib.items()):
        axes[4].plot(np.full(len(dk), i), np.maximum(dk, 1e-17), "o", mfc="none")
    axes[4].set_yscale("log")
    axes[4].set_xticks(range(len(fib)), [n.replace(", ", "\n") for n in fib], fontsize=7)
    axes[4].set(title="fibre points from random restarts: ||K' - K||_F / ||K||_F", ylabel="relative difference")
    atomic_write_csv(out / "lcn_flow.csv", rows)
    atomic_write_csv(out / "lcn_fibres.csv", fib_rows)
    save_figure(fig, out / "lcn_flow.png")
    atomic_write_json(out / "summary.json", summary)
    return summary
