r"""Reproductions for the deep-linear landscape (arXiv 2107.13289) and the L^p approximation rates
(arXiv 2206.04360): ``pclab reproduce dln-landscape`` and ``pclab reproduce approx-rates``.

Each ``fn(out, quick) -> dict`` writes PNG + CSV + ``summary.json`` under ``out`` and returns the
summary. ``dln-landscape`` runs in float64 inside ``jax.enable_x64(True)``; ``approx-rates``
trains in the default float32. ``quick=True`` runs in well under 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pclab.io import atomic_write_csv, atomic_write_json
from pclab.report.figures import line_plot, panels, save_figure
from pclab.theory import approximation as AP
from pclab.theory import dln, relu_fit

from .registry import register

KIND_STYLE = {"global_minimum": ("C2", "o"), "strict_saddle": ("C3", "v"), "non_strict_saddle": ("C0", "s"),
              "not_critical": ("C7", "x")}
EIGENVALUES, NOISE = (9.0, 4.0, 1.0), 0.5
GD = {2: (1e-6, 3000, 3000), 3: (1e-2, 20000, 60000), 4: (0.2, 20000, 60000)}  # H: (init scale, quick, full steps)


def _label(S) -> str:
    return "{" + ",".join(str(i) for i in sorted(S)) + "}"


def _points(X, Y, H: int, quick: bool):
    """(construction, S, weights) for every S, plus rank-inflated variants of the initial segments."""
    widths = (3,) * (H - 1)
    key = jax.random.PRNGKey(10 + H)
    for S in dln.critical_values(X, Y, widths):
        yield "gauge", S, dln.critical_point(X, Y, widths, S, key)
        if not quick:
            yield "balanced", S, dln.critical_point(X, Y, widths, S, key, balanced=True)
        if H >= 3 and S == frozenset(range(len(S))) and len(S) <= 2:
            for extra in ((1, 0), (0, 1)):
                yield f"extra rank {extra}", S, dln.critical_point(X, Y, widths, S, key, extra_rank=extra)


@register("dln-landscape", "Deep linear networks: every critical point (one per S) with its value, kind and "
          "Hessian spectrum (H = 2, 3[, 4]), and gradient descent plateaus at the predicted critical values")
def dln_landscape(out: Path, quick: bool) -> dict:
    out = Path(out)
    depths = (2, 3) if quick else (2, 3, 4)
    seeds = (0,) if quick else (0, 1, 2)
    rows, spectra, gd_rows, plateau_rows, summary, curves, segments = [], [], [], [], {}, {}, {}
    with jax.enable_x64(True):
        X, Y = dln.planted_data(jax.random.PRNGKey(0), 4, 3, 16, EIGENVALUES, noise=NOISE, dtype=jnp.float64)
        for H in depths:
            values = dln.critical_values(X, Y, (3,) * (H - 1))
            for construction, S, w in _points(X, Y, H, quick):
                c = dln.classify(w, X, Y)
                rows.append(dict(H=H, construction=construction, size=len(S), predicted_value=values[S],
                                 value_error=c.value - values[S], rel_grad=c.grad_norm / max(c.grad_scale, 1e-300),
                                 **c.as_row()))
                spectra += [dict(H=H, construction=construction, subset=_label(S), index=i, eigenvalue=float(e))
                            for i, e in enumerate(c.hessian_eigenvalues)]
            mine = [r for r in rows if r["H"] == H]
            summary[f"H={H}"] = dict(
                kinds=dict(Counter(f"{r['kind']}" for r in mine if r["construction"] == "gauge")),
                global_minima=sorted({r["subset"] for r in mine if r["kind"] == "global_minimum"}),
                non_strict=sorted({r["subset"] for r in mine if r["kind"] == "non_strict_saddle"}),
                predicted_agree=all(r["predicted"] in (None, r["kind"]) for r in mine),
                max_value_error=max(abs(r["value_error"]) for r in mine),
                max_rel_grad=max(r["rel_grad"] for r in mine))
            segments[H] = [values[frozenset(range(k))] for k in range(4)]
            scale, steps = GD[H][0], GD[H][1 if quick else 2]
            for seed in seeds:
                w0 = dln.dln_init(jax.random.PRNGKey(100 + seed), 4, 3, (3,) * (H - 1), scale, jnp.float64)
                _, losses = dln.gradient_descent(w0, X, Y, 0.005, steps)
                visits = dln.visited_critical_values(losses, values)
                curves[(H, seed)] = losses
                plateau_rows += [dict(H=H, seed=seed, subset=_label(v["subset"]), value=v["value"], first=v["first"],
                                      last=v["last"], mean_loss=v["mean_loss"]) for v in visits]
                keep = np.unique(np.geomspace(1, steps + 1, 400).astype(int) - 1)
                gd_rows += [dict(H=H, seed=seed, step=int(t), loss=float(losses[t])) for t in keep]
                summary[f"GD H={H} seed={seed}"] = dict(
                    plateaus=[_label(v["subset"]) for v in visits], final_loss=float(losses[-1]),
                    min_value=min(values.values()), init_scale=scale, steps=steps)
    _dln_figure(rows, spectra, curves, segments, depths, out / "dln_landscape.png")
    atomic_write_csv(out / "dln_critical_points.csv", rows)
    atomic_write_csv(out / "dln_hessian_spectra.csv", spectra)
    atomic_write_csv(out / "dln_gd.csv", gd_rows)
    atomic_write_csv(out / "dln_plateaus.csv", plateau_rows)
    summary["eigenvalues"], summary["noise"] = list(EIGENVALUES), NOISE
    atomic_write_json(out / "summary.json", summary)
    return summary


def _dln_figure(rows, spectra, curves, segments, depths, path):
    n = len(depths)
    fig, axes = panels(3 * n, ncols=n, panel_size=(4.6, 3.6),
                       suptitle="Deep linear network, d_x = 4, d_y = 3, widths 3: critical points, Hessians and GD")
    for j, H in enumerate(depths):
        ax = axes[j]
        for r in (r for r in rows if r["H"] == H):
            colour, marker = KIND_STYLE[r["kind"]]
            offset = {"gauge": 0.0, "balanced": 0.1}.get(r["construction"], 0.2)
            size = r["size"]
            ax.scatter(size + offset, r["value"], color=colour, marker=marker,
                       facecolors="none" if r["construction"].startswith("extra") else colour)
            if r["construction"] == "gauge":
                ax.annotate(r["subset"], (size, r["value"]), textcoords="offset points", xytext=(-28, 0), fontsize=7)
        for kind, (colour, marker) in KIND_STYLE.items():
            ax.scatter([], [], color=colour, marker=marker, label=kind.replace("_", " "))
        ax.set(title=f"H = {H}: critical values tr(YY^T) - sum_S lambda", xlabel="|S| (hollow: extra rank)",
               ylabel="loss", xlim=(-0.5, 3.6))
        ax.legend(fontsize=7)
        ax = axes[n + j]
        for r in (r for r in rows if r["H"] == H and r["construction"] == "gauge"):
            ev = [s["eigenvalue"] for s in spectra if s["H"] == H and s["construction"] == "gauge"
                  and s["subset"] == r["subset"]]
            ax.plot(ev, color=KIND_STYLE[r["kind"]][0], lw=1, marker=".", ms=3)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set(title=f"H = {H}: Hessian spectrum at each critical point", xlabel="eigenvalue index",
               ylabel="eigenvalue (symlog)")
        ax.grid(True, alpha=0.3)
        ax = axes[2 * n + j]
        series = {f"seed {s}": (np.arange(1, len(l) + 1), l) for (h, s), l in curves.items() if h == H}
        line_plot(ax, None, series, title=f"H = {H}: GD from small init (lr 0.005)", xlabel="step + 1",
                  ylabel="loss", logx=True, logy=True)
        for k, v in enumerate(segments[H]):
            ax.axhline(v, color="k", ls="--", lw=0.6)
            ax.annotate(_label(range(k)), (1.2, v), fontsize=7, va="bottom")
    save_figure(fig, path)


TARGETS = (("holder d=1", "holder", 1), ("holder d=2", "holder", 2), ("monotone d=1", "monotone", 1))
ALPHA = 0.5


def _target(kind: str, d: int):
    return relu_fit.weierstrass(ALPHA, d) if kind == "holder" else relu_fit.monotone_step()


def _shape(kind: str, d: int, p: float, W: int, L: int) -> float:
    return AP.holder_rate(W, L, ALPHA, d, p) if kind == "holder" else AP.monotone_rate(W, L, d, p)


@register("approx-rates", "ReLU networks of growing size fitted to Hölder (d = 1, 2) and monotone targets: "
          "L^1, L^2, L^inf errors vs W*L beside the lower-bound rate shapes of arXiv 2206.04360")
def approx_rates(out: Path, quick: bool) -> dict:
    out = Path(out)
    widths = (4, 8, 16, 32) if quick else (4, 8, 16, 32, 64)
    depths = (3,) if quick else (3, 4)
    steps, n_eval = (2000, 20000) if quick else (10000, 200000)
    ps = (1.0, 2.0, math.inf)
    rows, slopes = [], []
    for t, (name, kind, d) in enumerate(TARGETS):
        f = _target(kind, d)
        n_train = (1024 if d == 1 else 2048) * (1 if quick else 2)
        x_train = jax.random.uniform(jax.random.PRNGKey(t), (n_train, d))
        for L in depths:
            for fit in relu_fit.fit_relu_family(jax.random.PRNGKey(100 + t), f, x_train, widths, L, steps):
                for p in ps:
                    e = AP.lp_error(f, fit, p, AP.uniform_sampler(d), n_eval, jax.random.PRNGKey(7))
                    rows.append(dict(target=name, d=d, depth=L, width=len(fit.params[0][1]), n_params=fit.n_params,
                                     WL=fit.n_params * L, p=p, error=e.value, stderr=e.stderr,
                                     shape=_shape(kind, d, p, fit.n_params, L), train_mse=float(fit.losses[-1])))
        for p in ps:
            mine = [r for r in rows if r["target"] == name and r["p"] == p]
            first = min(mine, key=lambda r: r["WL"])
            for r in mine:
                r["rate_fitted_at_smallest"] = first["error"] * r["shape"] / first["shape"]
            exponent = AP.holder_exponent(ALPHA, d, p) if kind == "holder" else AP.monotone_exponent(d, p)
            wl, err = [r["WL"] for r in mine], [r["error"] for r in mine]
            slopes.append(dict(target=name, p=p, fitted_slope=AP.loglog_slope(wl, err), predicted_slope=0.0 - exponent,
                               predicted_slope_with_log=AP.loglog_slope(wl, [r["shape"] for r in mine]),
                               error_smallest=first["error"], error_largest=max(mine, key=lambda r: r["WL"])["error"],
                               n_networks=len(mine)))
    _approx_figure(rows, ps, out / "approx_rates.png")
    atomic_write_csv(out / "approx_rates.csv", rows)
    atomic_write_csv(out / "approx_rates_slopes.csv", slopes)
    summary = dict(alpha=ALPHA, widths=list(widths), depths=list(depths), steps=steps, n_eval=n_eval,
                   slopes={f"{s['target']} p={s['p']:g}": dict(fitted=s["fitted_slope"], predicted=s["predicted_slope"],
                                                              smallest=s["error_smallest"], largest=s["error_largest"])
                           for s in slopes})
    atomic_write_json(out / "summary.json", summary)
    return summary


def _approx_figure(rows, ps, path):
    fig, axes = panels(len(TARGETS), ncols=len(TARGETS), panel_size=(4.8, 3.8),
                       suptitle="Trained ReLU nets (Adam, BP) vs lower-bound rate shapes, fitted at the smallest net")
    for ax, (name, kind, d) in zip(axes, TARGETS):
        for i, p in enumerate(ps):
            mine = sorted((r for r in rows if r["target"] == name and r["p"] == p), key=lambda r: r["WL"])
            wl = [r["WL"] for r in mine]
            label = "inf" if math.isinf(p) else f"{p:g}"
            ax.errorbar(wl, [r["error"] for r in mine], yerr=[0 if math.isnan(r["stderr"]) else r["stderr"]
                                                              for r in mine],
                        ls="none", marker="o", ms=4, color=f"C{i}", label=f"L^{label} error")
            ax.plot(wl, [r["rate_fitted_at_smallest"] for r in mine], ls="--", color=f"C{i}", lw=0.9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(title=f"{name} (dashed: rate shape)", xlabel="W * L", ylabel="||f - g||")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
