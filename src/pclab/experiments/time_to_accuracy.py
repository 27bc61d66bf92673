r"""Time to accuracy: train until the test accuracy first reaches a target.

What a user waits for is not one step but the wall time to a useful model. The run trains
``config`` (its learning rule, solver, parameterisation) and evaluates the test accuracy every
``every`` steps; it stops at the first evaluation with accuracy ≥ ``target``, or after
``config.epochs`` epochs. The reported training time counts every step, compilation included,
and excludes the evaluations, so rules are compared on their training cost alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import jax

from .config import TrainConfig
from .divergence import Divergence, divergence_kind
from .engine import Hook, TrainLoop
from .runner import evaluate_run, float_scope, initial_state, loop_parts, prepare


@dataclass(frozen=True)
class TimeToAccuracy:
    """``reached``: the target was met, after ``steps`` updates and ``train_seconds`` of training
    (evaluations excluded; None if not reached). ``evals``: every evaluation as
    {step, epoch, test_accuracy, train_seconds}. ``diverged``: the run diverged first."""

    target: float
    reached: bool
    steps: int | None
    train_seconds: float | None
    total_steps: int
    total_train_seconds: float
    diverged: bool
    evals: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class _Target(Hook):
    """Evaluate every ``every`` steps (and at the end of each epoch); halt the loop once the
    test accuracy reaches ``target``. Keeps its own clock of evaluation time."""

    def __init__(self, evaluate, every: int, target: float, n_batches: int):
        self.evaluate, self.every, self.target, self.n_batches = evaluate, every, target, n_batches
        self.eval_seconds, self.evals, self.hit = 0.0, [], None

    def _check(self, loop, state):
        jax.block_until_ready(state)  # the steps dispatched so far count as training, not evaluation
        t0 = time.perf_counter()
        train_s = loop.wall() - self.eval_seconds
        acc = float(self.evaluate(state[0])["test_accuracy"])
        self.eval_seconds += time.perf_counter() - t0
        self.evals.append({"step": loop.pos.step, "epoch": round(loop.pos.step / self.n_batches, 4),
                           "test_accuracy": acc, "train_seconds": train_s})
        if acc >= self.target and self.hit is None:
            self.hit = self.evals[-1]
            loop.halt()

    def on_step(self, loop, state, info):
        if loop.pos.step % self.every == 0:
            self._check(loop, state)

    def on_epoch_end(self, loop, state):
        if loop.pos.step % self.every:
            self._check(loop, state)


def time_to_accuracy(config: TrainConfig, target: float, every: int = 100, progress: bool | None = None) -> TimeToAccuracy:
    """Train ``config`` for at most ``config.epochs`` epochs; stop when the test accuracy,
    evaluated every ``every`` steps, first reaches ``target`` (a fraction in (0, 1])."""
    if not 0 < target <= 1:
        raise ValueError(f"target={target!r} is not valid; expected a test accuracy in (0, 1], e.g. 0.97")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every={every!r} is not valid; expected an integer >= 1 (steps between evaluations)")
    with float_scope(config):
        p = prepare(config)
        step, batches, n_batches = loop_parts(p, config)
        hook = _Target(lambda model: evaluate_run(p, model, config), every, target, n_batches)
        loop = TrainLoop(step, batches, epochs=config.epochs, n_batches=n_batches, progress=progress,
                         desc=f"to {100 * target:g}%", examples_per_step=config.batch_size, hooks=[hook],
                         divergence=lambda info, ref: divergence_kind(config, info.loss, info.status, info.energy, ref))
        loop.run(initial_state(p))
    hit = hook.hit
    return TimeToAccuracy(target=target, reached=hit is not None, steps=hit and hit["step"],
                          train_seconds=hit and hit["train_seconds"], total_steps=loop.pos.step,
                          total_train_seconds=loop.pos.wall_time - hook.eval_seconds,
                          diverged=loop.watch.reason(0) is not Divergence.NONE, evals=hook.evals)
