"""Train one model and write a run folder (the engine behind ``pclab train``).

Run folder::

    config.json       the full resolved TrainConfig
    metrics.jsonl     one object per evaluation (step, epoch, train_loss, energy, test_loss,
                      test_accuracy, infer_steps, wall_time, layer_energies, infer_trace)
    summary.json      final numbers (test_accuracy in [0, 1], train_loss, epochs, steps,
                      wall_seconds, diverged, ...)
    checkpoint.json   + checkpoint-STEP.eqx: model and optimiser state, written atomically
    *.png, report.html

Batches of epoch e are a permutation drawn from ``fold_in(PRNGKey(seed), e)``, so a resumed
run visits exactly the batches an uninterrupted one would and ends with the same metrics.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .. import data as pdata
from ..energy import EnergySpec, layer_energies
from ..inference import infer
from ..learning import InferenceConfig, evaluate, make_train_step, scale_updates
from ..io import atomic_write_json
from ..params import get_param
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .divergence import Divergence, divergence, divergence_kind  # noqa: F401  (divergence: re-exported)
from .models import MODELS
from .metrics_log import append_metrics, read_metrics, reset_metrics, truncate_metrics


class RunError(Exception):
    """A run folder cannot be used (exists, not a run, unwritable)."""


@dataclass
class RunData:
    """Device arrays of one data set: inputs (n, D) or images (n, H, W, C), one-hot targets (n, K)."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array

    @property
    def d_in(self) -> int | tuple[int, ...]:
        """The input dimension D, or the image shape (H, W, C) for image inputs."""
        return self.x_train.shape[1] if self.x_train.ndim == 2 else tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return self.y_train.shape[1]


def load_run_data(config: TrainConfig) -> RunData:
    """Load ``config.dataset`` (first ``n_train`` training examples) as device arrays."""
    opts = {"path": config.cifar_path} if config.cifar_path else {}
    ds = pdata.load_dataset(config.dataset.value, cache_dir=config.data_dir, **opts)
    n = ds.n_train if config.n_train is None else min(config.n_train, ds.n_train)
    for split, arr in (("train", ds.x_train), ("test", ds.x_test)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"data set {config.dataset.value!r}: the {split} inputs contain NaN or inf values")
    x_train, x_test = ds.x_train[:n], ds.x_test
    if MODELS.get(config.model).images:
        image = pdata.dataset_image_shape(config.dataset.value)
        if image is None:
            raise ValueError(f"--model {config.model} needs a data set of images; {config.dataset.value!r} has "
                             f"flat inputs of shape {tuple(ds.image_shape)}")
        x_train, x_test = x_train.reshape((-1, *image)), x_test.reshape((-1, *image))
    return RunData(jnp.asarray(x_train), jnp.asarray(ds.one_hot("train")[:n]),
                   jnp.asarray(x_test), jnp.asarray(ds.one_hot("test")))


def build_model(config: TrainConfig, d_in, d_out: int):
    """The model of ``config`` (initialised from ``PRNGKey(seed)``) for inputs of dimension
    ``d_in`` (or image shape (H, W, C)) and ``d_out`` classes."""
    return MODELS.get(config.model).build(config, d_in, d_out)


def build_optimizer(config: TrainConfig, model, learning_rate=None) -> optax.GradientTransformation:
    """``config``'s optimiser, with the parameterisation's per-layer lr factors if ``scale_lr``."""
    opt = config.make_optimizer(learning_rate)
    if config.scale_lr:
        param = get_param(config.param, config.gamma)
        opt = optax.chain(opt, scale_updates(param, model))
    return opt


@dataclass
class _Prepared:
    model: Any
    optimizer: optax.GradientTransformation
    step: Callable
    spec: EnergySpec
    inference: InferenceConfig
    data: RunData


def prepare(config: TrainConfig) -> _Prepared:
    """Load the data and build the model, optimiser and jitted step of ``config``."""
    data = load_run_data(config)
    model = build_model(config, data.d_in, data.n_classes)
    opt = build_optimizer(config, model)
    spec = EnergySpec(config.loss, config.precision)
    inference = InferenceConfig(config.make_solver(), config.infer_steps, rtol=config.infer_rtol)
    step = make_train_step(opt, config.algo, spec=spec, inference=inference)
    return _Prepared(model, opt, step, spec, inference, data)


def _diagnose(p: _Prepared, model, config: TrainConfig) -> dict[str, Any]:
    """Per-layer energies and the inference energy trace on a fixed diagnostic batch."""
    if not config.rule.runs_inference:
        return {}
    xb, yb = p.data.x_train[: config.batch_size], p.data.y_train[: config.batch_size]
    sol = infer(model, xb, yb, solver=p.inference.solver, spec=p.spec, max_steps=config.infer_steps,
                rtol=config.infer_rtol, record_energy=True, throw=False)
    return {
        "layer_energies": [float(v) for v in layer_energies(model, sol.z, xb, yb, p.spec)],
        "infer_trace": [] if sol.energies is None else [float(v) for v in sol.energies[: int(sol.steps)]],
    }


