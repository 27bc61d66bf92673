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

import contextlib
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import data as pdata
from ..energy import EnergySpec, layer_energies
from ..inference import infer
from ..io import atomic_write_json
from ..learning import InferenceConfig, evaluate, make_train_step, scale_updates
from ..learning.epc import EPC, step_size_warning as epc_step_size_warning
from ..options import Mode
from ..parallel import data_parallel_mesh, replicate, shard_batch
from ..params import get_param
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .divergence import Divergence, divergence, divergence_kind  # noqa: F401  (divergence: re-exported)
from .engine import Checkpoint, Every, TrainLoop, Window, eval_points
from .metrics_log import append_metrics, read_metrics, reset_metrics, truncate_metrics
from .models import MODELS


class RunError(Exception):
    """A run folder cannot be used (exists, not a run, unwritable)."""


@dataclass
class RunData:
    """Device arrays of one data set: inputs (n, D), images (n, H, W, C) or token windows
    (n, T) int32; targets one-hot (n, K), or next-token ids (n, T) int32 for text (``vocab``
    set), made one-hot per batch by :meth:`target`. For text, the test split is the
    validation split."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    vocab: int | None = None

    @property
    def d_in(self) -> int | tuple[int, ...]:
        """The input dimension D, the image shape (H, W, C), or the vocabulary V for text."""
        if self.vocab is not None:
            return self.vocab
        return self.x_train.shape[1] if self.x_train.ndim == 2 else tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """K, the number of outputs (V for text)."""
        return self.vocab if self.vocab is not None else self.y_train.shape[1]

    def target(self, y: jax.Array) -> jax.Array:
        """The model's target for stored targets ``y``: one-hot (…, V) for token ids."""
        return y if self.vocab is None else jax.nn.one_hot(y, self.vocab, dtype=jnp.float32)

    def pairs(self, mode: Mode, split: str = "train") -> tuple[jax.Array, jax.Array]:
        """The (model input, stored target) pair of a split: (inputs, labels) when supervised;
        (one-hot labels (n, K) as the initial latent, flattened inputs (n, D)) when generative."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return (x, y) if mode is Mode.SUPERVISED else (y, x.reshape(x.shape[0], -1))

    def dims(self, mode: Mode) -> tuple[Any, int]:
        """(model input dimension or image shape, output dimension) for ``mode``."""
        if mode is Mode.SUPERVISED:
            return self.d_in, self.n_classes
        return self.n_classes, int(np.prod(self.x_train.shape[1:]))


def _check_finite(name: str, arrays: dict[str, np.ndarray]) -> None:
    for split, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"data set {name!r}: the {split} inputs contain NaN or inf values")


def load_run_data(config: TrainConfig) -> RunData:
    """Load ``config.dataset`` (first ``n_train`` training examples or windows) as device arrays."""
    name = config.dataset.value
    if config.dataset.text:
        ds = pdata.load_text_dataset(name, config.context, cache_dir=config.data_dir)
        n = ds.n_train if config.n_train is None else min(config.n_train, ds.n_train)
        return RunData(jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n]), jnp.asarray(ds.x_val),
                       jnp.asarray(ds.y_val), vocab=ds.vocab_size)
    opts = {"path": config.cifar_path} if config.cifar_path else {}
    ds = pdata.load_dataset(name, cache_dir=config.data_dir, **opts)
    n = ds.n_train if config.n_train is None else min(config.n_train, ds.n_train)
    _check_finite(name, {"train": ds.x_train, "test": ds.x_test})
    x_train, x_test = ds.x_train[:n], ds.x_test
    if MODELS.get(config.model).images:
        image = pdata.dataset_image_shape(name)
        if image is None:
            raise ValueError(f"--model {config.model} needs a data set of images; {name!r} has "
                             f"flat inputs of shape {tuple(ds.image_shape)}")
        x_train, x_test = x_train.reshape((-1, *image)), x_test.reshape((-1, *image))
    return RunData(jnp.asarray(x_train), jnp.asarray(ds.one_hot("train")[:n]),
                   jnp.asarray(x_test), jnp.asarray(ds.one_hot("test")))


def build_model(config: TrainConfig, d_in, d_out: int):
    """The model ``config``'s learning rule trains (initialised from ``PRNGKey(seed)``) for
    inputs of dimension ``d_in`` (or image shape (H, W, C)) and ``d_out`` outputs: the
    registered model, passed through the rule's ``prepare`` (which may add parameters, such
    as an amortiser) and checked by its ``validate``."""
    rule = config.rule
    pcn = MODELS.get(config.model).build(config, d_in, d_out)
    model = rule.prepare(pcn, jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
    rule.validate(model=model, solver=config.make_solver() if rule.runs_inference else None, mode=config.mode)
    return model


def float_scope(config: TrainConfig):
    """The numeric context of a run: ``jax.enable_x64`` when ``config.x64``, else nothing."""
    return jax.enable_x64(True) if config.x64 else contextlib.nullcontext()


def cast_floats(tree, config: TrainConfig):
    """Floating arrays of ``tree`` in the run's float type (float64 if ``x64``); others as they are."""
    if not config.x64:
        return tree
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_array(a) and jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def total_steps(config: TrainConfig, data: "RunData") -> int:
    """The run's number of weight updates: ``epochs`` × full batches of the training set."""
    return config.epochs * pdata.num_batches(data.pairs(config.mode)[0].shape[0], config.batch_size, drop_last=True)


