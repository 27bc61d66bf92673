r"""Train a whole grid of (weight lr × activity lr) as one compiled program.

Every grid point starts from the same initial model and sees the same batches; the models,
optimiser states (with the learning rate inside, via ``optax.inject_hyperparams``) and
activity step sizes are stacked on a leading grid axis and one ``vmap``-ed, jitted step
advances all of them. A point that diverges is frozen (its updates are masked to zero) and
recorded as diverged; the others continue.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullLocator

from .. import data as pdata
from ..energy import EnergySpec
from ..learning import batched_means, eval_sums, masked_update
from ..report.figures import heatmap, line_plot
from .config import TrainConfig
from .divergence import divergence_kind
from .engine import Hook, TrainLoop
from .runner import RunData, build_model, build_optimizer, cast_floats, float_scope, run_data, run_spec, total_steps


@dataclass(frozen=True)
class GridResult:
    """Final numbers of every grid point, arrays of shape (len(lrs), len(activity_lrs))."""

    lrs: tuple[float, ...]
    activity_lrs: tuple[float, ...]
    test_accuracy: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    steps: int
    diverged_step: np.ndarray  # 1-based step at which each point diverged, -1 if it did not

    def best(self) -> tuple[int, int]:
        """Index (i, j) of the lowest test loss among non-diverged points."""
        loss = np.where(self.diverged | ~np.isfinite(self.test_loss), np.inf, self.test_loss)
        return tuple(int(v) for v in np.unravel_index(np.argmin(loss), loss.shape))

    @classmethod
    def from_rows(cls, rows: Sequence[dict]) -> "GridResult":
        """Rebuild a grid from its rows (:meth:`rows`, a sweep's ``results.csv`` read as dicts,
        strings included). Raises ``ValueError`` unless the rows form a full lr × activity-lr grid."""
        num = lambda v: math.nan if v in (None, "") else float(v)  # noqa: E731
        flag = lambda v: v is True or v == "True"  # noqa: E731
        lrs = tuple(sorted({num(r["lr"]) for r in rows}))
        alrs = tuple(sorted({num(r["activity_lr"]) for r in rows}))
        index = {(num(r["lr"]), num(r["activity_lr"])): r for r in rows}
        if len(rows) != len(index) or len(index) != len(lrs) * len(alrs):
            raise ValueError(f"rows do not form a full lr × activity_lr grid ({len(rows)} rows, "
                             f"{len(lrs)} lrs × {len(alrs)} activity lrs, {len(index)} distinct points)")
        table = lambda key, f: np.array([[f(index[lr, a].get(key)) for a in alrs] for lr in lrs])  # noqa: E731
        diverged = table("diverged", flag)
        died = np.where(diverged, np.nan_to_num(table("diverged_step", num), nan=-1), -1).astype(int)
        steps = max((int(num(r["steps"])) for r in rows if r.get("steps") not in (None, "")), default=0)
        return cls(lrs, alrs, table("test_accuracy", num), np.where(diverged, np.inf, table("test_loss", num)),
                   table("train_loss", num), diverged, steps, died)

    def panel(self, ax, title: str = "", label: str | None = None):
        """Draw the test loss on ``ax``: a heatmap (log colour; ✕ = diverged, red box = best) or,
        for a single activity lr, a curve over the weight lr (✕ at the top = diverged, ring =
        best). Curves of several grids can share ``ax``; ``label`` names this one in a legend."""
        if len(self.activity_lrs) == 1:
            return self._curve(ax, title, label)
        heatmap(ax, np.where(self.diverged, np.nan, self.test_loss), self.lrs, self.activity_lrs, title=title,
                xlabel="activity lr", ylabel="weight lr", cbar_label="test loss", log=True)
        for i, j in zip(*np.nonzero(self.diverged)):
            ax.text(j, i, "✕", ha="center", va="center", color="red")
        i, j = self.best()
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
        return ax

    def _curve(self, ax, title: str, label: str | None):
        lrs, loss, dead = np.asarray(self.lrs), self.test_loss[:, 0], self.diverged[:, 0]
        name = label or "test loss"
        line_plot(ax, lrs, {name: np.where(dead, np.nan, loss)}, title=title, xlabel="weight lr", ylabel="test loss",
                  logx=True, logy=True, legend=label is not None, styles={name: {"marker": "o"}})
        shown = np.unique(np.concatenate([np.asarray(line.get_xdata(), float) for line in ax.get_lines()]))
        ax.set_xlim(shown.min() / 1.5, shown.max() * 1.5)  # every curve's rates, diverged ones included
        ax.set_xticks(shown, [f"{v:g}" for v in shown])
        ax.xaxis.set_minor_locator(NullLocator())
        for lr in lrs[dead]:
            ax.annotate("✕", (lr, 0.97), xycoords=("data", "axes fraction"), ha="center", va="top", color="red")
        if not dead.all():
            i = self.best()[0]
            ax.plot([lrs[i]], [loss[i]], "o", ms=14, mfc="none", mec="red", mew=2)
        return ax

    def rows(self) -> list[dict]:
        return [
            {"lr": lr, "activity_lr": alr, "test_accuracy": float(self.test_accuracy[i, j]),
             "test_loss": float(self.test_loss[i, j]), "train_loss": float(self.train_loss[i, j]),
             "diverged": bool(self.diverged[i, j]),
             "diverged_step": int(self.diverged_step[i, j]) if self.diverged[i, j] else None}
            for (i, lr), (j, alr) in itertools.product(enumerate(self.lrs), enumerate(self.activity_lrs))
        ]


def mean_over_seeds(grids: Sequence[GridResult]) -> GridResult:
    """One grid from the same grid at several seeds: mean test/train loss and accuracy; a point
    counts as diverged if it diverged at any seed (its earliest step is kept)."""
    if not grids or any((g.lrs, g.activity_lrs) != (grids[0].lrs, grids[0].activity_lrs) for g in grids):
        raise ValueError("grids: expected a non-empty list of grids over the same rates")
    diverged = np.any([g.diverged for g in grids], axis=0)
    steps = np.array([np.where(g.diverged, g.diverged_step, np.iinfo(np.int64).max) for g in grids]).min(axis=0)
    with warnings.catch_warnings():  # NaN accuracy of diverged seeds
        warnings.simplefilter("ignore", RuntimeWarning)
        return GridResult(
            grids[0].lrs, grids[0].activity_lrs,
            np.where(diverged, np.nan, np.mean([g.test_accuracy for g in grids], axis=0)),
            np.where(diverged, np.inf, np.mean([g.test_loss for g in grids], axis=0)),
            np.where(diverged, np.nan, np.mean([g.train_loss for g in grids], axis=0)),
            diverged, grids[0].steps, np.where(diverged, steps, -1),
        )


def _grid_step(config: TrainConfig, model0, steps: int):
    """The grid's step: :func:`pclab.learning.masked_update` vmapped over the members —
    (models, states, lrs, activity lrs, alive, seed index, xs, ys) → (models, states, info).
    ``xs``, ``ys`` hold one batch per seed, (S, B, ·); each member trains on its seed's batch."""
    rule = config.rule

    def one(model, state, lr, alr, alive, seed_index, xs, ys):
        spec, inference = run_spec(config, alr)
        return masked_update(rule, model, state, xs[seed_index], ys[seed_index], alive,
                             build_optimizer(config, model0, lr, steps=steps), spec, inference, config.mode)

    return eqx.filter_jit(eqx.filter_vmap(one, in_axes=(0, 0, 0, 0, 0, 0, None, None)))


