r"""Reproductions of what happens *during* training (arXiv 2505.13124 pathology 1; 2408.11979 §matrix
completion): ``pclab reproduce conditioning-training`` and ``pclab reproduce saddles-matrix-completion``.

Each ``fn(out, quick) -> dict`` only calls the library (:mod:`pclab.theory.training_probes`,
:mod:`pclab.theory.matrix_completion`), writes PNG + CSV + ``summary.json`` under ``out`` and returns
the summary. Both run in float64 inside ``jax.enable_x64(True)``. ``quick=True`` runs in about
2-3 minutes on 2 CPU cores; the full settings are larger (width, depth, steps).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pclab
from pclab import theory as T
from pclab.io import atomic_write_csv, atomic_write_json, atomic_write_text
from pclab.learning import InferenceConfig
from pclab.report.figures import line_plot, panels, save_figure
from pclab.theory import matrix_completion as MC
from pclab.theory import training_probes as TP

from .registry import register

F64 = jnp.float64

# Weight lr (Adam) and activity lr (GD) of the "PC (SP)" and "μPC" rows of ``mupc-depth``
# (pclab.experiments.mupc.VARIANTS); inference runs T = H = L − 1 GD steps (the μPC paper's T).
ARMS = (("linear", "sp", 1e-3, 0.1), ("linear", "mupc", 3e-2, 0.2), ("relu", "sp", 1e-3, 0.1),
        ("relu", "mupc", 3e-2, 0.2))
CONDITIONING = {
    True: dict(width=32, depth=8, steps=300, checkpoints=(0, 25, 50, 100, 200, 300), pool=1024, mnist=False),
    False: dict(width=64, depth=16, steps=1000, checkpoints=(0, 50, 100, 250, 500, 1000), pool=8192, mnist=True),
}
PROBE_EXAMPLES = 8  # examples for κ and for the per-layer reach


def _arm_label(act: str, param: str) -> str:
    return f"{act}, {'μPC' if param == 'mupc' else 'SP'}"


@register("conditioning-training", "κ(H_z) of the activity Hessian and per-layer reach of GD inference (T = H "
          "steps) along PC training: linear and ReLU ResNets, SP and μPC")
def conditioning_training(out: Path, quick: bool) -> dict:
    out = Path(out)
    cfg = CONDITIONING[quick]
    width, depth = cfg["width"], cfg["depth"]
    rows, layer_rows, traces, summary = [], [], {}, {}
    with jax.enable_x64(True):
        x, y, name = T.classification_data(cfg["pool"], mnist=cfg["mnist"], dtype=F64)
        xp, yp = x[:PROBE_EXAMPLES], y[:PROBE_EXAMPLES]
        for act, param, lr, alr in ARMS:
            label = _arm_label(act, param)
            model = T.random_pcn(0, x.shape[1], width, depth, y.shape[1], act=act, param=param, skips=True,
                                 dtype=F64)
            solver = pclab.GradientDescent(alr)
            probe = TP.combine_probes(TP.conditioning_probe(xp, yp), TP.reach_probe(xp, yp, solver, depth - 1))
            _, rec = TP.train_with_probes(model, x, y, probe=probe, checkpoints=cfg["checkpoints"],
                                          optimizer=optax.adam(lr), batch_size=64, progress=None, desc=label,
                                          inference=InferenceConfig(solver, max_steps=depth - 1))
            traces[label] = rec
            for r in rec:
                cos = np.asarray(r["layer_cosines"])
                rows.append(dict(arm=label, act=act, param=param, lr=lr, activity_lr=alr, step=r["step"],
                                 train_loss=r["train_loss"], kappa_median=r["kappa_median"], kappa_max=r["kappa_max"],
                                 cosine=r["cosine"], reached=r["reached"], aligned=r["aligned"],
                                 min_layer_cosine=float(cos.min()), input_layer_cosine=float(cos[0])))
                layer_rows += [dict(arm=label, step=r["step"], layer=i + 1, cosine=float(c)) for i, c in enumerate(cos)]
            k0, k1 = rec[0]["kappa_median"], rec[-1]["kappa_median"]
            summary[label] = dict(kappa_init=k0, kappa_final=k1, kappa_growth=k1 / k0,
                                  kappa_monotone=bool(np.all(np.diff([r["kappa_median"] for r in rec]) > 0)),
                                  cosine_init=rec[0]["cosine"], cosine_final=rec[-1]["cosine"],
                                  aligned_init=rec[0]["aligned"], aligned_final=rec[-1]["aligned"],
                                  final_train_loss=rec[-1]["train_loss"])
    steps = np.asarray(cfg["checkpoints"])
    fig, axes = panels(4, ncols=4, panel_size=(4.4, 3.6),
                       suptitle=f"Along PC training ({name}, ResNets width {width}, depth {depth}, GD inference "
                                f"T = {depth - 1}, Adam)")
    styles = {k: dict(marker="o") for k in traces}
    line_plot(axes[0], steps, {k: [r["kappa_median"] for r in v] for k, v in traces.items()}, styles=styles,
              title="κ(H_z), median over examples", xlabel="training step", ylabel="condition number", logy=True)
    line_plot(axes[1], steps, {k: [r["cosine"] for r in v] for k, v in traces.items()}, styles=styles,
              title="cos(PC grad, BP grad), all weights", xlabel="training step", ylabel="cosine", legend=False)
    line_plot(axes[2], steps, {k: [min(r["layer_cosines"]) for r in v] for k, v in traces.items()}, styles=styles,
              title=f"worst layer's cosine (of {depth} layers)", xlabel="training step", ylabel="min_l cos_l",
              legend=False)
    last = {f"{k}, step {v[-1]['step']}": np.asarray(v[-1]["layer_cosines"]) for k, v in traces.items()}
    first = {f"{k}, init": np.asarray(v[0]["layer_cosines"]) for k, v in traces.items() if "relu" in k}
    line_plot(axes[3], np.arange(1, depth + 1), {**first, **last}, title="per-layer cosine (ReLU: init and end)",
              xlabel="weight layer l", ylabel="cosine", styles={k: dict(ls="--") for k in first})
    axes[3].legend(fontsize=6)
    save_figure(fig, out / "conditioning_training.png")
    atomic_write_csv(out / "conditioning_training.csv", rows)
    atomic_write_csv(out / "conditioning_training_layers.csv", layer_rows)
    lines = ["| arm | step | train loss | κ(H_z) median | κ max | cos (all) | layers cos > 0.9 | min layer cos |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['arm']} | {r['step']} | {r['train_loss']:.3f} | {r['kappa_median']:.4g} | {r['kappa_max']:.4g} "
              f"| {r['cosine']:.3f} | {r['aligned']} / {depth} | {r['min_layer_cosine']:.3f} |" for r in rows]
    atomic_write_text(out / "conditioning_training.md", "\n".join(lines) + "\n")
    summary.update(dataset=name, width=width, depth=depth, infer_steps=depth - 1)
    atomic_write_json(out / "summary.json", summary)
    return summary


COMPLETION = {
    True: dict(width=100, hidden=3, steps={"pc": 8000, "bp": 30000}),
    False: dict(width=100, hidden=3, steps={"pc": 30000, "bp": 150000}),
}
COMPLETION_LR, COMPLETION_SCALE = 0.01, 5e-3


@register("saddles-matrix-completion", "PC (GD on F*) vs BP (GD on the masked MSE) from init N(0, 0.005^2) on "
          "rank-3 10x10 matrix completion (80% observed): plateaus and the learned matrix's rank")
def saddles_matrix_completion(out: Path, quick: bool) -> dict:
    out = Path(out)
    cfg = COMPLETION[quick]
    rows, summary, curves = [], {}, {}
    with jax.enable_x64(True):
        x, y, mask, target = MC.completion_task(0, n=10, rank=3, observed=0.8)
        sv_target = np.linalg.svd(np.asarray(target), compute_uv=False)
        threshold = 0.1 * sv_target[2]
        dims = (10,) + (cfg["width"],) * cfg["hidden"] + (10,)
        w0 = MC.completion_init(0, dims, COMPLETION_SCALE)
        for algo in ("pc", "bp"):
            _, loss, sv = MC.completion_descent(w0, x, y, mask, algo=algo, lr=COMPLETION_LR, steps=cfg["steps"][algo])
            curves[algo] = (loss, sv)
            ranks = MC.rank_trace(sv, threshold)
            keep = np.unique(np.geomspace(1, len(loss), 600).astype(int) - 1)
            rows += [dict(algo=algo, step=int(t), masked_loss=float(loss[t]), rank=int(ranks[t]),
                          **{f"sigma_{k + 1}": float(sv[t, k]) for k in range(4)}) for t in keep]
            summary[algo] = dict(steps=int(len(loss)), final_loss=float(loss[-1]),
                                 rank_steps=MC.rank_steps(sv, threshold, 3), final_rank=int(ranks[-1]),
                                 rank_monotone=bool(np.all(np.diff(ranks) >= 0)))
    fig, axes = panels(3, ncols=3, panel_size=(4.8, 3.8),
                       suptitle=f"Matrix completion (rank 3, 10x10, 80% observed), deep linear net {dims}, "
                                f"init N(0, {COMPLETION_SCALE}^2), GD lr {COMPLETION_LR}")
    names = {"pc": "PC (GD on F*)", "bp": "BP (GD on MSE)"}
    line_plot(axes[0], None, {names[a]: (np.arange(1, len(c[0]) + 1), c[0]) for a, c in curves.items()},
              title="masked train loss", xlabel="step + 1", ylabel="loss", logx=True, logy=True)
    for ax, algo in zip(axes[1:], ("pc", "bp")):
        loss, sv = curves[algo]
        t = np.arange(1, len(loss) + 1)
        line_plot(ax, None, {f"σ_{k + 1}(W_L:1)": (t, sv[:, k]) for k in range(4)},
                  title=f"{names[algo]}: singular values of the end-to-end map", xlabel="step + 1",
                  ylabel="singular value", logx=True, logy=True)
        ax.axhline(threshold, color="k", ls=":", lw=0.8)
        for s in summary[algo]["rank_steps"]:
            if s >= 0:
                ax.axvline(s + 1, color="C3", ls="--", lw=0.6)
    save_figure(fig, out / "saddles_matrix_completion.png")
    atomic_write_csv(out / "saddles_matrix_completion.csv", rows)
    summary.update(target_singular_values=[float(v) for v in sv_target[:3]], rank_threshold=float(threshold),
                   dims=list(dims), lr=COMPLETION_LR, init_scale=COMPLETION_SCALE)
    atomic_write_json(out / "summary.json", summary)
    return summary
