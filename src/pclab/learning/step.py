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
import optax

from ..energy import EnergySpec
from ..options import Mode, parse_option
from ..params import Multipliers, Parameterisation, Role
from .rules import AbstractLearningRule, InferenceConfig, StepInfo, get_rule


def train_grads(model, x, y, algo: "AbstractLearningRule | str", spec: EnergySpec, inference: InferenceConfig,
                mode: Mode = Mode.SUPERVISED) -> tuple:
    """Weight gradients of one step and its :class:`StepInfo` (pure; vmappable over models)."""
    return get_rule(algo).grads(model, x, y, spec, inference, parse_option(Mode, mode, "mode"))


def apply_grads(optimizer: optax.GradientTransformation, model, opt_state, grads):
    """One optimiser update: returns (new model, new optimiser state)."""
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state


def update_scales(scales: "Parameterisation | Multipliers", model):
    """The factor on every parameter's update, a model-shaped pytree of floats: the
    parameterisation's :meth:`~pclab.Parameterisation.lr_scale` of each parameter's
    :class:`~pclab.ParamInfo`, or fixed input/hidden/output factors (``Multipliers``)."""
    if isinstance(scales, Multipliers):
        by_role = {Role.INPUT: scales.input, Role.OUTPUT: scales.output}
        rule = lambda info: by_role.get(info.role, scales.hidden)  # noqa: E731
    else:
        rule = scales.lr_scale
    return jax.tree_util.tree_map(rule, model.param_info(), is_leaf=lambda v: hasattr(v, "role"))


def scale_updates(scales: "Parameterisation | Multipliers", model) -> optax.GradientTransformation:
    """An Optax transformation multiplying each parameter's update by its factor
    (:func:`update_scales`): the parameterisation's per-layer learning rates on any model."""
    tree = update_scales(scales, model)

    def update(updates, state, params=None):
        return jax.tree_util.tree_map(lambda u, s: u * s, updates, tree), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


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
        grads, info = rule.grads(model, x, y, spec, inference, mode)
        model, opt_state = apply_grads(optimizer, model, opt_state, grads)
        return model, opt_state, info

    return step


__all__ = ["train_grads", "apply_grads", "update_scales", "scale_updates", "make_train_step", "StepInfo"]
