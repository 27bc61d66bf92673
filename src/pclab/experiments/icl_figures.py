r"""``pclab reproduce icl-implicit-updates``: in-context learning as implicit weight updates
(arXiv 2507.16003, 2512.11255) in transformers trained on in-context linear regression.

Two small transformers (pre-LayerNorm and without layer norm) are trained by backprop on fresh
regression tasks (float32, for speed), then analysed in float64: the identity "block with its
context = the context-free block with W_1 + ΔW_i, b_2 + Δb_i" at every position and block (also
at initialisation), the cosine alignment of the ΔW_i across positions and across blocks, the
spectrum and rank of Σ_i ΔW_i, the norm of the query's update against the context length, and
the query's update against online GD on W_1 over the same context. Writes icl_alignment.png,
icl_rank.png, icl_by_context.csv, icl_by_block.csv and summary.json.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pclab.io import atomic_write_csv, atomic_write_json
from pclab.report.figures import heatmap, line_plot, panels, save_figure
from pclab.theory import icl as I
from pclab.theory import icl_metrics as M
from pclab.theory import icl_task as task

from .registry import register

F64 = jnp.float64
GD_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def _settings(quick: bool) -> dict:
    if quick:
        return dict(d_x=3, n_context=16, d_model=16, heads=2, blocks=3, d_ff=32, steps=1000, batch=32, eval=1024,
                    probe=16, noise=0.1, lr=1e-2)
    return dict(d_x=3, n_context=16, d_model=32, heads=2, blocks=3, d_ff=128, steps=6000, batch=64, eval=2048,
                probe=64, noise=0.1, lr=3e-3)


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: a.astype(F64) if eqx.is_inexact_array(a) else a, tree)


def _at_query(upd: I.ImplicitUpdates, pos: jax.Array) -> I.ImplicitUpdates:
    """The entry at each prompt's query position: leading (n_blocks, B, T) → (n_blocks, B)."""
    return jax.tree_util.tree_map(lambda a: jnp.take_along_axis(a, pos[None, :, None, None], 2)[:, :, 0], upd)


@eqx.filter_jit
def _analyse_arrays(model: task.ICLTransformer, probe: task.ICLBatch, sweep: task.ICLBatch) -> dict:
    n_ctx, b = probe.tokens.shape[1] - 1, probe.tokens.shape[0]
    upd, inputs = I.stack_implicit_updates(model.core, model.read_in(probe.tokens))    # (n, B, T)
    # the identity per (block, prompt, position), and chained: each block alone on its query token
    ident = jax.vmap(lambda blk, h: I.implicit_update_error(model.core, blk, h))(model.core.blocks, inputs)
    z, _ = jax.lax.scan(lambda z, bu: (I.context_free_block(model.core, bu[0], z, bu[1]), None), inputs[0],
                        (model.core.blocks, upd))
    ref = model.activities(probe.tokens)[-1]
    chained = jnp.max(jnp.linalg.norm(z - ref, axis=-1) / jnp.linalg.norm(ref, axis=-1))
    s_cum = jnp.linalg.svd(jnp.cumsum(upd.dw, axis=2), compute_uv=False)                # Σ_{i<=t} ΔW_i: (n, B, T, r)
    q_upd = _at_query(I.stack_implicit_updates(model.core, model.read_in(sweep.tokens))[0], sweep.query_pos)
    q_upd = jax.tree_util.tree_map(lambda a: a.reshape(a.shape[0], b, n_ctx, *a.shape[2:]), q_upd)  # (n, B, N)
    prev, nxt = (jax.tree_util.tree_map(lambda a, sl=sl: a[:, :, sl], q_upd)
                 for sl in (slice(None, -1), slice(1, None)))
    incr = M.update_inner(nxt, nxt) + M.update_inner(prev, prev) - 2 * M.update_inner(nxt, prev)
    # online GD on W_1 over the same context (a grid of rates) vs the query's implicit update
    dw_gd, pred = jax.vmap(lambda lr: task.online_gd(model, probe, lr))(jnp.asarray(GD_LRS, probe.tokens.dtype))
    gd_err = jnp.mean(jnp.square(pred - probe.target), axis=1)
    gd_err = jnp.where(jnp.isfinite(gd_err), gd_err, jnp.inf)                          # a diverged rate loses
    dw_gd = jnp.moveaxis(dw_gd[jnp.argmin(gd_err)], 1, 0)                               # (n, B, f, d)
    dw_imp = jax.tree_util.tree_map(lambda a: a[:, :, -1], q_upd).dw
    cos_gd = jnp.sum(dw_gd * dw_imp, axis=(-2, -1)) / (jnp.linalg.norm(dw_gd, axis=(-2, -1))
                                                        * jnp.linalg.norm(dw_imp, axis=(-2, -1)))
    alone = model(probe.tokens[:, -1:])[:, 0]
    return dict(ident=ident, chained=chained, cos_pos=M.update_cosines(upd, axis=-1),
                cos_blk=M.update_cosines(upd, axis=0)[:, 1:], s_cum=s_cum,
                norms=q_upd.norm, incr=jnp.sqrt(jnp.maximum(incr, 0.0)), cos_gd=cos_gd, gd_err=gd_err,
                icl_err=jnp.mean(jnp.square(task.query_predictions(model, probe) - probe.target)),
                zero_shot_err=jnp.mean(jnp.square(alone - probe.target)))


