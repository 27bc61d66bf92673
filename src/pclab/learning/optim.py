r"""Optimiser plumbing shared by every learning rule: one Optax update of a model, and the
per-parameter learning-rate factors of a parameterisation as an Optax transformation."""

from __future__ import annotations

import equinox as eqx
import jax
import optax

from ..params import Multipliers, Parameterisation, Role


def apply_grads(optimizer: optax.GradientTransformation, model, opt_state, grads):
    """One optimiser update θ ← θ + u(∇θ): returns (new model, new optimiser state)."""
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
