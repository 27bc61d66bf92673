r"""Reproductions of the μPC paper (arXiv 2505.13124).

* ``mupc-depth``: accuracy versus depth of ReLU residual nets trained for one epoch with
  standard PC (SP), μPC and BP with Depth-μP, on MNIST and Fashion-MNIST.
* ``mupc-transfer``: (weight lr × activity lr) test-loss heatmaps of μPC at a small and a
  large (width, depth) with GD inference, T = 8; reports whether the argmin moves.
* ``mupc-transfer-reach``: the same grids with heavy-ball inference, T = 128, which reaches
  every layer of the depth-64 net at init.
* ``mupc-transfer-newton``: the weight-lr curve at depth 8 and 128 with one Gauss–Newton
  inference step (no activity lr) and Depth-μP's per-layer Adam rates (``scale_lr``).
* ``mupc-reach``: per-layer cosine of PC and BP weight gradients of a deep μPC ResNet at init
  after GD inference of T steps and after one Newton step: how many layers each reaches.

All only call the library (:mod:`pclab.experiments.sweep`, :mod:`.lr_grid`,
:func:`pclab.theory.pc_bp_alignment`). Runs land in
``OUT/runs``; rerunning the command resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_write_csv, atomic_write_json, atomic_write_text
from ..report.figures import line_plot, panels, save_figure
from ..theory.arch_limits import layer_reach
from .config import TrainConfig, read_preset
from .lr_grid import mean_over_seeds, train_lr_grids
from .registry import register
from .runner import build_model, load_run_data
from .sweep import pending_points, run_sweep

# Per-variant settings. μPC with GD inference (T = 8 steps, which update only the top 8
# layers: ``mupc-reach``; jpc's μPC notebook runs T = depth) uses the (lr, activity
# lr) found best by ``mupc-transfer`` at width 128, depth 8 (zero-shot transfer); SP PC keeps
# the conventional small rates. "μPC (Newton)" reaches every layer in one Gauss–Newton
# inference step and uses a weak output precision λ = 0.01, where the equilibrium weight
# gradient approaches λ × the BP gradient; it shares BP's lr (BP's best at depth 128).
# "μPC (Newton, λ=1, scaled lr)" keeps the standard precision and puts Depth-μP's factor on the
# hidden layers' Adam rate (``scale_lr``); its lr 0.1 is the depth-8 argmin of
# ``mupc-transfer-newton`` (zero-shot transfer).
VARIANTS: dict[str, dict] = {
    "PC (SP)": dict(param="sp", algo="pc", lr=1e-3, activity_lr=0.1),
    "μPC": dict(param="mupc", algo="pc", lr=3e-2, activity_lr=0.2),
    "μPC (Newton, λ=0.01)": dict(param="mupc", algo="pc", solver="newton", infer_steps=1, precision=0.01, lr=1e-2),
    "μPC (Newton, λ=1, scaled lr)": dict(param="mupc", algo="pc", solver="newton", infer_steps=1, scale_lr=True,
                                         lr=1e-1),
    "BP (Depth-μP)": dict(param="mupc", algo="bp", lr=1e-2),
}


@dataclass(frozen=True)
class DepthVariant:
    """One curve of a depth study: ``settings`` over the study's base; ``slug`` names its run
    folders; ``t_hidden``: the inference steps equal the hidden layers, T = L − 1."""

    slug: str
    settings: dict
    t_hidden: bool = False


_SLUGS = {"PC (SP)": "pc-sp", "μPC": "mupc", "μPC (Newton, λ=0.01)": "mupc-newton",
          "μPC (Newton, λ=1, scaled lr)": "mupc-newton-scaled", "BP (Depth-μP)": "bp-depthmup"}
DEPTH_VARIANTS = {label: DepthVariant(_SLUGS[label], settings) for label, settings in VARIANTS.items()}

# The μPC authors' protocol (``--preset mupc-paper``: batch 64, Adam lr 0.1, GD activity step
# 0.5 on a batch-mean energy, no biases, one epoch, float64) with their depth figure's T = L − 1,
# and their BP baseline with Depth-μP (Adam lr 0.01, same batch, precision and biases).
_PAPER = {k: v for k, v in read_preset("mupc-paper").items() if k not in ("dataset", "width", "epochs")}
PAPER_VARIANTS = {
    "μPC (paper: GD, T = L−1)": DepthVariant("mupc-paper", _PAPER, t_hidden=True),
    "BP (Depth-μP, paper)": DepthVariant("bp-paper", {**_PAPER, "algo": "bp", "lr": 1e-2, "solver": None}),
}


@dataclass(frozen=True)
class DepthStudy:
    datasets: tuple[str, ...]
    depths: tuple[int, ...]
    base: dict = field(default_factory=dict)
    variants: dict[str, DepthVariant] = field(default_factory=lambda: DEPTH_VARIANTS)
    title: str = "ReLU ResNets"


DEPTH_FULL = DepthStudy(("mnist", "fashion-mnist"), (8, 16, 32, 64, 128),
                        dict(width=128, epochs=1, batch_size=128, infer_steps=8, act="relu", evals_per_epoch=1))
DEPTH_QUICK = DepthStudy(("digits",), (4, 12),
                         dict(width=32, epochs=5, batch_size=64, infer_steps=8, act="relu", evals_per_epoch=1))
# The authors' protocol: width 512 as in their script (the full table is a GPU job), the same at
# width 128 (what 2 CPU cores run, resumable across sessions), and a quick version on digits.
_PAPER_DEPTHS = (8, 16, 32, 64, 128)
PAPER = {
    "paper": DepthStudy(("mnist", "fashion-mnist"), _PAPER_DEPTHS, dict(width=512, epochs=1, evals_per_epoch=1),
                        PAPER_VARIANTS, "the μPC authors' protocol, width 512"),
    "paper-width128": DepthStudy(("mnist", "fashion-mnist"), _PAPER_DEPTHS, dict(width=128, epochs=1, evals_per_epoch=1),
                                 PAPER_VARIANTS, "the μPC authors' protocol at width 128"),
}
PAPER_QUICK = DepthStudy(("digits",), (4, 8), dict(width=32, epochs=5, evals_per_epoch=1), PAPER_VARIANTS,
                         "the μPC authors' protocol, quick (digits, width 32)")


def _depth_points(study: DepthStudy) -> list[tuple[str, TrainConfig]]:
    return [(f"{ds}_{v.slug}_depth{d}",
             TrainConfig(dataset=ds, depth=d, **{**study.base, **v.settings, **({"infer_steps": d - 1} if v.t_hidden else {})}))
            for ds in study.datasets for v in study.variants.values() for d in study.depths]


def _depth_pending(study: DepthStudy, out: Path) -> list[TrainConfig]:
    return [c for _, c in pending_points(_depth_points(study), out)]


@register("mupc-depth", "test accuracy vs depth (8-128): SP PC, μPC, BP with Depth-μP; MNIST + Fashion-MNIST",
          pending=lambda out, quick: _depth_pending(DEPTH_QUICK if quick else DEPTH_FULL, out))
def mupc_depth(out: Path, quick: bool) -> dict:
    return _depth_study(out, DEPTH_QUICK if quick else DEPTH_FULL, jobs=2 if quick else 1)


for _name, _study in PAPER.items():
    register("mupc-depth", f"{_study.title}: μPC with GD, T = L − 1, float64, against BP (Depth-μP)",
             pending=lambda out, quick, s=_study: _depth_pending(PAPER_QUICK if quick else s, out),
             protocol=_name)(lambda out, quick, s=_study: _depth_study(out, PAPER_QUICK if quick else s, jobs=1))


def _depth_study(out: Path, study: DepthStudy, jobs: int) -> dict:
    points = _depth_points(study)
    rows = run_sweep(points, out, jobs=jobs, yes=True, log=lambda *_: None)
    by_slug = {v.slug: label for label, v in study.variants.items()}
    table = []
    for (name, _), r in zip(points, rows):
        ds, slug, depth = name.rsplit("_", 2)
        table.append({"dataset": ds, "variant": by_slug[slug], "depth": int(depth.removeprefix("depth")),
                      "test_accuracy": r["test_accuracy"], "diverged": r["diverged"], "error": r.get("error") or "",
                      "wall_seconds": r.get("wall_seconds")})
    atomic_write_csv(out / "accuracy_vs_depth.csv", table)
    fig, axes = panels(len(study.datasets), suptitle=f"Test accuracy after training vs depth ({study.title})")
    for ax, ds in zip(axes, study.datasets):
        series = {v: [_acc(table, ds, v, d) for d in study.depths] for v in study.variants}
        line_plot(ax, study.depths, series, title=ds, xlabel="depth L (weight layers)", ylabel="test accuracy (%)",
                  logx=True, styles={v: {"marker": "o"} for v in study.variants})
        ax.set_xticks(study.depths, [str(d) for d in study.depths])
    save_figure(fig, out / "accuracy_vs_depth.png")
    atomic_write_text(out / "accuracy_vs_depth.md", _markdown(table, study))
    return {"table": str(out / "accuracy_vs_depth.md"), "wall_seconds_runs": round(sum(r["wall_seconds"] or 0 for r in table), 1)}


@dataclass(frozen=True)
class TransferStudy:
    """A (weight lr × activity lr) grid at each (width, depth) of ``settings``; the argmin is
    taken on the test loss averaged over ``seeds``, and its move is counted in grid steps from
    the first setting of the same depth (width transfer) and from ``settings[0]``. Two settings
    are named 'small' and 'large'. Empty ``activity_lrs``: a weight-lr curve at ``base``'s
    activity lr (for solvers without a step size)."""

    settings: tuple[tuple[int, int], ...]
    lrs: tuple[float, ...]
    activity_lrs: tuple[float, ...]
    base: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    steps_per_layer: int | None = None  # T = steps_per_layer × L at each depth (else base's infer_steps)

    def label(self, k: int) -> str:
        if len(self.settings) == 2:
            return ("small", "large")[k]
        return "width {}, depth {}".format(*self.settings[k])


_TRANSFER_LRS = dict(lrs=(3e-3, 1e-2, 3e-2, 1e-1, 3e-1), activity_lrs=(0.025, 0.05, 0.1, 0.2, 0.4))
_TRANSFER_LRS_QUICK = dict(lrs=(3e-3, 3e-2, 3e-1), activity_lrs=(0.05, 0.2, 0.8))
_TRANSFER_BASE = dict(dataset="mnist", epochs=1, batch_size=128, act="relu", param="mupc")
_TRANSFER_BASE_QUICK = dict(dataset="digits", epochs=4, batch_size=64, act="relu", param="mupc")
# GD with T = 8 reaches only the top 8 layers at depth 64 (``mupc-reach``); heavy-ball GD with
# T = 128 reaches all 64 at init, so the "reach" variant asks whether the argmin moves when
# every layer learns. The same T is used at both sizes: T is part of the transferred recipe.
# Its argmin moved 1, 1 and 2 steps at seeds 0, 1, 2 (docs/results.md), so it averages 3 seeds.
TRANSFER = {
    False: TransferStudy(((128, 8), (128, 64)), **_TRANSFER_LRS, base=dict(_TRANSFER_BASE, infer_steps=8)),
    True: TransferStudy(((16, 4), (32, 16)), **_TRANSFER_LRS_QUICK, base=dict(_TRANSFER_BASE_QUICK, infer_steps=8)),
}
TRANSFER_REACH = {
    False: TransferStudy(((128, 8), (128, 64)), **_TRANSFER_LRS,
                         base=dict(_TRANSFER_BASE, solver="momentum", infer_steps=128), seeds=(0, 1, 2)),
    True: TransferStudy(((16, 4), (32, 16)), **_TRANSFER_LRS_QUICK,
                        base=dict(_TRANSFER_BASE_QUICK, solver="momentum", infer_steps=32), seeds=(0, 1)),
}
# One Newton step reaches every layer at any depth and has no step size, so only the weight lr
# is searched, with Depth-μP's factor 1/√(N·L) on the hidden layers' rate (the parameterisation's
# own rule for Adam); it runs on a CPU in under an hour, up to depth 128.
TRANSFER_NEWTON = {
    False: TransferStudy(((128, 8), (128, 128)), _TRANSFER_LRS["lrs"], (),
                         base=dict(_TRANSFER_BASE, solver="newton", infer_steps=1, scale_lr=True), seeds=(0, 1, 2)),
    True: TransferStudy(((16, 4), (32, 16)), _TRANSFER_LRS_QUICK["lrs"], (),
                        base=dict(_TRANSFER_BASE_QUICK, solver="newton", infer_steps=1, scale_lr=True), seeds=(0, 1)),
}
# Transfer across width at fixed depth, with inference that reaches every layer: heavy-ball GD
# with T = 2L steps (T = 128 reached all 64 layers of the depth-64 net; ``mupc-reach``). The full
# study (widths 64-512 at depths 8 and 32, one MNIST epoch, 3 seeds) is a GPU job; ``cpu`` is
# what 2 CPU cores run in about half an hour: depth 8 only, GD with T = 8 (which reaches all 8
# layers), the first 12,800 training examples (100 steps).
_WIDTHS = (64, 128, 256, 512)
TRANSFER_WIDTH = {
    "default": TransferStudy(tuple((w, d) for d in (8, 32) for w in _WIDTHS), **_TRANSFER_LRS,
                             base=dict(_TRANSFER_BASE, solver="momentum"), seeds=(0, 1, 2), steps_per_layer=2),
    "cpu": TransferStudy(tuple((w, 8) for w in _WIDTHS), **_TRANSFER_LRS,
                         base=dict(_TRANSFER_BASE, infer_steps=8, n_train=12_800), seeds=(0, 1, 2)),
    "quick": TransferStudy(((16, 4), (32, 4), (64, 4), (16, 8), (64, 8)), **_TRANSFER_LRS_QUICK,
                           base=dict(_TRANSFER_BASE_QUICK, solver="momentum"), seeds=(0, 1), steps_per_layer=2),
}


def _setting_config(spec: TransferStudy, width: int, depth: int) -> TrainConfig:
    """The base config at (width, depth), with T = ``steps_per_layer`` × depth if that is set."""
    base = TrainConfig(**spec.base).replace(width=width, depth=depth)
    return base if spec.steps_per_layer is None else base.replace(infer_steps=spec.steps_per_layer * depth)


def _transfer_configs(spec: TransferStudy) -> list[TrainConfig]:
    """Every grid point of every setting (a vmapped grid costs about one run per point)."""
    return [_setting_config(spec, w, d).replace(lr=lr, activity_lr=alr, seed=seed) for w, d in spec.settings
            for seed in spec.seeds for lr in spec.lrs for alr in spec.activity_lrs or (TrainConfig(**spec.base).activity_lr,)]


@register("mupc-transfer", "μPC weight-lr × activity-lr heatmaps at small and large (width, depth), GD inference T=8; does the argmin move?",
          pending=lambda out, quick: _transfer_configs(TRANSFER[quick]))
def mupc_transfer(out: Path, quick: bool) -> dict:
    return _transfer(out, TRANSFER[quick])


@register("mupc-transfer-reach", "as mupc-transfer, with heavy-ball inference T=128 that reaches every layer at depth 64",
          pending=lambda out, quick: _transfer_configs(TRANSFER_REACH[quick]))
def mupc_transfer_reach(out: Path, quick: bool) -> dict:
    return _transfer(out, TRANSFER_REACH[quick])


@register("mupc-transfer-newton", "μPC weight-lr curves at depth 8 and 128, one Newton inference step, Depth-μP "
          "lr factors (--scale-lr), 3 seeds; does the argmin move?",
          pending=lambda out, quick: _transfer_configs(TRANSFER_NEWTON[quick]))
def mupc_transfer_newton(out: Path, quick: bool) -> dict:
    return _transfer(out, TRANSFER_NEWTON[quick])


@register("mupc-transfer-width", "μPC weight-lr × activity-lr grids at widths 64-512, depths 8 and 32, heavy-ball "
          "inference T=2L (reaches every layer), 3 seeds: grid steps the argmin moves with width",
          pending=lambda out, quick: _transfer_configs(TRANSFER_WIDTH["quick" if quick else "default"]))
def mupc_transfer_width(out: Path, quick: bool) -> dict:
    return _transfer(out, TRANSFER_WIDTH["quick" if quick else "default"])


@register("mupc-transfer-width", "widths 64-512 at depth 8 only, GD T=8, 12,800 MNIST examples, 3 seeds (2 CPU cores)",
          pending=lambda out, quick: _transfer_configs(TRANSFER_WIDTH["quick" if quick else "cpu"]), protocol="cpu")
def mupc_transfer_width_cpu(out: Path, quick: bool) -> dict:
    return _transfer(out, TRANSFER_WIDTH["quick" if quick else "cpu"])


def _transfer(out: Path, spec: TransferStudy) -> dict:
    base = TrainConfig(**spec.base)
    steps_text = f"{spec.steps_per_layer}L" if spec.steps_per_layer else str(base.infer_steps)
    inference = f"{base.solver_name} inference, T = {steps_text}"
    inference += ", Depth-μP lr factors" if base.scale_lr else ""
    seeds = f", mean of {len(spec.seeds)} seeds" if len(spec.seeds) > 1 else ""
    suptitle = f"μPC test loss after training (✕ = diverged)\n{inference}{seeds}"
    curves = not spec.activity_lrs  # one weight-lr curve per setting on a shared panel, else heatmaps
    n = len(spec.settings)
    fig, axes = panels(1 if curves else n, panel_size=(6.0, 4.2) if curves else (5.2, 4.2), suptitle=suptitle)
    best, by_seed, rows = [], [], []
    for k, (width, depth) in enumerate(spec.settings):
        grids = train_lr_grids(_setting_config(spec, width, depth), spec.lrs, spec.activity_lrs, seeds=spec.seeds,
                               progress=False)
        rows += [{"setting": spec.label(k), "width": width, "depth": depth, "seed": seed, **r}
                 for seed, g in zip(spec.seeds, grids) for r in g.rows()]
        mean = mean_over_seeds(grids)
        best.append(mean.best())
        by_seed.append([g.best() for g in grids])
        name = f"width {width}, depth {depth}"
        if curves:
            mean.panel(axes[0], label=name)
        else:
            mean.panel(axes[k], title=name)
    save_figure(fig, out / "transfer_heatmaps.png")
    atomic_write_csv(out / "transfer_grid.csv", rows)
    steps = lambda a, b: max(abs(a[0] - b[0]), abs(a[1] - b[1]))  # noqa: E731

    def at(ij):
        return {"lr": spec.lrs[ij[0]]} if curves else {"lr": spec.lrs[ij[0]], "activity_lr": spec.activity_lrs[ij[1]]}

    summary = {"inference": inference, "seeds": list(spec.seeds)}
    if n == 2:
        summary |= {"argmin_small": at(best[0]), "argmin_large": at(best[1]),
                    "grid_steps_moved": steps(best[0], best[1]),
                    "grid_steps_moved_by_seed": [steps(a, b) for a, b in zip(by_seed[0], by_seed[1])]}
    else:
        first = {d: next(k for k, (_, dk) in enumerate(spec.settings) if dk == d) for _, d in spec.settings}
        summary["settings"] = [
            {"width": w, "depth": d, "argmin": at(best[k]), "grid_steps_from_first": steps(best[k], best[0]),
             "grid_steps_from_narrowest": steps(best[k], best[first[d]]),
             "grid_steps_from_narrowest_by_seed": [steps(a, b) for a, b in zip(by_seed[k], by_seed[first[d]])]}
            for k, (w, d) in enumerate(spec.settings)]
        summary["grid_steps_moved_with_width"] = {
            str(d): max(r["grid_steps_from_narrowest"] for r in summary["settings"] if r["depth"] == d) for d in first}
        summary["grid_steps_moved"] = max(r["grid_steps_from_first"] for r in summary["settings"])
    summary["transfers"] = summary["grid_steps_moved"] <= 1
    atomic_write_json(out / "transfer_summary.json", summary)
    return summary


REACH_FULL = dict(base=dict(dataset="mnist", depth=128, width=128, batch_size=128), gd_steps=(8, 128, 512))
REACH_QUICK = dict(base=dict(dataset="digits", depth=16, width=32, batch_size=64), gd_steps=(2, 8, 32))
REACH_PRECISIONS = (1.0, 0.01)


def _reach_probes(gd_steps: tuple[int, ...]) -> dict[str, dict]:
    """Inference settings compared by ``mupc-reach``: GD at μPC's activity lr for each T,
    heavy-ball GD at the largest T, and one Newton step."""
    alr = VARIANTS["μPC"]["activity_lr"]
    probes = {f"GD, T={t}": dict(solver="gd", activity_lr=alr, infer_steps=t) for t in gd_steps}
    probes[f"momentum GD, T={gd_steps[-1]}"] = dict(solver="momentum", activity_lr=alr, infer_steps=gd_steps[-1])
    probes["Newton, 1 step"] = dict(solver="newton", infer_steps=1)
    return probes


@register("mupc-reach", "per-layer cos(PC grad, BP grad) of a 128-layer μPC ResNet at init: how many layers GD "
          "(T steps) and Newton (1 step) inference reach")
def mupc_reach(out: Path, quick: bool) -> dict:
    spec = REACH_QUICK if quick else REACH_FULL
    base = TrainConfig(act="relu", param="mupc", **spec["base"])
    data = load_run_data(base)
    model = build_model(base, data.d_in, data.n_classes)
    x, y = data.x_train[: base.batch_size], data.y_train[: base.batch_size]
    probes = {label: (base.replace(**probe).make_solver(), probe["infer_steps"])
              for label, probe in _reach_probes(spec["gd_steps"]).items()}
    table = layer_reach(model, x, y, probes, precisions=REACH_PRECISIONS, loss=base.loss.value)
    return write_reach(out, table, f"μPC ReLU ResNet, depth {base.depth}, at init ({base.dataset.value}, batch "
                                   f"{base.batch_size})")


def write_reach(out: Path, table: list[dict], what: str) -> dict:
    """Draw and write a reach study (rows of :func:`pclab.theory.arch_limits.layer_reach`):
    ``reach.png`` (per-layer cosine, one panel per output precision), ``reach_by_layer.csv``,
    ``reach_summary.csv`` and ``reach.md``. Returns {"inference (λ=…)": {reached, aligned}}."""
    out = Path(out)
    precisions = sorted({r["precision"] for r in table}, reverse=True)
    layers = np.arange(1, table[0]["layers"] + 1)
    fig, axes = panels(len(precisions), ncols=len(precisions), panel_size=(5.6, 4.2),
                       suptitle=f"Which layers inference reaches: {what}")
    for ax, lam in zip(axes, precisions):
        series = {r["inference"]: np.asarray(r["per_layer"]) for r in table if r["precision"] == lam}
        line_plot(ax, layers, series, title=f"output precision λ = {lam}", xlabel="weight layer l (1 = input, L = output)",
                  ylabel="cos(PC grad, BP grad) of layer l", legend_loc="center left")
        ax.set_ylim(-0.1, 1.05)
    save_figure(fig, out / "reach.png")
    atomic_write_csv(out / "reach_by_layer.csv", [
        dict(precision=r["precision"], inference=r["inference"], steps=r["steps"], layer=int(layer), cosine=float(c),
             norm_ratio=q) for r in table for layer, c, q in zip(layers, r["per_layer"], r["norm_ratio"])])
    atomic_write_csv(out / "reach_summary.csv", [
        {k: r[k] for k in ("precision", "inference", "layers", "reached", "aligned", "cosine")} for r in table])
    lines = [what, "", "| λ | inference | layers reached | layers with cos > 0.9 | cos over all weights |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['precision']} | {r['inference']} | {r['reached']} / {r['layers']} | {r['aligned']} / {r['layers']} "
              f"| {r['cosine']:.3f} |" for r in table]
    atomic_write_text(out / "reach.md", "\n".join(lines) + "\n")
    return {f"{r['inference']} (λ={r['precision']})": {"reached": r["reached"], "aligned": r["aligned"]} for r in table}


def _entry(table, ds, v, d) -> dict:
    return next(r for r in table if (r["dataset"], r["variant"], r["depth"]) == (ds, v, d))


def _acc(table, ds, v, d) -> float:
    r = _entry(table, ds, v, d)
    return float("nan") if r["test_accuracy"] is None or r["diverged"] else 100 * r["test_accuracy"]


def _markdown(table, study: DepthStudy) -> str:
    lines = []
    for ds in study.datasets:
        lines += [f"### {ds}", "", "| variant | " + " | ".join(f"depth {d}" for d in study.depths) + " |",
                  "|---|" + "---|" * len(study.depths)]
        for v in study.variants:
            cells = []
            for d in study.depths:
                a = _acc(table, ds, v, d)
                e = _entry(table, ds, v, d)
                cells.append("error" if e["error"] else "diverged" if np.isnan(a) else
                             f"{a:.2f}% ({e['wall_seconds'] / 60:.1f} min)")
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
