"""Sweeps: many training runs into one folder with a ``results.csv``.

* A grid over ``lr``, ``activity_lr`` and/or ``seed`` only runs as **one compiled program**
  (:func:`pclab.experiments.lr_grid.train_lr_grids`).
* Any other grid runs one process per point, ``jobs`` at a time. Each point is a normal run
  folder ``runs/NAME``; a point with a ``summary.json`` is skipped and a point interrupted
  mid-run is resumed, so a sweep is resumable by running it again.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import equinox as eqx

from .. import data as pdata
from ..bench import matmul_throughput
from ..data import dataset_size
from ..io import atomic_write_csv, atomic_write_json
from ..report.figures import panels, save_figure
from .config import TrainConfig
from .lr_grid import GridResult, mean_over_seeds, train_lr_grids
from .models import MODELS
from .runner import RunError, build_model, train

VMAP_FIELDS = {"lr", "activity_lr", "seed"}  # grids over these run as one vmapped program


class BudgetExceeded(Exception):
    """The sweep's estimated time exceeds the budget and ``yes`` was not given."""


def point_name(changes: dict[str, Any]) -> str:
    return "_".join(f"{k}={v.value if hasattr(v, 'value') else v}" for k, v in changes.items()) or "base"


def grid_points(base: TrainConfig, grid: dict[str, Sequence[Any]]) -> list[tuple[str, TrainConfig]]:
    """The Cartesian product of ``grid`` applied to ``base``, as (name, config) pairs."""
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        changes = dict(zip(keys, values))
        out.append((point_name(changes), TrainConfig.from_dict({**base.to_dict(), **changes})))
    return out


def _matmul_passes(c: TrainConfig, n_out: int = 10) -> float:
    """Layer passes per training step: 3 for a rule without inference (BP); otherwise
    T × the solver's passes per step (:meth:`AbstractSolver.passes`: 2 for GD, 1 + 3·O for
    Newton, calibrated on a depth-128 grid) + 3."""
    if not c.rule.runs_inference:
        return 3
    return c.infer_steps * c.make_solver().passes(n_out) + 3


def _input_size(c: TrainConfig) -> tuple[int, Any, int]:
    """(training examples or windows, model input shape, outputs) of ``c``'s data set."""
    if c.dataset.text:  # cached after the first load: cheap
        ds = pdata.load_text_dataset(c.dataset.value, c.context, cache_dir=c.data_dir)
        return ds.n_train, ds.vocab_size, ds.vocab_size
    n_train, d_in = dataset_size(c.dataset.value)
    return n_train, pdata.dataset_image_shape(c.dataset.value) if MODELS.get(c.model).images else d_in, 10


def estimate_seconds(configs: Iterable[TrainConfig], gflops: float | None = None) -> float:
    """Rough wall time of the runs by the cost model of ``pclab.bench`` and a measured matmul
    throughput (``gflops``; measured here when not given)."""
    if gflops is None:
        gflops = matmul_throughput(8, 128, 128, repeats=3)
    total = 0.0
    for c in configs:
        n_train, shape, n_out = _input_size(c)
        steps = c.epochs * (min(c.n_train or n_train, n_train) // c.batch_size)
        model = eqx.filter_eval_shape(build_model, c, shape, n_out)
        per_step = _matmul_passes(c) * model.matmul_flops(c.batch_size)
        total += steps * per_step / (gflops * 1e9)
    return total


def check_budget(todo: list[TrainConfig], budget_s: float, yes: bool, what: str = "this sweep") -> None:
    """Raise :class:`BudgetExceeded` if ``todo`` is estimated to take longer than ``budget_s``."""
    if yes or not todo:  # the estimate runs JAX: skip it when the answer is already yes
        return
    est = estimate_seconds(todo)
    if est > budget_s:
        raise BudgetExceeded(f"{what} ({len(todo)} training runs) would take about {est / 60:.0f} min on this "
                             f"machine, over the budget of {budget_s / 60:.0f} min; pass --yes to run it anyway")


def pending_points(points: list[tuple[str, TrainConfig]], out: str | Path) -> list[tuple[str, TrainConfig]]:
    """The points of a :func:`run_sweep` into ``out`` that have no ``summary.json`` yet."""
    return [(name, c) for name, c in points if not (Path(out) / "runs" / name / "summary.json").exists()]


def _check_same_config(run_dir: Path, config: TrainConfig) -> None:
    """A folder left by an earlier sweep may only be resumed or reused with the same config."""
    try:
        old = json.loads((run_dir / "config.json").read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise RunError(f"{str(run_dir)!r} holds an unreadable config.json ({e}); remove that folder") from None
    try:  # fields added since that run was written take their defaults
        old = TrainConfig.from_dict(old).to_dict()
    except (TypeError, ValueError) as e:
        raise RunError(f"{str(run_dir)!r} holds a config.json this pclab cannot read ({e}); remove that folder") from None
    new = config.to_dict()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise RunError(f"{str(run_dir)!r} holds a run with a different config ({diff}); "
                       "choose another --out or remove that folder")


def _run_point(config_dict: dict, out: str) -> dict:
    """Worker: run (or resume, or skip) one point; never raises for a failed run."""
    out_p = Path(out)
    if (out_p / "summary.json").exists():
        return json.loads((out_p / "summary.json").read_text())
    try:
        config = TrainConfig.from_dict(config_dict)
        return train(config, out_p, resume=(out_p / "config.json").exists(), progress=False)
    except Exception as e:  # a failing point is recorded, the sweep goes on
        return {"error": " ".join(str(e).split()), "diverged": None, "test_accuracy": None}


def oversubscription(jobs: int, devices: int, cores: int) -> str:
    """A warning when ``jobs`` processes of ``devices`` XLA devices each ask for more cores than
    there are (each CPU device runs on its own core; they would compete), else ``""``."""
    if jobs * devices <= cores:
        return ""
    return (f"--jobs {jobs} x devices {devices} = {jobs * devices} XLA devices on {cores} cores; "
            f"the processes will compete for cores (use --jobs {max(1, cores // devices)} or fewer devices)")


def run_sweep(
    points: list[tuple[str, TrainConfig]],
    out: str | Path,
    *,
    jobs: int = 1,
    budget_s: float = 3600.0,
    yes: bool = False,
    log=print,
) -> list[dict]:
    """Run ``points`` into ``out/runs/NAME`` and write ``out/results.csv``; see module docstring."""
    out = Path(out)
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not valid; expected an integer >= 1")
    for name, c in points:
        _check_same_config(out / "runs" / name, c)
    todo = [c for _, c in pending_points(points, out)]
    check_budget(todo, budget_s, yes)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"--out {str(out)!r} is not writable: {e.strerror or e}") from None
    log(f"sweep: {len(points)} points ({len(points) - len(todo)} already done)")
    warning = oversubscription(jobs, max((c.devices for _, c in points), default=1), os.cpu_count() or 1)
    if warning:
        log(f"sweep: warning: {warning}")
    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    results: dict[str, dict] = {}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_run_point, c.to_dict(), str(out / "runs" / name)): name for name, c in points}
        for fut in cf.as_completed(futures):
            name = futures[fut]
            results[name] = fut.result()
            r = results[name]
            log(f"  {name}: " + (f"error: {r['error']}" if "error" in r else
                                 "diverged" if r.get("diverged") else f"test accuracy {100 * r['test_accuracy']:.2f}%"))
    rows = [_row(name, c, results[name]) for name, c in points]
    atomic_write_csv(out / "results.csv", rows)
    return rows


