r"""The width limit and the reach of inference for conv and transformer PCNs (arXiv 2602.07697 §3,
arXiv 2505.13124).

* ``limits-nonlinear``: cos(PC grad at converged inference, BP grad), overall and per layer,
  against width at fixed depth, for the conv PCN (width = channels, digits as 8×8 images, MSE
  on one-hot labels) and the transformer PCN (width = d_model, the ``dyck`` bracket language,
  CE), each with μPC and SP, at init and after training. Inference is Gauss–Newton iterated to
  ``rtol`` (the residual at z* is in the CSV). The conv PCN uses tanh: with ReLU the
  Gauss–Newton iterates cycle (activation patterns flip) and do not reach equilibrium.
* ``mupc-reach-conv``, ``mupc-reach-transformer``: the ``mupc-reach`` figure for these models:
  per-layer cosine after T GD steps, heavy-ball GD and one Newton step, at λ = 1 and 0.01,
  of a deep μPC net at init (float32, like ``mupc-reach``).

Everything is in :mod:`pclab.theory.arch_limits`; this module picks the settings and draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pclab
from pclab.data import load_dataset, load_text_dataset
from pclab.io import atomic_write_csv, atomic_write_json
from pclab.report.figures import line_plot, panels, save_figure
from pclab.theory.arch_limits import layer_reach, seed_mean, width_sweep

from .mupc import write_reach
from .registry import register

F64 = jnp.float64
PARAMS = ("mupc", "sp")
PARAM_LABEL = {"mupc": "μPC", "sp": "SP"}


@dataclass(frozen=True)
class LimitsStudy:
    """One architecture's width sweep. ``depth`` is blocks (conv: in its one stage)."""

    widths: tuple[int, ...]
    depth: int
    batch: int
    seeds: int
    train_steps: int
    train_algo: str  # 'bp' or 'pc' (PC with Gauss–Newton inference, ``train_newton_steps``)
    lr: float = 1e-3
    train_newton_steps: int = 2
    max_steps: int = 50  # Gauss–Newton steps allowed to reach the measurement's equilibrium
    rtol: float = 1e-10


# Quick: 4 widths (factor 16), one seed, 300 BP steps (a PC step with converged inference costs
# ~10-20× a BP step). Full: 6 widths (factor 32), 3 seeds, 300 PC steps. The transformer starts
# at d_model = 16: at 8 (d_head 4) neither Gauss–Newton nor heavy-ball GD reached equilibrium.
LIMITS = {
    True: dict(conv=LimitsStudy((4, 8, 16, 64), depth=2, batch=16, seeds=1, train_steps=300, train_algo="bp"),
               transformer=LimitsStudy((16, 32, 64, 256), depth=2, batch=8, seeds=1, train_steps=300,
                                       train_algo="bp")),
    False: dict(conv=LimitsStudy((4, 8, 16, 32, 64, 128), depth=4, batch=32, seeds=3, train_steps=300,
                                 train_algo="pc"),
                transformer=LimitsStudy((16, 32, 64, 128, 256, 512), depth=4, batch=8, seeds=3, train_steps=300,
                                        train_algo="pc")),
}
CONTEXT, HEADS = 8, 2


@dataclass(frozen=True)
class ArchTask:
    """A model builder and data for one architecture; ``batches(n, key)`` draws n training batches."""

    name: str
    make: object  # (width, seed, param, depth, dtype) -> model
    x_eval: jax.Array
    y_eval: jax.Array
    x_train: np.ndarray
    y_train: np.ndarray
    n_out: int
    loss: str
    dtype: object

    def batch(self, idx: np.ndarray):
        x = jnp.asarray(self.x_train[idx], self.dtype if self.name == "conv" else None)
        return x, jnp.asarray(np.eye(self.n_out)[self.y_train[idx]], self.dtype)


def conv_task(batch: int, dtype=F64, act: str = "tanh", unroll: bool = True) -> ArchTask:
    """Digits as (8, 8, 1) images, one-hot labels, MSE; the eval batch is the first test images."""
    ds = load_dataset("digits")
    xs, xt = ds.x_train.reshape(-1, 8, 8, 1), ds.x_test.reshape(-1, 8, 8, 1)

    def make(width, seed, param, depth, dt=dtype):
        return pclab.convnet(jax.random.PRNGKey(seed), (8, 8, 1), 10, channels=(width,), blocks=depth, act=act,
                             param=param, unroll=unroll, dtype=dt)

    return ArchTask("conv", make, jnp.asarray(xt[:batch], dtype), jnp.asarray(np.eye(10)[ds.y_test[:batch]], dtype),
                    xs, ds.y_train, 10, "mse", dtype)