class _LossTail(Hook):
    """The training loss of every member over the last ``n`` steps (NaN once diverged)."""

    def __init__(self, n: int):
        self.tail: deque = deque(maxlen=n)

    def on_step(self, loop, state, info):
        self.tail.append(np.where(loop.watch.alive, np.asarray(info.loss, float), np.nan))

    def mean(self, members: int) -> np.ndarray:
        if not self.tail:
            return np.full(members, math.nan)
        with warnings.catch_warnings():  # all-NaN columns of diverged points
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.asarray(self.tail), axis=0)


_grid_eval = eqx.filter_jit(eqx.filter_vmap(eval_sums, in_axes=(0, None, None, None)))


def train_lr_grid(
    config: TrainConfig,
    lrs: Sequence[float],
    activity_lrs: Sequence[float] | None = None,
    *,
    data: RunData | None = None,
    progress: bool | None = None,
) -> GridResult:
    """Train ``config`` at every (lr, activity_lr) pair at once; see module docstring.

    ``activity_lrs`` is ignored (one column, ``config.activity_lr``) when the config does not use
    it: BP, Newton or exact inference. ``data`` may pass preloaded arrays.
    """
    return train_lr_grids(config, lrs, activity_lrs, data=data, progress=progress)[0]


def train_lr_grids(
    config: TrainConfig,
    lrs: Sequence[float],
    activity_lrs: Sequence[float] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    data: RunData | None = None,
    progress: bool | None = None,
) -> list[GridResult]:
    """:func:`train_lr_grid` at each of ``seeds`` (default: ``config.seed``), all in one program
    (in float64 if ``config.x64``).

    Seed s sets both the init and the batch order, as in a single run with ``seed=s``, so each
    returned grid (one per seed, in order) matches separate runs. Cost: one model per
    (seed, lr, activity lr).
    """
    if config.devices > 1:
        raise ValueError(f"devices={config.devices} applies to single runs (pclab train, pclab bench); a "
                         "learning-rate grid runs vmapped on one device")
    if not lrs or any(not v > 0 for v in lrs):
        raise ValueError(f"lrs={list(lrs)!r} is not valid; expected a non-empty list of numbers > 0")
    alrs = list(activity_lrs) if config.uses_activity_lr and activity_lrs else [config.activity_lr]
    if any(not v > 0 for v in alrs):
        raise ValueError(f"activity_lrs={alrs!r} is not valid; expected numbers > 0")
    seeds = [config.seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds={seeds!r} is not valid; expected a non-empty list of distinct integers")
    with float_scope(config):
        return _train_grids(config, lrs, alrs, seeds, data, progress)


def _train_grids(config: TrainConfig, lrs, alrs, seeds, data: RunData | None, progress) -> list[GridResult]:
    data = run_data(config, data)
    triples = list(itertools.product(range(len(seeds)), lrs, alrs))
    g = len(triples)
    inits = [cast_floats(build_model(config.replace(seed=s), *data.dims(config.mode)), config) for s in seeds]
    model0 = inits[0]
    seed_of = jnp.asarray([t[0] for t in triples], jnp.int32)
    models = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves)[seed_of] if eqx.is_array(leaves[0]) else leaves[0],
                                    *inits)
    lr_arr = jnp.asarray([t[1] for t in triples], jnp.float32)
    alr_arr = jnp.asarray([t[2] for t in triples], jnp.float32)
    steps = total_steps(config, data)
    states = eqx.filter_vmap(lambda m, lr: build_optimizer(config, model0, lr, steps=steps).init(
        eqx.filter(m, eqx.is_array)))(models, lr_arr)
    spec = EnergySpec(config.loss, config.precision)
    grid_step = _grid_step(config, model0, steps)
    x, y = data.pairs(config.mode)
    n_batches = pdata.num_batches(x.shape[0], config.batch_size)

    def batches(epoch):  # each seed's own batch order, as in a single run with that seed
        orders = [pdata.batches(x, y, config.batch_size, key=jax.random.fold_in(jax.random.PRNGKey(s), epoch))
                  for s in seeds]
        for per_seed in zip(*orders):
            yield jnp.stack([b[0] for b in per_seed]), data.target(jnp.stack([b[1] for b in per_seed]))

    def step(state, batch, alive):
        models, states, info = grid_step(*state, lr_arr, alr_arr, jnp.asarray(alive), seed_of, *batch)
        return (models, states), info

    tail = _LossTail(max(1, n_batches // 10))  # train loss: mean over the last 10% of steps
    loop = TrainLoop(step, batches, epochs=config.epochs, n_batches=n_batches, members=g, hooks=[tail],
                     divergence=lambda info, ref: divergence_kind(config, info.loss, info.status, info.energy, ref),
                     progress=progress, desc=f"grid of {g}")
    models, states = loop.run((models, states))
    x_test, y_test = data.pairs(config.mode, "test")
    mean_loss, accuracy = batched_means(lambda xb, yb: _grid_eval(models, xb, data.target(yb), spec.loss),
                                        x_test, y_test, 1000)
    dead, died_at, t = ~loop.watch.alive, loop.watch.died_at, loop.pos.step
    shape = (len(seeds), len(lrs), len(alrs))
    arrays = [np.where(dead, np.nan, accuracy), np.where(dead, np.inf, mean_loss), tail.mean(g), dead, died_at]
    arrays = [np.asarray(a).reshape(shape) for a in arrays]
    return [GridResult(tuple(float(v) for v in lrs), tuple(float(v) for v in alrs),
                       *(a[k] for a in arrays[:4]), t, arrays[4][k]) for k in range(len(seeds))]
