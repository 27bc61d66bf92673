r"""Reproductions of the theory figures (arXiv 2408.11979 and 2602.07697): saddles, F* and the width/depth limit.

Each ``fn(out, quick) -> dict`` writes a PNG and a CSV under ``out`` and returns a summary.
Everything runs in float64 inside ``jax.enable_x64(True)`` (no global config change).
``quick=True`` shrinks widths, depths and step counts to run in well under 2 minutes on
2 CPU cores; the full settings follow the papers (e.g. N = 300 in ``energy-theory``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pclab
from pclab import theory as T
from pclab.io import atomic_write_csv
from pclab.learning import InferenceConfig
from pclab.report.figures import heatmap, line_plot, note, panels, save_figure

from .registry import register

F64 = jnp.float64


def _layer_shapes(d_in: int, width: int, hidden: int, d_out: int) -> list[tuple[int, int]]:
    return [(width, d_in)] + [(width, width)] * (hidden - 1) + [(d_out, width)]


@register("saddles-origin", "Hessian spectra of F* and of the MSE at the origin and at a zero-rank saddle, "
          "closed form vs autodiff, 1-4 hidden layers")
def saddles_origin(out: Path, quick: bool) -> dict:
    out = Path(out)
    hidden_layers = (1, 2, 3, 4)
    rows, summary = [], {}
    with jax.enable_x64(True):
        kx, ka = jax.random.split(jax.random.PRNGKey(0))
        x, y = T.gaussian_regression(kx, 64, 3, 2, dtype=F64)
        fig, axes = panels(8, ncols=4, panel_size=(4.0, 3.2),
                           suptitle="Hessian eigenvalues of F* (PC) and MSE (BP): autodiff (markers) vs closed form")
        for col, h in enumerate(hidden_layers):
            shapes = _layer_shapes(3, 4, h, 2)
            for r, point in enumerate(("origin", "zero-rank saddle")):
                ax = axes[r * 4 + col]
                if point != "origin" and h < 2:
                    note(ax, "zero-rank saddle with W_(L-1) = A\nneeds H >= 2", f"{point}, H = {h}")
                    continue
                a = None if point == "origin" else jax.random.normal(ka, shapes[-2], F64)
                w = T.zero_rank_point(shapes, a, F64)
                hf, hl = T.energy_hessian(w, x, y), T.loss_hessian(w, x, y)
                tf, tl = T.predicted_hessians(shapes, x, y, a)
                ev = {k: np.linalg.eigvalsh(np.asarray(m)) for k, m in
                      (("F* autodiff", hf), ("F* theory", tf), ("MSE autodiff", hl), ("MSE theory", tl))}
                rep = T.saddle_report(w, x, y)
                formula = float(T.predicted_lambda_min(y, a)) if (h >= 2 if a is None else h >= 3) else None
                idx = np.arange(len(ev["F* autodiff"]))
                line_plot(ax, idx, ev, title=f"{point}, H = {h} (P = {len(idx)})", xlabel="eigenvalue index",
                          ylabel="eigenvalue", legend=col == 0, legend_loc="lower right", styles={
                              "F* autodiff": dict(ls="none", marker="o", mfc="none", color="C0"),
                              "F* theory": dict(ls="none", marker="x", color="C0"),
                              "MSE autodiff": dict(ls="none", marker="s", mfc="none", ms=4, color="C1"),
                              "MSE theory": dict(ls="none", marker="+", color="C1")})
                if formula is not None:
                    label = (r"$-\lambda_{max}(\Sigma_{yy})$" if a is None
                             else r"$-\lambda_{max}(\Sigma_{yy})(1+\sigma_{max}(A)^2)$")
                    ax.axhline(formula, color="C3", ls="--", lw=0.8, label=label)
                    ax.legend(fontsize=7, loc="center right")
                row = dict(point=point, hidden_layers=h, n_params=len(idx),
                           energy_lambda_min=rep.energy_lambda_min, energy_lambda_min_theory=float(ev["F* theory"][0]),
                           energy_lambda_min_formula=formula, energy_lambda_max=rep.energy_lambda_max,
                           loss_lambda_min=rep.loss_lambda_min, loss_lambda_max=rep.loss_lambda_max,
                           energy_hessian_err=float(jnp.max(jnp.abs(hf - tf))),
                           loss_hessian_err=float(jnp.max(jnp.abs(hl - tl))),
                           energy_kind=rep.kind("energy"), loss_kind=rep.kind("loss"), tol=rep.tol)
                rows.append(row)
                summary[f"{point} H={h}"] = {k: row[k] for k in ("energy_lambda_min", "energy_lambda_min_formula",
                                                                  "energy_kind", "loss_kind")}
    atomic_write_csv(out / "saddles_origin.csv", rows)
    save_figure(fig, out / "saddles_origin.png")
    summary["max_hessian_err"] = max(max(r["energy_hessian_err"], r["loss_hessian_err"]) for r in rows)
    return summary


@register("saddles-escape", "PC (GD on F*) vs BP (GD on MSE) from a small init N(0, 5e-3^2): toy chains and "
          "a real data set (digits in quick mode)")
def saddles_escape(out: Path, quick: bool) -> dict:
    out = Path(out)
    chain_steps, real_steps = (1000, 300) if quick else (3000, 1000)
    exact = InferenceConfig(pclab.ExactSolver(), max_steps=1)
    iterative = InferenceConfig(T.momentum_solver(0.3), max_steps=300, rtol=1e-6)
    rows, summary, curves = [], {}, []
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        x, y = T.chain_data(key, 64, dtype=F64)
        for h in (1, 2, 3):
            model = T.small_init(pclab.mlp(key, 1, 1, h + 1, 1, act="linear", param="sp", dtype=F64),
                                 jax.random.PRNGKey(1))
            traces = {algo: T.train_trace(model, x, y, algo=algo, lr=0.2, steps=chain_steps, inference=exact)[1]
                      for algo in ("pc", "bp")}
            curves.append((f"linear chain, H = {h} (width 1)", traces))
        xr, yr, name = T.classification_data(256 if quick else 1000, mnist=not quick, dtype=F64)
        model = T.small_init(pclab.mlp(key, xr.shape[1], 32 if quick else 128, 3, 10, act="tanh", param="sp",
                                       dtype=F64), jax.random.PRNGKey(1))
        traces = {algo: T.train_trace(model, xr, yr, algo=algo, lr=0.2, steps=real_steps, inference=iterative)[1]
                  for algo in ("pc", "bp")}
        curves.append((f"{name}, tanh MLP H = 2, width {model.width}", traces))
    fig, axes = panels(len(curves), ncols=len(curves), suptitle="Escape from the origin: PC vs BP from init N(0, 0.005^2)")
    for ax, (title, tr) in zip(axes, curves):
        steps = np.arange(len(tr["pc"].loss))
        line_plot(ax, steps, {"PC (GD on F*)": tr["pc"].loss, "BP (GD on MSE)": tr["bp"].loss}, title=title,
                  xlabel="training step", ylabel="train loss (MSE)", logy=True)
        escape = {a: _first_below(tr[a].loss, 0.9 * tr[a].loss[0]) for a in ("pc", "bp")}
        summary[title] = dict(pc_final=float(tr["pc"].loss[-1]), bp_final=float(tr["bp"].loss[-1]),
                              pc_escape_step=escape["pc"], bp_escape_step=escape["bp"],
                              pc_infer_capped=int(np.sum(tr["pc"].status != 0)))
        rows += [dict(setting=title, step=int(s), pc_loss=float(tr["pc"].loss[s]), bp_loss=float(tr["bp"].loss[s]),
                      pc_infer_status=int(tr["pc"].status[s])) for s in steps]
    atomic_write_csv(out / "saddles_escape.csv", rows)
    save_figure(fig, out / "saddles_escape.png")
    return summary


def _json_float(v) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    v = float(v)
    return v if np.isfinite(v) else None


def _first_below(values: np.ndarray, threshold: float) -> int:
    """First index where ``values`` < threshold, or -1 (never)."""
    hits = np.nonzero(np.asarray(values) < threshold)[0]
    return int(hits[0]) if hits.size else -1


@register("energy-theory", "Numerically equilibrated energy (GD inference) vs the closed form F* during PC "
          "training of deep linear networks, H in {2, 5, 10}")
def energy_theory(out: Path, quick: bool) -> dict:
    out = Path(out)
    width, batch, steps = (32, 128, 40) if quick else (300, 256, 200)
    rows, summary, traces = [], {}, {}
    with jax.enable_x64(True):
        x, y, name = T.classification_data(batch, mnist=not quick, dtype=F64)
        for h in (2, 5, 10):
            model = pclab.mlp(jax.random.PRNGKey(h), x.shape[1], width, h + 1, 10, act="linear", param="sp", dtype=F64)
            lam_max = float(T.activity_eigenvalues(pclab.layer_maps(model))[-1])
            inference = InferenceConfig(pclab.GradientDescent(1.0 / lam_max), max_steps=20000, rtol=1e-7)
            _, tr = T.train_trace(model, x, y, algo="pc", lr=0.1, steps=steps, inference=inference, closed_form=True)
            traces[h] = tr
            gap = np.abs(tr.energy - tr.energy_theory) / tr.energy_theory
            summary[f"H={h}"] = dict(max_rel_gap=float(gap.max()), final_energy=float(tr.energy[-1]),
                                     max_infer_steps=int(tr.infer_steps.max()), all_converged=bool(np.all(tr.status == 0)))
            rows += [dict(hidden_layers=h, step=s, energy_numerical=float(tr.energy[s]),
                          energy_theory=float(tr.energy_theory[s]), rel_gap=float(gap[s]), loss=float(tr.loss[s]),
                          infer_steps=int(tr.infer_steps[s]), infer_status=int(tr.status[s])) for s in range(steps)]
    fig, axes = panels(2, ncols=2, panel_size=(5.0, 3.8),
                       suptitle=f"Equilibrated energy of deep linear PCNs on {name} (width {width})")
    steps_ax = np.arange(steps)
    series, styles = {}, {}
    for i, (h, tr) in enumerate(traces.items()):
        series[f"H={h} numerical (GD inference)"] = tr.energy
        series[f"H={h} theory F*"] = tr.energy_theory
        styles[f"H={h} numerical (GD inference)"] = dict(ls="none", marker="o", mfc="none", ms=4, color=f"C{i}")
        styles[f"H={h} theory F*"] = dict(color=f"C{i}")
    line_plot(axes[0], steps_ax, series, styles=styles, title="energy at equilibrium during PC training",
              xlabel="training step", ylabel="energy (batch mean)")
    line_plot(axes[1], steps_ax, {f"H={h}": np.maximum(np.abs(tr.energy - tr.energy_theory) / tr.energy_theory, 1e-17)
                                  for h, tr in traces.items()},
              title="relative gap |F_num - F*| / F*", xlabel="training step", ylabel="relative gap", logy=True)
    atomic_write_csv(out / "energy_theory.csv", rows)
    save_figure(fig, out / "energy_theory.png")
    return summary


@register("limits-alignment", "PC-BP gradient cosine over width x depth for linear and tanh μPC ResNets, with "
          "||S - I||_2; an SP arm (F*/L, one-step output change vs width) and the alignment during training")
def limits_alignment(out: Path, quick: bool) -> dict:
    out = Path(out)
    widths = (8, 32, 128, 512) if quick else (8, 32, 128, 512, 2048)
    depths = (1, 3, 7, 15) if quick else (1, 3, 7, 15, 31)
    t_widths, t_depths = ((8, 32, 128), (1, 3, 7)) if quick else ((8, 32, 128, 512), (1, 3, 7, 15, 31))
    with jax.enable_x64(True):
        x, y, name = T.classification_data(64, dtype=F64)
        lin = T.alignment_grid(x, y, widths, depths, act="linear", seeds=2 if quick else 3)
        tanh = T.alignment_grid(x, y, t_widths, t_depths, act="tanh", seeds=1 if quick else 3,
                                solver=T.momentum_solver(0.3))
    cos_lin, dev, cos_tanh = lin.cosine, lin.deviation, tanh.cosine
    rows_lin, rows_tanh = lin.rows, tanh.rows
    fig, axes = panels(4, ncols=2, panel_size=(5.2, 4.0),
                       suptitle=f"PC computes BP gradients when width >> depth (μPC ResNets, {name}, at init)")
    heatmap(axes[0], cos_lin, depths, widths, title="linear: cos(PC grad, BP grad)", xlabel="width N",
            ylabel="hidden layers H", cbar_label="cosine", vmax=1.0, fmt="{:.4f}")
    heatmap(axes[1], dev, depths, widths, title="linear: ||S - I||_2", xlabel="width N", ylabel="hidden layers H",
            cbar_label="||S - I||_2", log=True)
    heatmap(axes[2], cos_tanh, t_depths, t_widths, title="tanh: cos(PC grad, BP grad) (momentum GD inference)",
            xlabel="width N", ylabel="hidden layers H", cbar_label="cosine", vmax=1.0, fmt="{:.4f}")
    series = {f"H={h}: 1 - cos": (widths, np.maximum(1 - cos_lin[i], 1e-16)) for i, h in enumerate(depths)}
    series.update({f"H={h}: ||S-I||": (widths, dev[i]) for i, h in enumerate(depths)})
    styles = {f"H={h}: ||S-I||": dict(ls="--", color=f"C{i}") for i, h in enumerate(depths)}
    styles.update({f"H={h}: 1 - cos": dict(marker="o", color=f"C{i}") for i, h in enumerate(depths)})
    line_plot(axes[3], None, series, styles=styles, logx=True, logy=True, title="linear: 1 - cosine and ||S - I||_2",
              xlabel="width N", ylabel="value")
    atomic_write_csv(out / "limits_alignment.csv", rows_lin + rows_tanh)
    save_figure(fig, out / "limits_alignment.png")
    last = lambda grid, hs: {f"H={h}": _json_float(grid[i, -1]) for i, h in enumerate(hs)}  # noqa: E731
    summary = dict(linear_cosine_at_max_width=last(cos_lin, depths), linear_s_minus_i_at_max_width=last(dev, depths),
                   tanh_cosine_at_max_width=last(cos_tanh, t_depths),
                   tanh_all_converged=all(r["converged"] for r in rows_tanh))
    summary.update(_limits_sp_and_training(out, quick, widths))
    return summary


LIMITS_TRAIN = {True: dict(widths=(8, 32), checkpoints=(0, 25, 50, 100)),
                False: dict(widths=(8, 32, 128, 512), checkpoints=(0, 25, 50, 100, 200, 300, 500))}
LIMITS_LR = {"mupc": 1e-2, "sp": 1e-3}  # Adam; SP's the conventional small rate (mupc-depth's PC (SP) row)


def _limits_sp_and_training(out: Path, quick: bool, widths) -> dict:
    """limits-alignment's second figure: SP against μPC over width (linear ResNets, at init) and the
    PC-BP alignment along training (H = 3, exact inference, Adam, digits mini-batches of 64)."""
    hidden = (3,) if quick else (3, 7, 15)
    cfg = LIMITS_TRAIN[quick]
    exact = InferenceConfig(pclab.ExactSolver(), max_steps=1)
    with jax.enable_x64(True):
        x, y, name = T.classification_data(64, dtype=F64)
        pool_x, pool_y, _ = T.classification_data(512, dtype=F64)
        scale_rows = T.scaling_sweep(x, y, widths, hidden, seeds=1 if quick else 3)
        arms = [("mupc", n) for n in cfg["widths"]] + [("sp", cfg["widths"][-1])]
        training, train_rows = {}, []
        for param, n in arms:
            label = f"{'μPC' if param == 'mupc' else 'SP'}, N = {n}"
            model = T.random_pcn(0, x.shape[1], n, 4, y.shape[1], param=param, skips=True, dtype=F64)
            _, rec = T.train_with_probes(model, pool_x, pool_y, probe=T.alignment_probe(x, y),
                                         checkpoints=cfg["checkpoints"], optimizer=optax.adam(LIMITS_LR[param]),
                                         inference=exact, batch_size=64, progress=None, desc=label)
            training[label] = rec
            train_rows += [dict(arm=label, param=param, width=n, hidden_layers=3, lr=LIMITS_LR[param], step=r["step"],
                                train_loss=r["train_loss"], cosine=r["cosine"], energy_over_loss=r["energy_over_loss"],
                                s_minus_i=r["s_minus_i"]) for r in rec]

    def mean(param, h, key):
        return [float(np.mean([r[key] for r in scale_rows if (r["param"], r["hidden_layers"], r["width"]) ==
                               (param, h, n)])) for n in widths]

    fig, axes = panels(6, ncols=3, panel_size=(4.8, 3.7),
                       suptitle=f"SP vs μPC over width (linear ResNets, {name}, at init) and the alignment during "
                                f"training (H = 3, Adam, exact inference)")
    names = {"sp": "SP", "mupc": "μPC"}
    sty = {f"{names[p]} H={h}": dict(marker="o", color=f"C{i}", ls="-" if p == "mupc" else "--")
           for i, h in enumerate(hidden) for p in names}
    per = lambda key, f=lambda v: v: {f"{names[p]} H={h}": (widths, f(np.asarray(mean(p, h, key))))  # noqa: E731
                                      for h in hidden for p in names}
    line_plot(axes[0], None, per("cosine", lambda v: np.maximum(1 - v, 1e-16)), styles=sty, logx=True, logy=True,
              title="1 - cos(PC grad, BP grad)", xlabel="width N", ylabel="1 - cosine")
    line_plot(axes[1], None, per("energy_over_loss"), styles=sty, logx=True, title="F*/L (-> 1 when S -> I)",
              xlabel="width N", ylabel="F*/L", legend=False)
    line_plot(axes[2], None, per("s_minus_i"), styles=sty, logx=True, logy=True, title="||S - I||_2",
              xlabel="width N", ylabel="||S - I||_2", legend=False)
    steps_series = {f"{names[p]} H={h}": (widths, mean(p, h, "step_change")) for h in hidden for p in names}
    steps_series.update({f"μPC + Depth-μP lr H={h}": (widths, mean("mupc", h, "step_change_scaled")) for h in hidden})
    sty.update({f"μPC + Depth-μP lr H={h}": dict(marker="s", color=f"C{i}", ls=":") for i, h in enumerate(hidden)})
    line_plot(axes[3], None, steps_series, styles=sty, logx=True, logy=True,
              title="rms change of the output after one Adam step (lr 0.01)", xlabel="width N", ylabel="rms Δŷ")
    axes[3].legend(fontsize=6)
    for ax, key, title in ((axes[4], "cosine", "cos(PC grad, BP grad) during training"),
                           (axes[5], "s_minus_i", "||S - I||_2 during training")):
        line_plot(ax, None, {k: ([r["step"] for r in v], [r[key] for r in v]) for k, v in training.items()},
                  styles={k: dict(marker="o") for k in training}, title=title, xlabel="training step", ylabel=key,
                  logy=key == "s_minus_i")
    save_figure(fig, out / "limits_sp_training.png")
    atomic_write_csv(out / "limits_sp.csv", scale_rows)
    atomic_write_csv(out / "limits_training.csv", train_rows)
    growth = {f"{names[p]} H={h}": mean(p, h, "step_change")[-1] / mean(p, h, "step_change")[0]
              for h in hidden for p in names}
    growth.update({f"μPC + Depth-μP lr H={h}": mean("mupc", h, "step_change_scaled")[-1] /
                   mean("mupc", h, "step_change_scaled")[0] for h in hidden})
    return dict(
        sp_cosine_at_max_width={f"H={h}": mean("sp", h, "cosine")[-1] for h in hidden},
        sp_energy_over_loss_by_width={f"H={h}": mean("sp", h, "energy_over_loss") for h in hidden},
        mupc_energy_over_loss_by_width={f"H={h}": mean("mupc", h, "energy_over_loss") for h in hidden},
        step_change_growth_over_widths=growth,
        training={k: dict(cosine_init=v[0]["cosine"], cosine_final=v[-1]["cosine"], s_minus_i_init=v[0]["s_minus_i"],
                          s_minus_i_final=v[-1]["s_minus_i"], final_train_loss=v[-1]["train_loss"])
                  for k, v in training.items()},
    )


@register("inference-conditioning", "Condition number of the activity Hessian over width x depth for SP, SP + "
          "skips and μPC (linear nets)")
def inference_conditioning(out: Path, quick: bool) -> dict:
    out = Path(out)
    widths = (8, 16, 32, 64, 128) if quick else (16, 32, 64, 128, 256)
    depths = (2, 4, 8, 16) if quick else (2, 4, 8, 16, 32)
    settings = (("SP (no skips)", "sp", False), ("SP + skips", "sp", True), ("μPC", "mupc", True))
    rows, grids = [], {}
    with jax.enable_x64(True):
        for label, param, skips in settings:
            kappa = np.zeros((len(depths), len(widths)))
            for i, h in enumerate(depths):
                for j, n in enumerate(widths):
                    maps = T.random_layer_maps(0, 64, n, h + 1, 10, param=param, skips=skips)
                    ev = np.asarray(T.activity_eigenvalues(maps))
                    kappa[i, j] = ev[-1] / ev[0]
                    rows.append(dict(setting=label, hidden_layers=h, width=n, kappa=kappa[i, j],
                                     lambda_min=ev[0], lambda_max=ev[-1]))
            grids[label] = kappa
    fig, axes = panels(3, ncols=3, panel_size=(4.6, 3.8),
                       suptitle="Condition number of the activity Hessian of linear PCNs at init")
    lo = min(g.min() for g in grids.values())
    hi = max(g.max() for g in grids.values())
    for ax, (label, kappa) in zip(axes, grids.items()):
        heatmap(ax, kappa, depths, widths, title=f"{label}: kappa(H_z)", xlabel="width N", ylabel="hidden layers H",
                cbar_label="condition number", log=True, vmin=lo, vmax=hi)
    atomic_write_csv(out / "inference_conditioning.csv", rows)
    save_figure(fig, out / "inference_conditioning.png")
    return {label: {f"H={h}": float(g[i, -1]) for i, h in enumerate(depths)} for label, g in grids.items()}