def build_optimizer(config: TrainConfig, model, learning_rate=None, *, steps: int | None = None
                    ) -> optax.GradientTransformation:
    """``config``'s optimiser, with the parameterisation's per-layer lr factors if ``scale_lr``;
    ``steps`` is the run's length (:func:`total_steps`), needed by a learning-rate schedule."""
    opt = config.make_optimizer(learning_rate, steps)
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
    mesh: Any = None  # a jax.sharding.Mesh over config.devices devices, or None


def run_spec(config: TrainConfig, step_size=None) -> tuple[EnergySpec, InferenceConfig]:
    """The energy and inference settings of ``config`` (``step_size`` overrides the activity lr)."""
    return (EnergySpec(config.loss, config.precision),
            InferenceConfig(config.make_solver(step_size), config.infer_steps, rtol=config.infer_rtol))


def run_data(config: TrainConfig, data: RunData | None = None) -> RunData:
    """``data`` (loaded if ``None``) with its floating arrays in the run's float type."""
    data = load_run_data(config) if data is None else data
    return replace(data, **{k: cast_floats(getattr(data, k), config) for k in ("x_train", "y_train", "x_test", "y_test")})


def prepare(config: TrainConfig, data: RunData | None = None) -> _Prepared:
    """Load the data and build the model, optimiser and jitted step of ``config`` (and, with
    ``config.devices`` > 1, the mesh that its batches are split over)."""
    mesh = data_parallel_mesh(config.devices)  # before the first computation
    data = run_data(config, data)
    model = cast_floats(build_model(config, *data.dims(config.mode)), config)
    opt = build_optimizer(config, model, steps=total_steps(config, data))
    spec, inference = run_spec(config)
    step = make_train_step(opt, config.rule, spec=spec, inference=inference, mode=config.mode)
    return _Prepared(model, opt, step, spec, inference, data, mesh)


def run_warning(config: TrainConfig, model) -> str | None:
    """A setting that trains but is likely to fail (ePC's step size at depth), or ``None``."""
    if isinstance(config.rule, EPC) and config.uses_activity_lr:
        return epc_step_size_warning(model, config.activity_lr)
    return None


def evaluate_run(p: _Prepared, model, config: TrainConfig) -> dict[str, float]:
    """Test loss and accuracy; for a generative model also the reconstruction MSE."""
    if config.mode is Mode.GENERATIVE:
        from ..learning.generative import evaluate_generative

        x, y = p.data.pairs(config.mode, "test")
        return {k: float(v) for k, v in evaluate_generative(model, x, y, p.spec, p.inference).items()}
    ev = evaluate(model, p.data.x_test, p.data.y_test, p.spec, target=p.data.target)
    out = {"test_loss": ev.loss, "test_accuracy": ev.accuracy}
    if p.data.vocab is not None:  # text: the loss is summed over the T positions of a window
        out["test_bpc"] = float(pdata.bits_per_char(ev.loss / config.context))
    return out


def _diagnose(p: _Prepared, model, config: TrainConfig) -> dict[str, Any]:
    """Per-layer energies and the inference energy trace on a fixed diagnostic batch."""
    if not config.rule.runs_inference:
        return {}
    x, y = p.data.pairs(config.mode)
    xb, yb = x[: config.batch_size], p.data.target(y[: config.batch_size])
    sol = infer(model, xb, yb, solver=p.inference.solver, spec=p.spec, max_steps=config.infer_steps,
                rtol=config.infer_rtol, record_energy=True, throw=False, mode=config.mode)
    x_used = xb if sol.latent is None else sol.latent
    return {
        "layer_energies": [float(v) for v in layer_energies(model, sol.z, x_used, yb, p.spec)],
        "infer_trace": [] if sol.energies is None else [float(v) for v in sol.energies[: int(sol.steps)]],
    }


def loop_parts(p: _Prepared, config: TrainConfig) -> tuple[Callable, Callable, int]:
    """The :class:`TrainLoop` pieces of a run: ``step(state, batch, alive)`` on state
    (model, optimiser state), ``batches(epoch)`` (seeded by ``config.seed`` and the epoch, last
    partial batch dropped) and the number of batches per epoch."""
    x, y = p.data.pairs(config.mode)
    key = jax.random.PRNGKey(config.seed)

    def step(state, batch, alive):
        model, opt_state, info = p.step(*state, *batch)
        return (model, opt_state), info

    def batches(epoch):
        for xb, yb in pdata.batches(x, y, config.batch_size, key=jax.random.fold_in(key, epoch)):
            batch = xb, p.data.target(yb)
            yield batch if p.mesh is None else shard_batch(batch, p.mesh)

    return step, batches, pdata.num_batches(x.shape[0], config.batch_size, drop_last=True)


