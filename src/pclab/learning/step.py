r"""Training steps: a learning rule's gradients → an Optax update, jitted once.

A PC step is: activities from a feedforward pass → :func:`pclab.infer` → ``∇_θ F`` at the
equilibrium (activities held fixed) → an Optax update. A BP step is ``∇_θ L`` of the
feedforward loss → the same Optax update. Both compile once: later batches of the same
shape reuse the compiled program.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..energy import EnergySpec
from ..options import Mode, parse_option
from .optim import apply_grads, scale_updates, update_scales  # noqa: F401  (re-exported)
from .rules import AbstractLearningRule, InferenceConfig, StepInfo, get_rule


def train_grads(model, x, y, algo: "AbstractLearningRule | str", spec: EnergySpec, inference: InferenceConfig,
                mode: Mode = Mode.SUPERVISED) -> tuple:
    """Weight gradients of one step and its :class:`StepInfo` (pure; vmappable over models)."""
    return get_rule(algo).grads(model, x, y, spec, inference, parse_option(Mode, mode, "mode"))


def frozen_unless(alive, new, old):
    """``new`` where ``alive`` else ``old``, leaf by leaf over two pytrees of one structure
    (arrays only; other leaves are taken from ``old``). Freezes a diverged grid member."""
    pick = lambda n, o: jnp.where(alive, n, o) if eqx.is_array(o) else o  # noqa: E731
    return jax.tree_util.tree_map(pick, new, old)


def masked_update(rule: AbstractLearningRule, model, opt_state, x, y, alive, optimizer: optax.GradientTransformation,
                  spec: EnergySpec, inference: InferenceConfig, mode: Mode = Mode.SUPERVISED):
    """``rule.update``, applied only where ``alive`` (a bool scalar): θ' = θ + alive·Δθ, and
    the optimiser state likewise. Pure and vmappable: a grid of runs vmaps it over stacked
    models, optimiser states, step sizes and ``alive`` flags."""
    new_model, new_state, info = rule.update(model, opt_state, x, y, optimizer, spec, inference, mode)
    return frozen_unless(alive, new_model, model), frozen_unless(alive, new_state, opt_state), info


def make_train_step(
    optimizer: optax.GradientTransformation,
    algo: "AbstractLearningRule | str" = "pc",
    *,
    spec: EnergySpec = EnergySpec(),
    inference: InferenceConfig = InferenceConfig(),
    mode: Mode = Mode.SUPERVISED,
) -> Callable:
    """Build ``step(model, opt_state, x, y) -> (model, opt_state, StepInfo)``, jitted.

    ``algo``: a learning rule or its name. x, y: a batch for the model (one-hot y for
    ``loss='ce'``). Create ``opt_state`` with ``optimizer.init(eqx.filter(model, eqx.is_array))``.
    """
    rule = get_rule(algo)
    mode = parse_option(Mode, mode, "mode")

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        return rule.update(model, opt_state, x, y, optimizer, spec, inference, mode)

    return step


__all__ = ["train_grads", "apply_grads", "masked_update", "frozen_unless", "update_scales", "scale_updates", "make_train_step", "StepInfo"]