def _analyse(model: task.ICLTransformer, probe: task.ICLBatch, sweep: task.ICLBatch) -> dict:
    r = {k: np.asarray(v) for k, v in _analyse_arrays(model, probe, sweep).items()}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # position 0 has no context: ΔW_0 = 0, cosine NaN
        cos_pos, cos_blk = np.nanmean(r["cos_pos"], axis=1), r["cos_blk"]
        best = int(np.argmin(r["gd_err"]))
        return dict(cos_pos=cos_pos, cos_blk=np.nanmean(cos_blk, axis=(0, 1)), cos_adj=np.nanmean(cos_blk, axis=0),
                    s=r["s_cum"][:, :, -1], s_cum=r["s_cum"], norms=r["norms"], incr=r["incr"], cos_gd=r["cos_gd"],
                    gd_lr=GD_LRS[best], gd_err=float(r["gd_err"][best]), icl_err=float(r["icl_err"]),
                    zero_shot_err=float(r["zero_shot_err"]), ident=r["ident"], chained=float(r["chained"]))


@register("icl-implicit-updates", "In-context linear regression: the context as rank-1 implicit updates of "
          "every block's MLP (identity error, alignment, rank, online GD)")
def icl_implicit_updates(out: Path, quick: bool) -> dict:
    out, cfg = Path(out), _settings(quick)
    n_ctx, d_x = cfg["n_context"], cfg["d_x"]
    kinds = {"pre-LN": True, "no LN": False}
    res, rows_ctx, rows_blk, summary = {}, [], [], {"settings": cfg, "identity_error": {}}
    with jax.enable_x64(True):
        eval_b = task.regression_prompts(jax.random.PRNGKey(10), cfg["eval"], n_ctx, d_x, noise=cfg["noise"], dtype=F64)
        probe = jax.tree_util.tree_map(lambda a: a[: cfg["probe"]], eval_b)  # analysed prompt by prompt
        sweep, probe_sweep = task.context_sweep(eval_b), task.context_sweep(probe)
        err = lambda p: np.asarray(jnp.mean(jnp.square(p - sweep.target).reshape(-1, n_ctx), axis=0))  # noqa: E731
        base_pred = task.baseline_predictions(sweep)
        base = {k: err(v) for k, v in base_pred.items()}
        for name, pre in kinds.items():
            init = task.icl_transformer(jax.random.PRNGKey(0), d_x, d_model=cfg["d_model"], heads=cfg["heads"],
                                        blocks=cfg["blocks"], d_ff=cfg["d_ff"], pre_norm=pre, dtype=jnp.float32)
            t0 = time.perf_counter()
            model, losses = task.train_icl(jax.random.PRNGKey(1), init, steps=cfg["steps"], batch=cfg["batch"],
                                           n_context=n_ctx, noise=cfg["noise"], lr=cfg["lr"])
            train_s = time.perf_counter() - t0
            model, init = _f64(model), _f64(init)
            a, a_init = _analyse(model, probe, probe_sweep), _analyse(init, probe, probe_sweep)
            ident = {"trained": a["ident"], "init": a_init["ident"]}
            for which, r in (("trained", a), ("init", a_init)):
                summary["identity_error"][f"{name}, {which}"] = dict(max=float(r["ident"].max()),
                                                                    chained_stack=r["chained"])
            pred = task.query_predictions(model, sweep)
            res[name] = dict(a=a, init=a_init, ident=ident, losses=np.asarray(losses), err=err(pred))
            at_n = np.asarray(jnp.square(pred - sweep.target)).reshape(-1, n_ctx)[:, -1]
            for n in range(n_ctx):
                rows_ctx.append(dict(model=name, context=n + 1, icl_mse=res[name]["err"][n],
                                     **{f"{k}_mse": v[n] for k, v in base.items()},
                                     **{f"query_update_norm_block{k}": float(a["norms"][k, :, n].mean())
                                        for k in range(cfg["blocks"])}))
            for k in range(cfg["blocks"]):
                s = a["s"][k]
                rows_blk.append(dict(model=name, block=k, identity_error_max=float(ident["trained"][k].max()),
                                     identity_error_init_max=float(ident["init"][k].max()),
                                     mean_cos_positions=float(np.nanmean(a["cos_pos"][k][1:, 1:])),
                                     numerical_rank=float(np.mean(np.asarray(M.numerical_rank(s, 1e-8)))),
                                     effective_rank=float(np.mean(np.asarray(M.effective_rank(s)))),
                                     effective_rank_init=float(np.mean(np.asarray(M.effective_rank(a_init["s"][k])))),
                                     top_singular_fraction=float(np.mean(s[:, 0] / s.sum(-1))),
                                     cos_online_gd=float(np.mean(a["cos_gd"][k])), train_seconds=train_s))
            off_diagonal = ~np.eye(cfg["blocks"], dtype=bool)
            summary[name] = dict(train_seconds=round(train_s, 1), final_train_loss=float(np.mean(losses[-100:])),
                                 icl_mse=float(res[name]["err"][-1]), icl_median_sq_error=float(np.median(at_n)),
                                 gd_online_mse=a["gd_err"], gd_online_lr=a["gd_lr"],
                                 probe_icl_mse=a["icl_err"], zero_shot_mse=a["zero_shot_err"],
                                 mean_cos_across_blocks=float(np.mean(a["cos_blk"][off_diagonal])))
    summary["baselines_mse"] = {k: float(v[-1]) for k, v in base.items()}
    sq = {k: np.asarray(jnp.square(v - sweep.target)).reshape(-1, n_ctx)[:, -1] for k, v in base_pred.items()}
    summary["baselines_median_sq_error"] = {k: float(np.median(v)) for k, v in sq.items()}
    ls, const = summary["baselines_mse"]["least squares"], summary["baselines_mse"]["constant"]
    for name in kinds:  # the fraction of the gap from the best constant to least squares still open
        summary[name]["gap_to_least_squares"] = (summary[name]["icl_mse"] - ls) / (const - ls)
    summary["max_identity_error"] = max(v["max"] for v in summary["identity_error"].values())
    summary["blocks"] = rows_blk
    _figures(out, res, base, cfg)
    atomic_write_csv(out / "icl_by_context.csv", rows_ctx)
    atomic_write_csv(out / "icl_by_block.csv", rows_blk)
    atomic_write_json(out / "summary.json", summary)
    return {k: summary[k] for k in ("max_identity_error", "baselines_mse")} | {
        k: {kk: summary[k][kk] for kk in ("icl_mse", "gap_to_least_squares", "train_seconds")} for k in kinds}