def initial_state(p: _Prepared) -> tuple:
    """(model, optimiser state) at step 0 (on every device of the run's mesh, if any)."""
    return placed(p, (p.model, p.optimizer.init(eqx.filter(p.model, eqx.is_array))))


def placed(p: _Prepared, state):
    """``state`` replicated over the run's mesh (unchanged on one device)."""
    return state if p.mesh is None else replicate(state, p.mesh)


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


def _legacy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of pclab ≤ 0.x (``acc`` lists, scalar ``first_loss``) in today's form."""
    if "hooks" in meta or "acc" not in meta:
        return meta
    acc = meta["acc"] or {}
    window = {f: [[v] for v in acc.get(k, [])] for f, k in (("loss", "loss"), ("energy", "energy"),
                                                             ("infer_steps", "steps"))}
    return {**meta, "hooks": {"window": {"values": window}}}


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
    with float_scope(config):
        return _train(config, out, resume, created, progress, on_eval)


def _train(config: TrainConfig, out: Path, resume: bool, created: bool, progress, on_eval) -> dict[str, Any]:
    try:
        p = prepare(config)  # data errors surface before anything is written
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # leave nothing behind
        raise
    if not resume:
        atomic_write_json(out / "config.json", config.to_dict())
    warning = run_warning(config, p.model)
    if warning:
        print(f"pclab train: warning: {warning}", file=sys.stderr)

    step, batches, n_batches = loop_parts(p, config)
    window, rows = Window(), []

    def evaluate_now(loop: TrainLoop, state) -> None:
        means = window.drain()
        row = {"step": loop.pos.step, "epoch": loop.pos.epoch + loop.pos.batch / n_batches,
               "train_loss": float(means["loss"][0]), "energy": float(means["energy"][0]),
               **evaluate_run(p, state[0], config), "infer_steps": float(means["infer_steps"][0]),
               "wall_time": loop.wall(), **_diagnose(p, state[0], config)}
        append_metrics(out / "metrics.jsonl", row)
        rows.append(row)
        if on_eval:
            on_eval(row)

    loop = TrainLoop(
        step, batches,
        epochs=config.epochs, n_batches=n_batches, progress=progress, examples_per_step=config.batch_size,
        divergence=lambda info, ref: divergence_kind(config, info.loss, info.status, info.energy, ref),
        hooks=[window, Every(eval_points(n_batches, config.evals_per_epoch), evaluate_now),
               Checkpoint(lambda state, meta: save_checkpoint(out, state, meta), config.checkpoint_every)])

    state = initial_state(p)
    if resume and (out / "checkpoint.json").exists():
        state, meta = load_checkpoint(out, state)
        state = placed(p, state)
        loop.restore(_legacy_meta(meta))
        rows = truncate_metrics(out / "metrics.jsonl", meta["step"])
    elif not resume or not (out / "metrics.jsonl").exists():
        reset_metrics(out / "metrics.jsonl")
    else:
        truncate_metrics(out / "metrics.jsonl", -1)
    model = loop.run(state)[0]

    kind = loop.watch.reason(0)
    diverged = kind is not Divergence.NONE
    last = rows[-1] if rows else {}
    accuracies = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
    summary = {
        "test_accuracy": last.get("test_accuracy"), "test_loss": last.get("test_loss"),
        # the highest test accuracy of any evaluation: what pcx's benchmark reports (a choice
        # made on the test set; test_accuracy, the final one, is the unbiased figure)
        "best_test_accuracy": max(accuracies) if accuracies else None,
        "train_loss": last.get("train_loss"), **({"test_bpc": last.get("test_bpc")} if p.data.vocab else {}),
        "epochs": config.epochs, "steps": loop.pos.step,
        "wall_seconds": loop.pos.wall_time, "diverged": diverged,
        "diverged_step": int(loop.watch.died_at[0]) if diverged else None,
        "diverged_reason": kind.describe(config) if diverged else None,
        "diverged_kind": kind.name.lower() if diverged else None,
        "n_params": int(sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))),
        "backend": jax.default_backend(),
    }
    if config.mode is Mode.GENERATIVE:
        summary["recon_mse"] = last.get("recon_mse")
        from ..learning.generative import samples_figure

        image = pdata.dataset_image_shape(config.dataset.value)  # (H, W, C) or None
        samples_figure(model, p.data.n_classes, out / "samples.png",
                       image_shape=None if image is None else (image[:2] if image[2] == 1 else image))
    atomic_write_json(out / "summary.json", summary)
    from ..report.run_report import write_run_report  # matplotlib only when needed

    write_run_report(out, config.to_dict(), read_metrics(out / "metrics.jsonl"), summary)
    return summary
