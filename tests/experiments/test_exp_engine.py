"""The training loop on its own (no model): a toy state advanced by a pure step, so the loop's
bookkeeping — batch order, divergence per member, hooks, snapshots and resume — is checked
exactly."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from pclab.experiments.divergence import Divergence
from pclab.experiments.engine import Checkpoint, Every, Hook, TrainLoop, Watch, Window, eval_points


def _batches(epoch):
    return [float(10 * epoch + b) for b in range(4)]


def _step(state, batch, alive):
    """state (G,) ← state + batch where alive; loss = state (G,); member 1 'diverges' above 25."""
    new = np.where(alive, state + batch, state)
    info = SimpleNamespace(loss=new, energy=new, infer_steps=np.ones_like(new), status=np.zeros_like(new))
    return new, info


def _kinds(info, ref):
    return np.where(np.arange(info.loss.size) == 1, np.where(info.loss > 25, Divergence.LOSS_GREW, 0), 0)


class _Record(Hook):
    name = "record"

    def __init__(self):
        self.seen = []

    def on_step(self, loop, state, info):
        self.seen.append((loop.pos.epoch, loop.pos.batch, loop.pos.step))

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, d):
        self.seen = [tuple(v) for v in d["seen"]]


def _loop(hooks=(), members=2, epochs=3):
    return TrainLoop(_step, _batches, epochs=epochs, n_batches=4, divergence=_kinds, members=members,
                     hooks=list(hooks), progress=False)


def test_loop_visits_every_batch_and_freezes_a_diverged_member():
    rec = _Record()
    loop = _loop([rec])
    state = loop.run(np.zeros(2))
    assert loop.pos.step == 12 and loop.pos.epoch == 3 and loop.pos.batch == 0
    assert rec.seen[:5] == [(0, 1, 1), (0, 2, 2), (0, 3, 3), (0, 4, 4), (1, 1, 5)]
    total = sum(sum(_batches(e)) for e in range(3))
    assert state[0] == total  # member 0 saw every batch
    # member 1: cumulative sums 0,1,3,6 | 16,27 -> diverges at step 6 (27 > 25) and is frozen
    # from the next step on (the step that diverged is the last one it takes)
    assert loop.watch.died_at.tolist() == [-1, 6] and loop.watch.reason(1) is Divergence.LOSS_GREW
    assert state[1] == 27.0


def test_single_member_stops_at_its_first_diverging_step():
    loop = TrainLoop(_step, _batches, epochs=3, n_batches=4, members=1, progress=False,
                     divergence=lambda info, ref: np.where(info.loss > 25, Divergence.NONFINITE_LOSS, 0))
    loop.run(np.zeros(1))
    assert loop.stopped and loop.pos.step == 6 and loop.watch.died_at.tolist() == [6]
    assert loop.watch.reason() is Divergence.NONFINITE_LOSS


def test_resume_from_any_snapshot_gives_the_uninterrupted_result():
    full_rec = _Record()
    full = _loop([full_rec]).run(np.zeros(2))
    snaps = []
    save = lambda s, m: snaps.append((s.copy(), json.loads(json.dumps(m))))  # noqa: E731  (as on disk)
    _loop([_Record(), Checkpoint(save, every=3)]).run(np.zeros(2))
    # every 3 steps except at an epoch's last batch, plus every epoch end
    assert [m["step"] for _, m in snaps] == [3, 4, 6, 8, 9, 12]
    for state, meta in snaps:
        rec = _Record()
        loop = _loop([rec])
        loop.restore(meta)
        assert np.array_equal(loop.run(state), full)
        assert rec.seen == full_rec.seen and loop.watch.died_at.tolist() == [-1, 6]


def test_window_means_between_evaluations_and_eval_points():
    assert eval_points(10, 2) == {5, 10} and eval_points(7, 1) == {7}
    window, means = Window(("loss",)), []
    loop = _loop([window, Every({2, 4}, lambda lp, s: means.append(window.drain()["loss"].tolist()))],
                 members=1, epochs=1)
    loop.run(np.zeros(1))
    assert means == [[0.5], [4.5]]  # losses 0, 1 | 3, 6


def test_watch_round_trips_and_reads_a_scalar_first_loss():
    w = Watch(3)
    w.observe(1, np.array([1.0, 2.0, 3.0]), lambda ref: np.array([0, 2, 0]))
    back = Watch.from_dict(3, w.to_dict())
    assert back.died_at.tolist() == [-1, 1, -1] and back.first_loss.tolist() == [1.0, 2.0, 3.0]
    old = Watch.from_dict(1, {"first_loss": 0.7})  # a checkpoint of the earlier single-run loop
    assert old.first_loss.tolist() == [0.7] and old.alive.tolist() == [True]


@pytest.mark.parametrize("meta", [{"step": 1}, {}])
def test_restore_needs_a_position(meta):
    with pytest.raises(KeyError):
        _loop().restore(meta)
