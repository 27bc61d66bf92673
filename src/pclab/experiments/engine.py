r"""One training loop for a single run and for a vmapped grid of runs.

The loop knows nothing about models: it advances an opaque ``state`` with a jitted
``step(state, batch, alive) -> (state, StepInfo)`` over the batches of each epoch, watches
every member (G = 1 for a single run, G grid points for a grid, whose ``StepInfo`` fields are
(G,) arrays) for divergence, and hands each step to pluggable :class:`Hook` s — evaluation
and metrics, checkpoints, loss traces. A member that diverges is frozen by the step (its
``alive`` flag is ``False``) and the loop stops when no member is alive, so a single run stops
at its first diverging step with a typed :class:`Divergence`.

Resuming: :meth:`TrainLoop.snapshot` is JSON (loop position, per-member divergence record,
every hook's own state); a loop started from it visits exactly the batches an uninterrupted
run would (batches of epoch e come from ``batches(e)``, which must be deterministic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..progress import progress_bar
from .divergence import Divergence


@dataclass
class Position:
    """Where the loop is: ``step`` updates done, in ``epoch`` at ``batch`` (the next batch's
    index), after ``wall_time`` seconds of training (summed over resumed sessions)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    wall_time: float = 0.0


@dataclass
class Watch:
    """Per-member divergence record, arrays of shape (G,): the first loss (the reference of
    the loss-growth test), the 1-based step at which each member diverged (−1: alive) and why."""

    members: int
    first_loss: np.ndarray | None = None
    died_at: np.ndarray = field(default=None)  # type: ignore[assignment]
    kind: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        self.died_at = np.full(self.members, -1) if self.died_at is None else np.asarray(self.died_at, int)
        self.kind = np.zeros(self.members, int) if self.kind is None else np.asarray(self.kind, int)

    @property
    def alive(self) -> np.ndarray:
        return self.died_at < 0

    def observe(self, step: int, loss: np.ndarray, kinds_of: Callable) -> None:
        """Record step ``step``'s loss (G,) and the :class:`Divergence` codes ``kinds_of(first_loss)``."""
        self.first_loss = loss if self.first_loss is None else self.first_loss
        kinds = np.broadcast_to(np.asarray(kinds_of(self.first_loss)), (self.members,))
        new = self.alive & (kinds != Divergence.NONE)
        self.died_at[new], self.kind[new] = step, kinds[new]

    def reason(self, member: int = 0) -> Divergence:
        return Divergence(int(self.kind[member]))

    def to_dict(self) -> dict[str, Any]:
        first = None if self.first_loss is None else [float(v) for v in self.first_loss]
        return {"first_loss": first, "died_at": self.died_at.tolist(), "kind": self.kind.tolist()}

    @classmethod
    def from_dict(cls, members: int, d: dict[str, Any]) -> "Watch":
        first = d.get("first_loss")
        first = None if first is None else np.broadcast_to(np.asarray(first, float), (members,)).copy()
        return cls(members, first, d.get("died_at"), d.get("kind"))


class Hook:
    """A pluggable piece of the loop. Every method is optional; ``name`` keys its state in
    checkpoints."""

    name: str = ""

    def on_step(self, loop: "TrainLoop", state, info) -> None:
        """After each step (``loop.pos`` already counts it; ``loop.pos.batch`` is its 1-based
        index in the epoch)."""

    def on_epoch_end(self, loop: "TrainLoop", state) -> None:
        """After the last batch of an epoch (``loop.pos`` points at the next epoch)."""

    def state_dict(self) -> dict[str, Any]:
        """What this hook must carry across a resume (JSON)."""
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        pass