def _check_out(out: Path, resume: bool) -> None:
    if resume:
        if not (out / "config.json").is_file():
            raise RunError(f"--resume {str(out)!r} is not a pclab run folder (no config.json)")
        return
    if (out / "config.json").exists():
        raise RunError(f"--out {str(out)!r} already holds a run; use --resume to continue it or choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".pclab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunError(f"--out {str(out)!r} is not writable: {e.strerror or e}") from None


def train(config: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool | None = None,
          on_eval: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out`` (or continue it if ``resume``).

    Returns the summary dict (also written to ``summary.json``).
    """
    out = Path(out)
    created = not resume and not out.exists()
    _check_out(out, resume)
    if resume:
        config = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    try:
        p = prepare(config)  # data errors surface before anything is written
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # leave nothing behind
        raise
    if not resume:
        atomic_write_json(out / "config.json", config.to_dict())

    opt_state = p.optimizer.init(eqx.filter(p.model, eqx.is_array))
    model, start, wall0, rows = p.model, {"step": 0, "epoch": 0, "batch": 0}, 0.0, []
    if resume and (out / "checkpoint.json").exists():
        (model, opt_state), meta = load_checkpoint(out, (model, opt_state))
        start, wall0 = meta, meta["wall_time"]
        rows = truncate_metrics(out / "metrics.jsonl", meta["step"])
    elif not resume or not (out / "metrics.jsonl").exists():
        reset_metrics(out / "metrics.jsonl")
    else:
        truncate_metrics(out / "metrics.jsonl", -1)

    n_batches = pdata.num_batches(p.data.x_train.shape[0], config.batch_size, drop_last=True)
    total = n_batches * config.epochs
    eval_at = {round(n_batches * (i + 1) / config.evals_per_epoch) for i in range(config.evals_per_epoch)}
    key = jax.random.PRNGKey(config.seed)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, initial=start["step"], disable=not show, unit="step", dynamic_ncols=True)
    t_start = time.perf_counter()
    step_no, diverged = start["step"], None
    acc = start.get("acc") or {"loss": [], "energy": [], "steps": []}  # since the last evaluation
    first_loss = start.get("first_loss")  # the divergence test's reference

    def wall():
        return wall0 + time.perf_counter() - t_start

    def checkpoint(epoch, batch):
        save_checkpoint(out, (model, opt_state),
                        {"step": step_no, "epoch": epoch, "batch": batch, "wall_time": wall(), "acc": acc,
                         "first_loss": first_loss})

    for epoch in range(start["epoch"], config.epochs):
        first = start["batch"] if epoch == start["epoch"] else 0
        order = pdata.batches(p.data.x_train, p.data.y_train, config.batch_size, key=jax.random.fold_in(key, epoch))
        for b, (xb, yb) in enumerate(order):
            if b < first:
                continue
            model, opt_state, info = p.step(model, opt_state, xb, yb)
            step_no += 1
            loss = float(info.loss)
            first_loss = loss if first_loss is None else first_loss
            kind = Divergence(int(divergence_kind(config, loss, info.status, info.energy, first_loss)))
            if kind is not Divergence.NONE:
                diverged = {"step": step_no, "reason": kind.describe(config), "kind": kind.name.lower()}
                break
            acc["loss"].append(loss)
            acc["energy"].append(float(info.energy))
            acc["steps"].append(int(info.infer_steps))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}", ex_s=f"{bar.format_dict['n'] * config.batch_size / max(wall(), 1e-9):.0f}")
            if b + 1 in eval_at:
                ev = evaluate(model, p.data.x_test, p.data.y_test, p.spec)
                row = {"step": step_no, "epoch": epoch + (b + 1) / n_batches, "train_loss": float(np.mean(acc["loss"])),
                       "energy": float(np.mean(acc["energy"])), "test_loss": ev.loss, "test_accuracy": ev.accuracy,
                       "infer_steps": float(np.mean(acc["steps"])), "wall_time": wall(), **_diagnose(p, model, config)}
                append_metrics(out / "metrics.jsonl", row)
                rows.append(row)
                acc = {"loss": [], "energy": [], "steps": []}
                if on_eval:
                    on_eval(row)
            if step_no % config.checkpoint_every == 0 and b + 1 < n_batches:
                checkpoint(epoch, b + 1)
        if diverged:
            break
        checkpoint(epoch + 1, 0)
    bar.close()

    last = rows[-1] if rows else {}
    summary = {
        "test_accuracy": last.get("test_accuracy"), "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"), "epochs": config.epochs, "steps": step_no,
        "wall_seconds": wall(), "diverged": diverged is not None,
        "diverged_step": diverged["step"] if diverged else None,
        "diverged_reason": diverged["reason"] if diverged else None,
        "diverged_kind": diverged["kind"] if diverged else None,
        "n_params": int(sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))),
        "backend": jax.default_backend(),
    }
    atomic_write_json(out / "summary.json", summary)
    from ..report.run_report import write_run_report  # matplotlib only when needed

    write_run_report(out, config.to_dict(), read_metrics(out / "metrics.jsonl"), summary)
    return summary