def _figures(out: Path, res: dict, base: dict, cfg: dict) -> None:
    n_ctx, nb = cfg["n_context"], cfg["blocks"]
    ctx = np.arange(1, n_ctx + 1)
    a = res["pre-LN"]["a"]
    fig, ax = panels(8, ncols=4, panel_size=(4.3, 3.4), suptitle="In-context regression: the context as implicit "
                     f"rank-1 updates of W_1 (pre-LN model, {nb} blocks, d = {cfg['d_model']}, d_x = {cfg['d_x']})")
    line_plot(ax[0], ctx, {**{f"transformer ({k})": r["err"] for k, r in res.items()}, **base}, logy=True,
              title="in-context error at the query", xlabel="context pairs n", ylabel="MSE",
              styles={"constant": dict(color="gray", ls=":"), "least squares": dict(color="k", ls="--"),
                      "one-step GD": dict(color="C3", ls="-.")})
    ax[0].set_ylim(top=3.0)  # least squares peaks at n = d_x, where it interpolates the noise
    pos = list(range(n_ctx + 1))
    for i, k in enumerate((0, nb - 1)):
        heatmap(ax[1 + i], a["cos_pos"][k], pos, pos, annotate=False, vmin=-1, vmax=1, cmap="RdBu_r",
                title=f"block {k}: cos(ΔW_i, ΔW_j)", xlabel="position j", ylabel="position i", cbar_label="cosine")
    heatmap(ax[3], a["cos_blk"], list(range(nb)), list(range(nb)), vmin=-1, vmax=1, cmap="RdBu_r", fmt="{:.2f}",
            title="cos(ΔW^k_i, ΔW^l_i), mean over i >= 1", xlabel="block l", ylabel="block k", cbar_label="cosine")
    line_plot(ax[4], ctx, {f"blocks {k},{k + 1}": a["cos_adj"][:, k, k + 1] for k in range(nb - 1)},
              title="alignment of adjacent blocks", xlabel="position i", ylabel="cosine")
    series = {f"block {k}": a["norms"][k].mean(0) for k in range(nb)}
    series.update({f"block {k}: ‖ΔW(n) − ΔW(n−1)‖": (ctx[1:], a["incr"][k].mean(0)) for k in range(nb)})
    styles = {f"block {k}": dict(color=f"C{k}") for k in range(nb)}
    styles.update({f"block {k}: ‖ΔW(n) − ΔW(n−1)‖": dict(ls="--", color=f"C{k}") for k in range(nb)})
    line_plot(ax[5], ctx, series, logy=True, title="query's update ‖ΔW‖_F vs context", xlabel="context pairs n",
              ylabel="Frobenius norm", styles=styles)
    for name, r in res.items():
        ax[6].plot(range(nb), r["a"]["cos_gd"].mean(1), marker="o", label=f"{name} (online GD lr {r['a']['gd_lr']})")
    ax[6].axhline(0, color="gray", lw=0.5)
    ax[6].set(xlabel="block", ylabel="cosine", xticks=range(nb))
    ax[6].set_title("cos(query's ΔW, online-GD ΔW on W_1)", fontsize=10)
    ax[6].legend(fontsize=7)
    win = 50
    smooth = {k: np.convolve(r["losses"], np.ones(win) / win, mode="valid") for k, r in res.items()}
    line_plot(ax[7], np.arange(win, len(res["pre-LN"]["losses"]) + 1), smooth, logy=True,
              title=f"training loss (fresh tasks, mean of {win} steps)", xlabel="step", ylabel="MSE at the query")
    save_figure(fig, out / "icl_alignment.png")

    fig, ax = panels(3, ncols=3, panel_size=(4.6, 3.6),
                     suptitle="Rank of the summed implicit update (pre-LN model) and the identity (both models)")
    series, styles = {}, {}
    for k in range(nb):
        for tag, src, ls in (("trained", a, "-"), ("init", res["pre-LN"]["init"], "--")):
            s = src["s"][k]
            series[f"block {k} {tag}"] = (s / s[:, :1]).mean(0)
            styles[f"block {k} {tag}"] = dict(color=f"C{k}", ls=ls, marker=".")
    line_plot(ax[0], None, {k: (np.arange(1, len(v) + 1), v) for k, v in series.items()}, styles=styles, logy=True,
              title="singular values of Σ_i ΔW_i (σ_j/σ_1)", xlabel="j", ylabel="σ_j / σ_1")
    eff = {f"block {k}": np.asarray(M.effective_rank(a["s_cum"][k])).mean(0)[1:] for k in range(nb)}
    line_plot(ax[1], np.arange(1, n_ctx + 1), eff, title="effective rank of Σ_{i<=t} ΔW_i", xlabel="position t",
              ylabel="effective rank")
    ident = {f"{name}, block {k}": np.maximum(r["ident"]["trained"][k].max(0), 1e-18)
             for name, r in res.items() for k in range(nb)}
    line_plot(ax[2], np.arange(n_ctx + 1), ident, logy=True, title="identity: relative error (max over prompts)",
              xlabel="position i", ylabel="|f(C)_i − f_{W+ΔW}(x_i)| / |f(C)_i|")
    ax[2].legend(fontsize=6, ncol=2)
    save_figure(fig, out / "icl_rank.png")