def transformer_task(batch: int, dtype=F64) -> ArchTask:
    """The ``dyck`` bracket language, context 8, one-hot next tokens, CE; eval = validation windows."""
    ds = load_text_dataset("dyck", CONTEXT)
    v = ds.vocab_size

    def make(width, seed, param, depth, dt=dtype):
        return pclab.transformer(jax.random.PRNGKey(seed), v, d_model=width, heads=HEADS, blocks=depth,
                                 context=CONTEXT, param=param, dtype=dt)

    return ArchTask("transformer", make, jnp.asarray(ds.x_val[:batch]),
                    jnp.asarray(np.eye(v)[ds.y_val[:batch]], dtype), ds.x_train, ds.y_train, v, "ce", dtype)


def train(model, task: ArchTask, study: LimitsStudy, seed: int):
    """``study.train_steps`` Adam steps of ``study.train_algo`` on random training batches;
    returns (model, last loss, seconds)."""
    spec = pclab.EnergySpec(task.loss)
    inference = pclab.InferenceConfig(pclab.NewtonSolver(), max_steps=study.train_newton_steps)
    opt = optax.adam(study.lr)
    step = pclab.make_train_step(opt, study.train_algo, spec=spec, inference=inference)
    state = opt.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(seed)
    t0, losses = time.perf_counter(), []
    for _ in range(study.train_steps):
        x, y = task.batch(rng.integers(0, len(task.x_train), study.batch))
        model, state, info = step(model, state, x, y)
        losses.append(info.loss)
    last = float(np.mean(np.asarray(jax.device_get(jnp.stack(losses[-20:])))))
    return model, last, time.perf_counter() - t0


def _sweep(task: ArchTask, study: LimitsStudy, param: str) -> tuple[list[dict], dict]:
    spec = pclab.EnergySpec(task.loss)
    solver = pclab.NewtonSolver()
    kw = dict(seeds=study.seeds, solver=solver, spec=spec, max_steps=study.max_steps, rtol=study.rtol)
    trained, info = {}, {}

    def make_init(w, s):
        return task.make(w, s, param, study.depth)

    def make_trained(w, s):
        return trained[w, s]

    rows = [dict(stage="init", **r) for r in width_sweep(make_init, task.x_eval, task.y_eval, study.widths, **kw)]
    for w in study.widths:
        for s in range(study.seeds):
            trained[w, s], loss, secs = train(make_init(w, s), task, study, s)
            info[w, s] = dict(train_loss=loss, train_seconds=round(secs, 1))
    rows += [dict(stage="trained", **r, **info[r["width"], r["seed"]])
             for r in width_sweep(make_trained, task.x_eval, task.y_eval, study.widths, **kw)]
    for r in rows:
        r.update(arch=task.name, param=param, depth=study.depth,
                 trained_by=f"{study.train_steps} {study.train_algo.upper()} steps" if r["stage"] == "trained" else "")
    return rows, info


def _rises(cos: np.ndarray) -> bool:
    return bool(np.all(np.diff(cos) > 0))


@register("limits-nonlinear", "cos(PC grad at converged inference, BP grad) vs width for conv (channels) and "
          "transformer (d_model) PCNs, μPC and SP, at init and after training; overall and per layer")
def limits_nonlinear(out: Path, quick: bool) -> dict:
    out = Path(out)
    studies = LIMITS[bool(quick)]
    rows, summary = [], {}
    with jax.enable_x64(True):
        tasks = dict(conv=conv_task(studies["conv"].batch), transformer=transformer_task(studies["transformer"].batch))
        for arch, task in tasks.items():
            for param in PARAMS:
                t0 = time.perf_counter()
                r, _ = _sweep(task, studies[arch], param)
                rows += r
                summary.setdefault(arch, {})[param] = dict(seconds=round(time.perf_counter() - t0, 1))
    fig, axes = panels(6, ncols=3, panel_size=(5.0, 3.9),
                       suptitle="PC vs BP weight gradients at converged inference against width (Gauss–Newton "
                                "inference to equilibrium)")
    for k, (arch, study) in enumerate(studies.items()):
        widths = study.widths
        wname = "channels C" if arch == "conv" else "d_model"
        mine = [r for r in rows if r["arch"] == arch]
        series, styles, layer_series = {}, {}, {p: {} for p in PARAMS}
        for i, param in enumerate(PARAMS):
            for stage, ls in (("init", "-"), ("trained", "--")):
                sel = [r for r in mine if r["param"] == param and r["stage"] == stage]
                cos = seed_mean(sel, "cosine", widths)
                label = f"{PARAM_LABEL[param]}, {stage}"
                series[label], styles[label] = np.maximum(1 - cos, 1e-16), dict(ls=ls, marker="o", color=f"C{i}")
                per = seed_mean(sel, "per_layer", widths)  # (widths, layers)
                for layer in range(per.shape[1]):
                    name = f"layer {layer + 1}, {stage}"
                    layer_series[param][name] = np.maximum(1 - per[:, layer], 1e-16)
                s = summary[arch][param]
                s[stage] = dict(widths=list(widths), cosine=[float(c) for c in cos], rises_with_width=_rises(cos),
                                cosine_at_max_width=float(cos[-1]),
                                all_converged=all(r["converged"] for r in sel),
                                max_residual_rel=max(r["residual_rel"] for r in sel),
                                max_infer_steps=max(r["infer_steps"] for r in sel))
                if stage == "trained":
                    s[stage]["train_loss"] = {str(w): float(np.mean([r["train_loss"] for r in sel if r["width"] == w]))
                                              for w in widths}
        line_plot(axes[3 * k], widths, series, styles=styles, logx=True, logy=True,
                  title=f"{arch} PCN, {study.depth} blocks: 1 − cos over all weights", xlabel=wname,
                  ylabel="1 − cos(PC grad, BP grad)")
        for j, param in enumerate(PARAMS):
            n_layers = len(layer_series[param]) // 2
            st = {f"layer {layer + 1}, {stage}": dict(ls=ls, marker=".", color=f"C{layer}")
                  for layer in range(n_layers) for stage, ls in (("init", "-"), ("trained", "--"))}
            line_plot(axes[3 * k + 1 + j], widths, layer_series[param], styles=st, logx=True, logy=True,
                      title=f"{arch}, {PARAM_LABEL[param]}: per layer (1 = input side; dashed: trained)",
                      xlabel=wname, ylabel="1 − cos of the layer", legend=False)
            axes[3 * k + 1 + j].legend([f"layer {layer + 1}" for layer in range(n_layers)], fontsize=7)
    csv_rows = [{k: ";".join(f"{c:.10g}" for c in v) if isinstance(v, (list, tuple)) else v for k, v in r.items()}
                for r in rows]  # per-layer lists as ';'-separated cells
    atomic_write_csv(out / "limits_nonlinear.csv", csv_rows)
    save_figure(fig, out / "limits_nonlinear.png")
    atomic_write_json(out / "limits_nonlinear_summary.json", summary)
    return summary


