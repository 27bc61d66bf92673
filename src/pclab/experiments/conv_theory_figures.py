r"""Reproductions for orthogonal convolutions (arXiv 2108.05623) and the gradient-flow geometry of
linear convolutional networks (arXiv 2507.06367): ``pclab reproduce orthconv-existence``,
``orthconv-tradeoff`` and ``lcn-flow``.

Each ``fn(out, quick) -> dict`` writes PNG + CSV + ``summary.json`` under ``out`` and returns the
summary. The theory parts run in float64 inside ``jax.enable_x64(True)``; the conv nets train in
float32. ``quick=True`` runs in well under 2 minutes on 2 CPU cores (digits instead of
Fashion-MNIST, smaller grids).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.colors import ListedColormap

from pclab.data import load_dataset
from pclab.io import atomic_write_csv, atomic_write_json
from pclab.nn.orthogonal_net import certify, orth_convnet, train_classifier
from pclab.report.figures import compact_number, line_plot, panels, save_figure
from pclab.theory import orthogonal as O
from pclab.theory import orthogonal_fit as OF

from .lcn_figure import lcn_flow  # noqa: F401  (registers lcn-flow)
from .registry import register

REACHED = 1e-8  # "GD reached ~0": L_orth below this after Adam + Gauss-Newton polish (float64)


@register("orthconv-existence", "Feasibility map of orthogonal circular convolutions over (M, S) for fixed C, k "
          "(rule of arXiv 2108.05623) with where Adam + Gauss-Newton on L_orth reached 0; 'same'/'valid' probed")
def orthconv_existence(out: Path, quick: bool) -> dict:
    out = Path(out)
    C, k = (1, 3) if quick else (2, 3)
    strides = (1, 2, 4) if quick else (1, 2, 3, 4, 5)
    Ms = (1, 2, 4, 6, 9, 10, 16) if quick else (1, 2, 4, 8, 12, 16, 18, 19, 24, 32, 36, 50)
    restarts, steps = (1, 600) if quick else (3, 3000)
    probes = [(2, 3, 3, 1)] + ([] if quick else [(1, 2, 3, 1), (2, 1, 3, 1), (1, 5, 3, 2), (2, 8, 3, 2)])
    paddings = ("same", "valid") if quick else ("circular", "same", "valid")
    rows, best, traces = [], np.zeros((len(Ms), len(strides))), {}
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        for j, S in enumerate(strides):
            fit = OF.fit_orthogonal_kernels(key, C, Ms, k, S, restarts=restarts, steps=steps,
                                            polish_steps=10 if quick else 30)
            for i, M in enumerate(Ms):
                exists = O.orthogonal_conv_exists(C, M, k, S)
                best[i, j] = float(jnp.min(fit.loss[i]))
                traces[(M, S)] = np.asarray(fit.trace[i, int(jnp.argmin(fit.loss[i]))])
                rows += [dict(C=C, k=k, stride=S, M=M, case=O.orthogonality_case(C, M, S), rule_exists=exists,
                              restart=r, adam_loss=float(fit.first_order[i, r]), final_loss=float(fit.loss[i, r]),
                              reached=bool(fit.loss[i, r] < REACHED)) for r in range(restarts)]
        probe_rows = []
        for arch in probes:
            for pad in paddings:
                vals = OF.probe_boundary(jax.random.PRNGKey(1), *arch, n=8, padding=pad, restarts=restarts,
                                         steps=steps)
                probe_rows.append(dict(C=arch[0], M=arch[1], k=arch[2], stride=arch[3], n=8, padding=pad,
                                       circular_rule=O.orthogonal_conv_exists(*arch), best_error=float(jnp.min(vals))))
    reached = best < REACHED
    rule = np.array([[O.orthogonal_conv_exists(C, M, k, S) for S in strides] for M in Ms])
    fig, axes = panels(3, ncols=3, panel_size=(5.0, 4.2),
                       suptitle=f"Orthogonal circular convolutions, C = {C}, k = {k} (arXiv 2108.05623)")
    ax = axes[0]
    ax.imshow(rule.astype(float), origin="lower", aspect="auto", cmap=ListedColormap(["#f4b6b6", "#b9e4b9"]),
              vmin=0, vmax=1)
    for i in range(len(Ms)):
        for j in range(len(strides)):
            ax.text(j, i, compact_number(max(best[i, j], 0.0)) + (" ●" if reached[i, j] else ""), ha="center",
                    va="center", fontsize=7)
    ax.set_xticks(range(len(strides)), [str(s) for s in strides])
    ax.set_yticks(range(len(Ms)), [str(m) for m in Ms])
    ax.set_xlabel("stride S")
    ax.set_ylabel("output channels M")
    ax.set_title("rule: green = exists, red = not; text: min L_orth\n● = optimiser reached < 1e-8", fontsize=9)
    show = [(M, S) for M, S in [(Ms[1], strides[0]), (Ms[-1], strides[0]), (Ms[-1], strides[-1]),
                                 (Ms[len(Ms) // 2], strides[-1])] if (M, S) in traces]
    line_plot(axes[1], None, {f"M={M}, S={S} ({'exists' if O.orthogonal_conv_exists(C, M, k, S) else 'none'})":
                              (np.arange(steps), np.maximum(traces[M, S], 1e-18)) for M, S in dict.fromkeys(show)},
              title="Adam on L_orth (before the Gauss-Newton polish)", xlabel="step", ylabel="L_orth", logy=True,
              legend_loc="upper right")
    labels = [f"({r['C']},{r['M']},{r['k']},{r['stride']})" for r in probe_rows[::len(paddings)]]
    width = 0.8 / len(paddings)
    for p, pad in enumerate(paddings):
        vals = [max(r["best_error"], 1e-18) for r in probe_rows if r["padding"] == pad]
        axes[2].bar(np.arange(len(labels)) + p * width, vals, width, label=pad)
    axes[2].set_yscale("log")
    axes[2].set_xticks(np.arange(len(labels)) + width * (len(paddings) - 1) / 2, labels, fontsize=8)
    axes[2].set_xlabel("(C, M, k, S), n = 8")
    axes[2].set_ylabel("min ||E||_F^2 per position")
    axes[2].set_title("boundaries probed numerically (no rule encoded)", fontsize=9)
    axes[2].legend(fontsize=8)
    atomic_write_csv(out / "orthconv_existence.csv", rows)
    atomic_write_csv(out / "orthconv_boundaries.csv", probe_rows)
    save_figure(fig, out / "orthconv_existence.png")
    disagree = [dict(M=M, stride=S, rule=bool(rule[i, j]), best_loss=best[i, j])
                for i, M in enumerate(Ms) for j, S in enumerate(strides) if rule[i, j] != reached[i, j]]
    summary = dict(C=C, k=k, strides=list(strides), Ms=list(Ms), restarts=restarts, cells=int(rule.size),
                   agree=int(np.sum(rule == reached)), disagreements=disagree,
                   infeasible_min_loss=float(best[~rule].min()) if (~rule).any() else None,
                   boundaries={f"({r['C']},{r['M']},{r['k']},{r['stride']}) {r['padding']}": r["best_error"]
                               for r in probe_rows})
    atomic_write_json(out / "summary.json", summary)
    return summary


def _layer_errors(model) -> tuple[list[float], list[float], list[float]]:
    errs = [conv.orthogonality_errors(n, method="fft") for conv, n in zip(model.convs, model.sizes())]
    bounds = [float(conv.spectral_error_bound()) for conv in model.convs]
    return [float(e.frobenius) for e in errs], [float(e.spectral) for e in errs], bounds


@register("orthconv-tradeoff", "A small conv net of OrthogonalConv layers trained by BP for several L_orth weights: "
          "accuracy vs orthogonality error and vs the certified l2 radius (Fashion-MNIST; digits in quick mode)")
def orthconv_tradeoff(out: Path, quick: bool) -> dict:
    out = Path(out)
    name = "digits" if quick else "fashion-mnist"
    lams = (0.0, 0.01, 0.1, 1.0, 10.0) if quick else (0.0, 0.001, 0.01, 0.1, 1.0, 10.0)
    epochs, batch, lr = (8, 64, 1e-2) if quick else (3, 128, 3e-3)
    eps = (0.05, 0.1, 0.25, 0.5, 1.0)
    ds = load_dataset(name, normalise=False)  # pixels in [0, 1]: radii are in pixel units
    n = ds.image_shape[0]
    x, y = jnp.asarray(ds.x_train.reshape(-1, 1, n, n)), jnp.asarray(ds.y_train)
    xt, yt = jnp.asarray(ds.x_test.reshape(-1, 1, n, n)), jnp.asarray(ds.y_test)
    rows, init = [], orth_convnet(jax.random.PRNGKey(0), 1, n)  # every weight starts from the same net
    for lam in lams:
        model, losses = train_classifier(init, x, y, key=jax.random.PRNGKey(1), lam=lam, epochs=epochs,
                                         batch_size=batch, lr=lr)
        cert = certify(model, xt, yt)
        fro, spec, bound = _layer_errors(model)
        rows.append(dict(lam=lam, test_accuracy=cert.accuracy, lipschitz=cert.lipschitz,
                         frobenius_mean=float(np.mean(fro)), spectral_max=float(np.max(spec)),
                         spectral_bound_max=float(np.max(bound)), frobenius=";".join(f"{e:.6g}" for e in fro),
                         spectral=";".join(f"{e:.6g}" for e in spec),
                         median_radius=float(np.median(cert.radius)), final_loss=float(losses[-1]),
                         **{f"certified_{e}": cert.certified_accuracy(e) for e in eps}))
    fig, axes = panels(4, ncols=4, panel_size=(4.4, 3.6),
                       suptitle=f"Accuracy vs orthogonality vs certified robustness ({name}, {epochs} epochs, BP)")
    acc = [r["test_accuracy"] for r in rows]
    for ax, key, label in ((axes[0], "frobenius_mean", "mean orthogonality error ||E||_F over layers"),
                           (axes[1], "spectral_max", "max spectral error over layers"),
                           (axes[2], "certified_0.1", "certified accuracy at eps = 0.1")):
        xs = [max(r[key], 1e-12) for r in rows]
        ax.plot(xs, acc, "o-")
        for xv, a, lam in zip(xs, acc, lams):
            ax.annotate(f"λ={lam:g}", (xv, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log" if key != "certified_0.1" else "linear")
        ax.set(xlabel=label, ylabel="test accuracy")
        ax.grid(True, alpha=0.3)
    line_plot(axes[3], list(eps), {f"λ={r['lam']:g}": [r[f"certified_{e}"] for e in eps] for r in rows},
              title="certified accuracy: margin / (√2 Lip) > eps", xlabel="l2 radius eps (pixels in [0, 1])",
              ylabel="certified accuracy")
    atomic_write_csv(out / "orthconv_tradeoff.csv", rows)
    save_figure(fig, out / "orthconv_tradeoff.png")
    summary = dict(dataset=name, epochs=epochs, lams=list(lams),
                   results={f"lam={r['lam']:g}": {k: r[k] for k in ("test_accuracy", "frobenius_mean", "spectral_max",
                                                                   "lipschitz", "median_radius", "certified_0.1")}
                            for r in rows})
    atomic_write_json(out / "summary.json", summary)
    return summary