class TrainLoop:
    """The loop (module docstring).

    Args:
        step: ``(state, batch, alive) -> (state, info)``; ``alive`` is a (G,) bool array (a
            single run may ignore it).
        batches: ``epoch -> iterable of batches`` (deterministic in ``epoch``).
        epochs, n_batches: the length of the run.
        divergence: ``(info, first_loss) -> (G,) Divergence codes``.
        members: G. hooks: called in order. progress: show a tqdm bar (``None``: if stderr
        is a terminal). desc: the bar's label. examples_per_step: for the bar's examples/s.
    """

    def __init__(self, step: Callable, batches: Callable[[int], Iterable], *, epochs: int, n_batches: int,
                 divergence: Callable, members: int = 1, hooks: Sequence[Hook] = (), progress: bool | None = None,
                 desc: str | None = None, examples_per_step: int = 0):
        self.step, self.batches, self.epochs, self.n_batches = step, batches, epochs, n_batches
        self.divergence, self.members, self.hooks = divergence, members, list(hooks)
        self.progress = progress
        self.desc, self.examples_per_step = desc, examples_per_step
        self.pos, self.watch = Position(), Watch(members)
        self._t0, self._wall0 = time.perf_counter(), 0.0
        self._halted = False

    # ----- resumable state ------------------------------------------------------------------
    def wall(self) -> float:
        """Seconds of training so far, including earlier sessions of a resumed run."""
        return self._wall0 + time.perf_counter() - self._t0

    def snapshot(self) -> dict[str, Any]:
        """The loop's JSON state: position, divergence record and every hook's state."""
        return {"step": self.pos.step, "epoch": self.pos.epoch, "batch": self.pos.batch, "wall_time": self.wall(),
                **self.watch.to_dict(), "hooks": {h.name: h.state_dict() for h in self.hooks if h.name}}

    def restore(self, meta: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (hooks missing from it keep their fresh state)."""
        self.pos = Position(int(meta["step"]), int(meta["epoch"]), int(meta["batch"]), float(meta["wall_time"]))
        self.watch = Watch.from_dict(self.members, meta)
        saved = meta.get("hooks") or {}
        for h in self.hooks:
            if h.name in saved:
                h.load_state_dict(saved[h.name])

    def halt(self) -> None:
        """Stop after the current step (a hook's early stop, e.g. a target accuracy reached)."""
        self._halted = True

    @property
    def stopped(self) -> bool:
        """No member is alive, or a hook called :meth:`halt`."""
        return self._halted or not self.watch.alive.any()

    # ----- the loop -------------------------------------------------------------------------
    def run(self, state):
        """Train from :attr:`pos` to the end (or until no member is alive); returns the state."""
        self._t0, self._wall0 = time.perf_counter(), self.pos.wall_time
        total = self.epochs * self.n_batches
        with progress_bar(total, self.progress, self.desc, "step", initial=self.pos.step, dynamic_ncols=True,
                          leave=True) as bar:
            while self.pos.epoch < self.epochs and not self.stopped:
                first = self.pos.batch
                for b, batch in enumerate(self.batches(self.pos.epoch)):
                    if b < first:
                        continue
                    state, info = self.step(state, batch, self.watch.alive)
                    self.pos.step, self.pos.batch = self.pos.step + 1, b + 1
                    loss = np.atleast_1d(np.asarray(info.loss, float))
                    self.watch.observe(self.pos.step, loss, lambda ref: self.divergence(info, ref))
                    if self.stopped:
                        break
                    for h in self.hooks:
                        h.on_step(self, state, info)
                    bar.update(1)
                    bar.set_postfix(self._postfix(loss), refresh=False)
                    if self._halted:
                        break
                if self.stopped:
                    break
                self.pos.epoch, self.pos.batch = self.pos.epoch + 1, 0
                for h in self.hooks:
                    h.on_epoch_end(self, state)
        self.pos.wall_time = self.wall()
        return state

    def _postfix(self, loss: np.ndarray) -> dict[str, str]:
        alive = self.watch.alive
        out = {"epoch": str(self.pos.epoch + 1)}
        if self.members == 1:
            out["loss"] = f"{loss[0]:.4f}"
        else:
            out["alive"] = f"{int(alive.sum())}/{self.members}"
        if self.examples_per_step:
            out["ex_s"] = f"{self.pos.step * self.examples_per_step * self.members / max(self.wall(), 1e-9):.0f}"
        return out


class Checkpoint(Hook):
    """Save ``state`` and the loop's snapshot every ``every`` steps (not at an epoch's last
    batch) and at the end of every epoch, with ``save(state, meta)``."""

    def __init__(self, save: Callable[[Any, dict], None], every: int):
        self.save, self.every = save, every

    def on_step(self, loop, state, info):
        if loop.pos.step % self.every == 0 and loop.pos.batch < loop.n_batches:
            self.save(state, loop.snapshot())

    def on_epoch_end(self, loop, state):
        self.save(state, loop.snapshot())


class Window(Hook):
    """Per-step values of every member accumulated since the last :meth:`drain` (e.g. the
    training loss between evaluations). ``fields``: StepInfo attribute names."""

    name = "window"

    def __init__(self, fields: Sequence[str] = ("loss", "energy", "infer_steps")):
        self.fields = tuple(fields)
        self.values: dict[str, list] = {f: [] for f in self.fields}

    def on_step(self, loop, state, info):
        for f in self.fields:
            self.values[f].append(np.atleast_1d(np.asarray(getattr(info, f), float)).tolist())

    def drain(self) -> dict[str, np.ndarray]:
        """Mean over the window of each field, (G,) arrays; the window is emptied."""
        out = {f: np.mean(np.asarray(v, float), axis=0) if v else np.full(1, np.nan) for f, v in self.values.items()}
        self.values = {f: [] for f in self.fields}
        return out

    def state_dict(self):
        return {"values": self.values}

    def load_state_dict(self, d):
        self.values = {f: list(d.get("values", {}).get(f, [])) for f in self.fields}


class Every(Hook):
    """Call ``fn(loop, state)`` after batch b of each epoch for b in ``at`` (1-based)."""

    def __init__(self, at: Iterable[int], fn: Callable):
        self.at, self.fn = set(at), fn

    def on_step(self, loop, state, info):
        if loop.pos.batch in self.at:
            self.fn(loop, state)


def eval_points(n_batches: int, per_epoch: int) -> set[int]:
    """The 1-based batch indices of ``per_epoch`` evenly spaced evaluations in an epoch."""
    return {round(n_batches * (i + 1) / per_epoch) for i in range(per_epoch)}
