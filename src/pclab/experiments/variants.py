r"""``pclab reproduce variants``: every registered learning rule on one MLP and a deep μPC ResNet.

For each data set (MNIST, Fashion-MNIST; ``--quick``: scikit-learn's digits), each network
(an MLP 784-128×3-10 with standard parameterisation and the 32-layer μPC ResNet of width 128;
``--quick``: width 32, depth 4 and 8) and each rule in :data:`pclab.LEARNING_RULES` (so a
variant registered later appears without touching this file), it trains one run and writes
one table, ``variants.md`` and ``variants.csv``, with

* ``test_accuracy`` after training (the feedforward network),
* ``step_ms``: the median wall time of a training step after the first three (compilation
  and warm-up excluded), measured around the jitted step of :func:`pclab.make_train_step`,
* ``infer_steps``: inference steps per batch (the median of :class:`pclab.StepInfo`; 2T for
  centred nudging, 0 for BP),
* per-layer cosine between the rule's weight gradient (:meth:`AbstractLearningRule.grads`)
  and the BP gradient of the trained model on a fixed training batch, per layer
  (``variants_cosine_by_layer.csv``) and summarised (min, mean, and the input/output layers).

``--protocol deep`` runs ePC, PC (GD and Newton) and BP on the 128-layer μPC ResNet
(:data:`DEEP`). ``--protocol pcx`` runs the same table on pcx's benchmark MLP only, with settings near
the ones pcx's hyperparameter search found for it (:data:`PCX`), for comparison with the
accuracies pcx reports; its table adds the best test accuracy over the epochs (pcx reports
that one), beside the final one.

A rule whose ``validate`` rejects a setting, and a data set that is not installed, get a
``skipped`` row saying why instead of a crash. Finished runs are kept as JSON under
``OUT/runs`` and reused by a rerun with the same settings. Only library calls: the model,
optimiser and data of each run come from :mod:`pclab.experiments.runner` (as in
:mod:`.mupc`), the step from :func:`pclab.make_train_step`.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import equinox as eqx
import jax
import numpy as np

from .. import data as pdata
from ..data.errors import DatasetUnavailable
from ..io import atomic_write_csv, atomic_write_json, atomic_write_text
from ..learning import LEARNING_RULES, evaluate, make_train_step
from ..theory.alignment import rule_bp_cosines
from .config import TrainConfig
from .divergence import Divergence, divergence_kind
from .registry import register
from .runner import build_model, build_optimizer, load_run_data, run_spec, total_steps

WARMUP_STEPS = 3  # steps excluded from the step-time median (the first compiles)


@dataclass(frozen=True)
class Network:
    """One network of the study: a label and the :class:`TrainConfig` fields that build it
    and set its learning rates; ``rules`` overrides fields per rule name (e.g. BP's lr)."""

    label: str
    fields: dict
    rules: dict = field(default_factory=dict)
    only: tuple[str, ...] | None = None  # the rules run on this network (None: every registered one)


@dataclass(frozen=True)
class VariantsStudy:
    datasets: tuple[str, ...]
    networks: tuple[Network, ...]
    base: dict = field(default_factory=dict)
    rule_options: dict = field(default_factory=dict)  # rule name -> algo_options


# iPC takes T weight steps per batch: weight_step = 1/T keeps its total step near PC's one.
_RULE_OPTIONS = {"ipc": {"weight_step": 0.125}}
# The MLP: pcx's benchmark MLP (784-128-128-128-10), SP init, Adam lr 1e-3, activity lr 0.1
# (``mupc``'s "PC (SP)" rates). The ResNet: μPC at depth 32 with the rates ``mupc-transfer``
# found at width 128, depth 8 (lr 3e-2, activity lr 0.2), BP with Depth-μP's lr 1e-2.
MLP = Network("MLP 784-128x3-10", dict(model="mlp", depth=4, width=128, param="sp", lr=1e-3, activity_lr=0.1))
# ePC's errors move the output by ≈ η Σ_l J_l J_lᵀ ∂ℓ/∂ŷ, which grows with depth, so its step is
# ≈ 0.5/L (at the shared 0.2 it diverged on both data sets at depth 32; docs/results.md).
RESNET = Network("muPC ResNet depth 32", dict(model="resnet", depth=32, width=128, param="mupc", lr=3e-2,
                                              activity_lr=0.2),
                 rules={"bp": {"lr": 1e-2}, "epc": {"activity_lr": 0.015}})
FULL = VariantsStudy(("mnist", "fashion-mnist"), (MLP, RESNET),
                     dict(act="relu", epochs=5, batch_size=128, infer_steps=8), _RULE_OPTIONS)
QUICK = VariantsStudy(
    ("digits",),
    (Network("MLP 64-32x3-10", dict(model="mlp", depth=4, width=32, param="sp", lr=1e-2, activity_lr=0.1)),
     Network("muPC ResNet depth 8", dict(model="resnet", depth=8, width=32, param="mupc", lr=3e-2, activity_lr=0.2),
             rules={"bp": {"lr": 1e-2}})),
    dict(act="relu", epochs=4, batch_size=64, infer_steps=8), _RULE_OPTIONS)


# pcx's benchmark MLP with settings near those pcx's own search found for it (its
# ``hps/MLP`` configs): GELU, biases, batch 128, 25 epochs, AdamW (lr ≈ 3e-4, decay 1e-4 to
# 5e-3 there; 1e-3 here) with a warm-up + cosine schedule, T = 5–8 (8 here), activity SGD
# whose effective rate lr/(1 − momentum) is ≈ 0.03 (plain GD at 0.03 here), nudging
# β ≈ 0.55 (0.5 here). iPC, which pcx runs with a much larger activity rate (0.85, momentum
# 0.35) and a full optimiser step at each of the T steps, gets activity lr 0.3 and
# weight_step 1 (at 0.03 and 1/8 it reached 92.0% on MNIST, at 0.3 and 1 97.4%). One setting
# for every other rule and both data sets; not re-searched.
PCX_MLP = Network("MLP 784-128x3-10, pcx settings", dict(
    model="mlp", depth=4, width=128, param="sp", act="gelu", bias=True, optimizer="adamw", weight_decay=1e-3,
    lr_schedule="warmup-cosine", lr=3.3e-4, activity_lr=0.03), rules={"ipc": {"activity_lr": 0.3}})
_PCX_OPTIONS = {"ipc": {"weight_step": 1.0}, **{n: {"beta": 0.5} for n in ("nudge-pn", "nudge-nn", "nudge-cn")}}
PCX = VariantsStudy(("mnist", "fashion-mnist"), (PCX_MLP,), dict(epochs=25, batch_size=128, infer_steps=8),
                    _PCX_OPTIONS)
PCX_QUICK = VariantsStudy(
    ("digits",),
    (Network("MLP 64-32x3-10, pcx settings", {**PCX_MLP.fields, "width": 32, "lr": 3e-3}, PCX_MLP.rules),),
    dict(epochs=4, batch_size=64, infer_steps=8), _PCX_OPTIONS)


# ePC against PC on the 128-layer μPC ResNet, one epoch of MNIST: GD with T = 8 in activity
# coordinates (PC) and in error coordinates (ePC) at the rates of ``--preset mupc-128`` (ePC's
# activity lr 0.05: at 0.2 its inference blew up at step 175), and
# one Gauss–Newton step with λ = 0.01 (``--preset mupc-128-newton``; ePC with Newton is the
# same computation, see :mod:`pclab.learning.epc`), beside BP with Depth-μP (lr 0.01).
_DEEP = dict(model="resnet", depth=128, width=128, param="mupc")
DEEP = VariantsStudy(
    ("mnist",),
    (Network("muPC ResNet depth 128, GD T=8", {**_DEEP, "lr": 3e-2, "activity_lr": 0.2, "infer_steps": 8},
             rules={"bp": {"lr": 1e-2}, "epc": {"activity_lr": 0.05}}, only=("pc", "epc", "bp")),
     Network("muPC ResNet depth 128, Newton", {**_DEEP, "lr": 1e-2, "solver": "newton", "infer_steps": 1,
                                                "precision": 0.01}, only=("pc",))),
    dict(act="relu", epochs=1, batch_size=128))
DEEP_QUICK = VariantsStudy(
    ("digits",),
    tuple(Network(n.label.replace("128", "32").replace("ResNet", "ResNet (width 32)"),
                  {**n.fields, "depth": 32, "width": 32}, n.rules, n.only) for n in DEEP.networks),
    dict(act="relu", epochs=2, batch_size=64))


def study_points(study: VariantsStudy, rules: Iterable[str] | None = None) -> list[dict]:
    """Every (data set, network, rule) of the study with its config, or the reason it is
    skipped (``config`` None): the rule's ``validate`` or the config rejected the setting."""
    points = []
    for ds in study.datasets:
        for net in study.networks:
            names = LEARNING_RULES.names() if rules is None else list(rules)
            for name in (names if net.only is None else [n for n in names if n in net.only]):
                rule = LEARNING_RULES.get(name)
                values = {**study.base, **net.fields, **net.rules.get(name, {}), "dataset": ds, "algo": name}
                if name in study.rule_options:
                    values["algo_options"] = dict(study.rule_options[name])
                if not rule.runs_inference:
                    values = {k: v for k, v in values.items() if k not in ("activity_lr", "infer_steps", "solver")}
                point = {"dataset": ds, "network": net.label, "rule": name, "config": None, "skip": ""}
                try:
                    point["config"] = TrainConfig(**values)
                except ValueError as e:
                    point["skip"] = f"rejected: {' '.join(str(e).split())}"
                points.append(point)
    return points


def _slug(point: dict) -> str:
    net = "".join(c if c.isalnum() else "-" for c in point["network"].lower()).strip("-")
    return f"{point['dataset']}_{net}_{point['rule']}"


def train_point(config: TrainConfig, data) -> dict:
    """Train ``config`` on ``data`` (a :class:`~pclab.experiments.runner.RunData`) and measure
    the table's quantities. Raises ``ValueError`` if the rule rejects the built model."""
    rule = config.rule
    model = build_model(config, *data.dims(config.mode))
    opt = build_optimizer(config, model, steps=total_steps(config, data))
    spec, inference = run_spec(config)
    step = make_train_step(opt, rule, spec=spec, inference=inference, mode=config.mode)
    state = opt.init(eqx.filter(model, eqx.is_array))
    x, y = data.pairs(config.mode)
    key = jax.random.PRNGKey(config.seed)
    times, steps, accuracies, first_loss, diverged, n = [], [], [], None, "", 0
    t_start = time.perf_counter()
    for epoch in range(config.epochs):
        for xb, yb in pdata.batches(x, y, config.batch_size, key=jax.random.fold_in(key, epoch)):
            t0 = time.perf_counter()
            new_model, new_state, info = step(model, state, xb, yb)
            loss = float(info.loss)  # blocks until the step is done
            times.append(time.perf_counter() - t0)
            first_loss = loss if first_loss is None else first_loss
            kind = Divergence(int(divergence_kind(config, loss, info.status, info.energy, first_loss)))
            if kind is not Divergence.NONE:
                diverged = kind.describe(config)
                break
            model, state, n = new_model, new_state, n + 1
            steps.append(int(info.infer_steps))
        if diverged:
            break
        accuracies.append(evaluate(model, data.x_test, data.y_test, spec).accuracy)
    ev = evaluate(model, data.x_test, data.y_test, spec)
    xb, yb = x[: config.batch_size], y[: config.batch_size]
    cos = [float(c) for c in rule_bp_cosines(rule, model, xb, yb, spec, inference, config.mode)]
    timed = times[WARMUP_STEPS:] or times
    return {"test_accuracy": ev.accuracy, "best_test_accuracy": max([*accuracies, ev.accuracy]),
            "test_loss": ev.loss, "steps": n, "diverged": diverged,
            "step_ms": 1e3 * statistics.median(timed), "infer_steps": float(np.median(steps)) if steps else 0.0,
            "cosine_by_layer": cos, "wall_seconds": time.perf_counter() - t_start}


def run_variants(out: Path, study: VariantsStudy, rules: Iterable[str] | None = None,
                 log=lambda *a: None) -> list[dict]:
    """Run (or reuse) every point of ``study`` and write the table; returns its rows."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data_cache: dict = {}
    rows = []
    for p in study_points(study, rules):
        row = {k: p[k] for k in ("dataset", "network", "rule")}
        row.update(status="skipped", note=p["skip"])
        config = p["config"]
        if config is not None:
            done = out / "runs" / f"{_slug(p)}.json"
            saved = json.loads(done.read_text()) if done.exists() else None
            if saved is not None and saved.get("config") == config.to_dict():
                result = saved["result"]
            else:
                result = _run_one(config, data_cache, log)
                if "unavailable" not in result:
                    atomic_write_json(done, {"config": config.to_dict(), "result": result})
            row.update(_row(result))
        rows.append(row)
    _write_table(out, rows)
    return rows


def _run_one(config: TrainConfig, data_cache: dict, log) -> dict:
    key = (config.dataset.value, config.model, config.n_train)
    if key not in data_cache:
        try:
            data_cache[key] = load_run_data(config)
        except DatasetUnavailable as e:
            data_cache[key] = e
    data = data_cache[key]
    if isinstance(data, DatasetUnavailable):
        # DatasetUnavailable's message ends with the command or path that provides the set
        hint = " ".join(str(data).split()).rstrip(".").split(". ")[-1]
        return {"unavailable": f"data set {config.dataset.value!r} is not installed here ({hint})"}
    log(f"variants: {config.dataset.value} {config.model} depth {config.depth} {config.algo}")
    try:
        return train_point(config, data)
    except ValueError as e:  # the rule's validate rejected the built model
        return {"rejected": " ".join(str(e).split())}


def _row(result: dict) -> dict:
    if "unavailable" in result:
        return {"status": "skipped", "note": result["unavailable"]}
    if "rejected" in result:
        return {"status": "skipped", "note": f"rejected: {result['rejected']}"}
    cos = np.asarray(result["cosine_by_layer"], float)
    return {
        "status": "diverged" if result["diverged"] else "ok", "note": result["diverged"],
        "test_accuracy": result["test_accuracy"], "best_test_accuracy": result.get("best_test_accuracy"),
        "step_ms": result["step_ms"], "infer_steps": result["infer_steps"],
        "cos_min": float(cos.min()), "cos_mean": float(cos.mean()), "cos_input": float(cos[0]),
        "cos_output": float(cos[-1]), "layers": len(cos), "cosine_by_layer": result["cosine_by_layer"],
        "steps": result["steps"],
    }


COLUMNS = ("dataset", "network", "rule", "status", "test_accuracy", "best_test_accuracy", "step_ms", "infer_steps", "layers", "cos_min",
           "cos_mean", "cos_input", "cos_output", "steps", "note")


def _write_table(out: Path, rows: list[dict]) -> None:
    atomic_write_csv(out / "variants.csv", [{c: r.get(c, "") for c in COLUMNS} for r in rows])
    atomic_write_csv(out / "variants_cosine_by_layer.csv",
                     [{"dataset": r["dataset"], "network": r["network"], "rule": r["rule"], "layer": i + 1, "cosine": c}
                      for r in rows for i, c in enumerate(r.get("cosine_by_layer") or [])])
    lines = ["| data set | network | rule | test acc. (final) | best epoch | step (ms) | inference steps / batch | "
             "cos(rule, BP) per layer: min / mean | input / output layer | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "skipped":
            lines.append(f"| {r['dataset']} | {r['network']} | {r['rule']} | skipped | | | | | | {r['note']} |")
            continue
        acc = f"{100 * r['test_accuracy']:.2f}%" if r["status"] == "ok" else "diverged"
        best = "" if r.get("best_test_accuracy") is None else f"{100 * r['best_test_accuracy']:.2f}%"
        lines.append(f"| {r['dataset']} | {r['network']} | {r['rule']} | {acc} | {best} | {r['step_ms']:.2f} | "
                     f"{r['infer_steps']:g} | {r['cos_min']:.3f} / {r['cos_mean']:.3f} | "
                     f"{r['cos_input']:.3f} / {r['cos_output']:.3f} | {r['note']} |")
    atomic_write_text(out / "variants.md", "\n".join(lines) + "\n")
    _cosine_figure(out / "variants_cosine_by_layer.png", rows)


def _cosine_figure(path: Path, rows: list[dict]) -> None:
    """One panel per (data set, network): the per-layer cosine of each rule's weight gradient
    to BP's, layer 1 (input) to L (output): which layers each rule reaches."""
    from ..report.figures import line_plot, panels, save_figure  # matplotlib only when needed

    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        if r.get("cosine_by_layer") and r["rule"] != "bp":
            groups.setdefault((r["dataset"], r["network"]), {})[r["rule"]] = r["cosine_by_layer"]
    if not groups:
        return
    fig, axes = panels(len(groups), ncols=min(len(groups), 2), panel_size=(5.6, 3.6),
                       suptitle="cosine(rule's weight gradient, BP's) per layer, after training")
    for ax, ((ds, net), series) in zip(axes, groups.items()):
        n = max(len(v) for v in series.values())
        line_plot(ax, np.arange(1, n + 1), series, title=f"{ds}: {net}", xlabel="layer (1 = input)",
                  ylabel="cosine to BP", legend_loc="lower left")
        ax.set_ylim(-0.1, 1.05)
    save_figure(fig, path)


def _pending_runs(out: Path, study: VariantsStudy) -> list[TrainConfig]:
    todo = []
    for p in study_points(study):
        done = Path(out) / "runs" / f"{_slug(p)}.json"
        if p["config"] is not None and not done.exists():
            todo.append(p["config"])
    return todo


def _summary(out: Path, rows: list[dict]) -> dict:
    ok = [r for r in rows if r["status"] == "ok"]
    return {"table": str(Path(out) / "variants.md"), "runs": len(ok),
            "skipped": sum(r["status"] == "skipped" for r in rows),
            "diverged": sum(r["status"] == "diverged" for r in rows)}


@register("variants", "every learning rule (pc, bp, ipc, epc, nudging, ...) on an MLP and a 32-layer μPC ResNet, "
          "MNIST + Fashion-MNIST: accuracy, step time, inference steps, per-layer cosine to BP",
          pending=lambda out, quick: _pending_runs(out, QUICK if quick else FULL))
def variants(out: Path, quick: bool) -> dict:
    return _summary(out, run_variants(out, QUICK if quick else FULL))


@register("variants", "every learning rule on pcx's benchmark MLP with settings near pcx's searched ones "
          "(GELU, biases, AdamW, warm-up + cosine, 25 epochs), MNIST + Fashion-MNIST",
          pending=lambda out, quick: _pending_runs(out, PCX_QUICK if quick else PCX), protocol="pcx")
def variants_pcx(out: Path, quick: bool) -> dict:
    return _summary(out, run_variants(out, PCX_QUICK if quick else PCX))


@register("variants", "ePC against PC (GD T = 8, and one Newton step) and BP on the 128-layer μPC ResNet, one "
          "epoch of MNIST: accuracy and the per-layer cosine to BP (which layers each reaches)",
          pending=lambda out, quick: _pending_runs(out, DEEP_QUICK if quick else DEEP), protocol="deep")
def variants_deep(out: Path, quick: bool) -> dict:
    return _summary(out, run_variants(out, DEEP_QUICK if quick else DEEP))