# ---- the reach of inference ------------------------------------------------------------------

@dataclass(frozen=True)
class ReachStudy:
    width: int
    depth: int  # blocks
    batch: int
    gd_steps: tuple[int, ...]


REACH = {
    "conv": {True: ReachStudy(16, 8, 32, (2, 4, 8)), False: ReachStudy(32, 32, 64, (4, 16, 64))},
    "transformer": {True: ReachStudy(32, 8, 8, (2, 4, 8)), False: ReachStudy(64, 32, 8, (4, 16, 64))},
}
REACH_PRECISIONS = (1.0, 0.01)
REACH_FLOOR = 1e-5  # ‖g_PC,l‖ / ‖g_BP,l‖ below this is float32 rounding (measured ≤ 6e-8 conv, ≤ 2e-6 transformer)
REACH_ACTIVITY_LR = 0.2  # μPC's GD activity lr in ``mupc-reach``


def _reach_probes(gd_steps: tuple[int, ...]) -> dict:
    probes = {f"GD, T={t}": (pclab.GradientDescent(REACH_ACTIVITY_LR), t) for t in gd_steps}
    probes[f"momentum GD, T={gd_steps[-1]}"] = (pclab.heavy_ball(REACH_ACTIVITY_LR, 0.9), gd_steps[-1])
    probes["Newton, 1 step"] = (pclab.NewtonSolver(), 1)
    return probes


def _reach(out: Path, arch: str, quick: bool) -> dict:
    out = Path(out)
    study = REACH[arch][bool(quick)]
    t0 = time.perf_counter()
    if arch == "conv":  # ReLU as in mupc-reach; a rolled block loop keeps compile time flat in T
        task = conv_task(study.batch, jnp.float32, act="relu", unroll=False)
        what = f"conv PCN, {study.width} channels, {study.depth} blocks, ReLU (digits 8×8)"
    else:
        task = transformer_task(study.batch, jnp.float32)
        what = f"transformer PCN, d_model {study.width}, {study.depth} blocks (dyck, context {CONTEXT})"
    model = task.make(study.width, 0, "mupc", study.depth, jnp.float32)
    table = layer_reach(model, task.x_eval, task.y_eval, _reach_probes(study.gd_steps), precisions=REACH_PRECISIONS,
                        loss=task.loss, floor=REACH_FLOOR)
    summary = write_reach(out, table, f"μPC {what}, at init (batch {study.batch}, float32; a layer is reached when "
                                      f"its PC gradient norm exceeds {REACH_FLOOR:g} of BP's)")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary


@register("mupc-reach-conv", "mupc-reach for a deep μPC conv PCN (digits as images): per-layer cos(PC grad, BP "
          "grad) after T GD steps, heavy-ball GD and one Newton step")
def mupc_reach_conv(out: Path, quick: bool) -> dict:
    return _reach(out, "conv", quick)


@register("mupc-reach-transformer", "mupc-reach for a deep μPC transformer PCN (dyck): per-layer cos(PC grad, BP "
          "grad) after T GD steps, heavy-ball GD and one Newton step")
def mupc_reach_transformer(out: Path, quick: bool) -> dict:
    return _reach(out, "transformer", quick)
