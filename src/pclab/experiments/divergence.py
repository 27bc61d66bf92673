"""Divergence of a training run as a typed reason, and the hint the CLI gives for it.

From a feedforward start the energy equals λ·loss and inference should lower it; ending above
``ENERGY_BLOWUP`` times that means the activity steps blew up (milder overshoot happens late
in training as the activity Hessian stiffens, and is harmless). A finite feedforward loss
above ``LOSS_BLOWUP`` times the first step's means the weights blew up.
"""

from __future__ import annotations

import enum

import numpy as np

from ..inference import has_step_size
from ..options import Status

ENERGY_BLOWUP = 100.0
LOSS_BLOWUP = 1000.0


class Divergence(enum.IntEnum):
    """Why a step diverged (``NONE``: it did not)."""

    NONE = 0
    NONFINITE_ACTIVITIES = 1
    NONFINITE_LOSS = 2
    LOSS_GREW = 3
    ENERGY_BLEW_UP = 4

    @property
    def message(self) -> str:
        return {
            Divergence.NONE: "",
            Divergence.NONFINITE_ACTIVITIES: "inference produced non-finite activities",
            Divergence.NONFINITE_LOSS: "the loss became non-finite",
            Divergence.LOSS_GREW: f"the loss grew over {LOSS_BLOWUP:g}x its first value",
            Divergence.ENERGY_BLEW_UP: f"inference blew up the energy (over {ENERGY_BLOWUP:g}x its feedforward value)",
        }[self]

    def hint(self, config) -> str:
        """Which setting to lower: the activity step when inference blew up with a solver that
        has one, else the weight learning rate (solvers without a step size can only be tamed
        through the weights)."""
        activity = self in (Divergence.NONFINITE_ACTIVITIES, Divergence.ENERGY_BLEW_UP)
        return "lower --activity-lr" if activity and has_step_size(config.solver_name) else "lower --lr"

    def describe(self, config) -> str:
        """``message: hint`` (empty for ``NONE``)."""
        return "" if self is Divergence.NONE else f"{self.message}: {self.hint(config)}"


def divergence_kind(config, loss, status, energy, initial_loss=None) -> np.ndarray:
    """The :class:`Divergence` of each step (int array), elementwise over step diagnostics."""
    loss, status, energy = (np.asarray(v) for v in (loss, status, energy))
    blown = config.rule.runs_inference & ~(energy <= ENERGY_BLOWUP * config.precision * loss + 1e-6)
    grown = np.zeros_like(blown) if initial_loss is None else loss > LOSS_BLOWUP * np.asarray(initial_loss) + 1e-6
    return np.select([status == Status.NONFINITE, ~np.isfinite(loss), grown, blown],
                     [Divergence.NONFINITE_ACTIVITIES, Divergence.NONFINITE_LOSS, Divergence.LOSS_GREW,
                      Divergence.ENERGY_BLEW_UP], Divergence.NONE).astype(np.int64)


def divergence(config, loss, status, energy, initial_loss=None) -> np.ndarray:
    """:func:`divergence_kind` as messages with hints ("" where a step did not diverge)."""
    kinds = divergence_kind(config, loss, status, energy, initial_loss)
    table = {int(k): k.describe(config) for k in Divergence}
    return np.vectorize(lambda k: table[int(k)], otypes=[object])(kinds).astype(str)