def run_lr_sweep(
    base: TrainConfig,
    grid: dict[str, Sequence[float]],
    out: str | Path,
    *,
    budget_s: float = 3600.0,
    yes: bool = False,
    progress: bool | None = None,
) -> list[dict]:
    """A grid over ``lr``, ``activity_lr`` and/or ``seed`` as one compiled program.

    Points are named, checked and recorded as in :func:`run_sweep` (same ``results.csv``
    columns; each ``out/runs/NAME`` holds ``config.json`` and ``summary.json``). Being one
    program, the grid is not resumed point by point: a rerun whose points all have summaries
    reuses them, otherwise the whole grid runs again. ``wall_seconds`` is the whole grid's time.
    Also writes ``lr_grid.png``, the test-loss heatmap (weight lr × activity lr; the mean over
    seeds when there is a seed axis).
    """
    out = Path(out)
    if not grid or not set(grid) <= VMAP_FIELDS:
        raise ValueError(f"grid={sorted(grid)!r} is not valid; expected axes among {sorted(VMAP_FIELDS)}")
    if "activity_lr" in grid and not base.uses_activity_lr:
        what = f"algo={base.algo!r} runs no inference" if not base.rule.runs_inference else f"solver={base.solver!r} takes no step size"
        raise ValueError(f"--set activity_lr: {what}, so an activity-lr axis has no effect; drop it")
    points = grid_points(base, grid)
    for name, c in points:
        _check_same_config(out / "runs" / name, c)
    summaries = {name: out / "runs" / name / "summary.json" for name, _ in points}
    if not all(f.exists() for f in summaries.values()):
        check_budget([c for _, c in points], budget_s, yes)  # one vmapped program ≈ one run per point
        start = time.perf_counter()
        seeds = grid.get("seed", [base.seed])
        grids = train_lr_grids(base, grid.get("lr", [base.lr]), grid.get("activity_lr"), seeds=seeds, progress=progress)
        wall = time.perf_counter() - start
        by_point = {(seed, r["lr"], r["activity_lr"]): (r, res.steps) for seed, res in zip(seeds, grids) for r in res.rows()}
        for name, c in points:
            r, steps = by_point[(c.seed, c.lr, c.activity_lr)]
            atomic_write_json(out / "runs" / name / "config.json", c.to_dict())
            atomic_write_json(summaries[name], {**r, "epochs": c.epochs, "steps": steps, "wall_seconds": wall})
    rows = [_row(name, c, json.loads(summaries[name].read_text())) for name, c in points]
    atomic_write_csv(out / "results.csv", rows)
    seeds = sorted({r["seed"] for r in rows})
    mean = mean_over_seeds([GridResult.from_rows([r for r in rows if r["seed"] == s]) for s in seeds])
    fig, (ax,) = panels(1, panel_size=(5.2, 4.2), suptitle="test loss after training (✕ = diverged, red = best)")
    mean.panel(ax, title=f"{base.dataset.value}, width {base.width}, depth {base.depth}"
               + (f", mean of {len(seeds)} seeds" if len(seeds) > 1 else ""))
    save_figure(fig, out / "lr_grid.png")
    return rows


def _row(name: str, config: TrainConfig, summary: dict) -> dict:
    """One ``results.csv`` row: the config, the summary's numbers and, for a text data set,
    ``test_bpc`` (the validation loss per position in bits, test_loss / context / ln 2)."""
    keep = ("test_accuracy", "best_test_accuracy", "test_loss", "train_loss", "steps", "wall_seconds", "diverged",
            "diverged_step", "error")
    row = {"name": name, **config.to_dict(), **{k: summary.get(k) for k in keep}}
    if config.dataset.text:
        loss = summary.get("test_loss")
        row["test_bpc"] = None if loss is None else float(pdata.bits_per_char(loss / config.context))
    return row
