"""Typed divergence reasons and the hint each gives, elementwise over a grid of steps."""

import numpy as np

from pclab.experiments.config import TrainConfig
from pclab.experiments.divergence import Divergence, divergence, divergence_kind


def test_kinds_and_hints():
    gd, newton = TrainConfig(), TrainConfig(solver="newton", infer_steps=1)
    loss = np.array([1.0, np.nan, 5000.0, 1.0, 1.0])
    status = np.array([1, 1, 1, 2, 1])
    energy = np.array([0.5, 0.5, 0.5, 0.5, 500.0])
    kinds = divergence_kind(gd, loss, status, energy, np.ones(5))
    assert [Divergence(k) for k in kinds] == [Divergence.NONE, Divergence.NONFINITE_LOSS, Divergence.LOSS_GREW,
                                              Divergence.NONFINITE_ACTIVITIES, Divergence.ENERGY_BLEW_UP]
    msgs = divergence(gd, loss, status, energy, np.ones(5))
    assert msgs[0] == "" and msgs[3].endswith("lower --activity-lr") and msgs[2].endswith("lower --lr")
    # a solver without a step size can only be tamed through the weights
    assert Divergence.ENERGY_BLEW_UP.hint(newton) == "lower --lr"
    # BP runs no inference: a high 'energy' (NaN for BP) is no divergence
    bp = TrainConfig(algo="bp")
    assert divergence_kind(bp, 1.0, 0, np.nan, 1.0) == Divergence.NONE
