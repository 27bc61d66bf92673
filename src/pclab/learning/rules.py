r"""Learning rules as objects: how one training step turns a batch into weight gradients.

A rule is an :class:`AbstractLearningRule`; :data:`LEARNING_RULES` maps the CLI names
(``--algo NAME``) to instances. Today: ``pc`` (inference to equilibrium, then ∇_θ F there)
and ``bp`` (∇_θ L of the feedforward loss). PC variants plug in beside them by registering a
rule; the runner, the sweep and the config ask the rule, never its name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from ..energy import EnergySpec, energy, output_loss
from ..inference import AbstractSolver, GradientDescent, infer
from ..options import ActivityInit, Mode, parse_option
from ..registry import Registry
from .optim import apply_grads


@dataclass(frozen=True)
class InferenceConfig:
    """How activities are equilibrated in a PC step."""

    solver: AbstractSolver = field(default_factory=lambda: GradientDescent(0.1))
    max_steps: int = 20
    rtol: float = 0.0
    atol: float = 0.0
    init: ActivityInit = ActivityInit.FEEDFORWARD


class StepInfo(NamedTuple):
    """Per-step diagnostics (scalars): loss of the feedforward pass before the update,
    energy at equilibrium, inference steps used and status (0 conv, 1 cap, 2 non-finite)."""

    loss: Array
    energy: Array
    infer_steps: Array
    status: Array


class AbstractLearningRule(eqx.Module):
    """Base class of learning rules. A rule provides

    * ``grads(model, x, y, spec, inference, mode) -> (∇θ, StepInfo)`` (pure, vmappable);
    * ``update(...)``: one training step, by default ``grads`` then one optimiser update
      (rules that update weights during inference, like iPC, override it);
    * ``prepare(model, key)``: the model the rule trains (by default ``model``; rules with
      extra parameters, such as an amortiser, wrap it);
    * ``validate(model=, solver=, mode=)``: raise ``ValueError`` naming the valid
      combinations when the rule cannot run with them (called when a run is built).

    Hyperparameters are the rule's dataclass fields; :meth:`with_options` sets them by name
    (``--algo-opt NAME=VALUE``). ``runs_inference``: whether it uses the activity solver.
    """

    runs_inference: ClassVar[bool] = True

    def grads(self, model, x, y, spec: EnergySpec, inference: InferenceConfig, mode: Mode = Mode.SUPERVISED):
        raise NotImplementedError  # pragma: no cover

    def update(self, model, opt_state, x, y, optimizer: optax.GradientTransformation, spec: EnergySpec,
               inference: InferenceConfig, mode: Mode = Mode.SUPERVISED):
        """One step: (new model, new optimiser state, :class:`StepInfo`)."""
        grads, info = self.grads(model, x, y, spec, inference, mode)
        model, opt_state = apply_grads(optimizer, model, opt_state, grads)
        return model, opt_state, info

    def prepare(self, model, key: Array):
        """The model this rule trains, built from a PCN (``key`` for any extra parameters)."""
        return model

    def validate(self, *, model=None, solver: AbstractSolver | None = None, mode: Mode = Mode.SUPERVISED) -> None:
        """Raise ``ValueError`` if the rule cannot run with this model, solver or mode."""

    def options(self) -> dict[str, Any]:
        """The rule's hyperparameters (its dataclass fields) and their values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def with_options(self, **values) -> "AbstractLearningRule":
        """A copy with hyperparameters replaced; unknown names fail listing the valid ones."""
        valid = self.options()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            names = ", ".join(valid) or "none"
            raise ValueError(f"algo_options: {', '.join(map(repr, unknown))} not an option of "
                             f"{type(self).__name__}; valid options: {names}")
        return dataclasses.replace(self, **values)


def pc_energy_and_weight_grad(model, z, x, y, spec: EnergySpec):
    """(F, ∇_θ F) at fixed activities z (the batch-mean energy), one forward and backward pass."""
    z = jax.lax.stop_gradient(z)
    return eqx.filter_value_and_grad(lambda m: energy(m, z, x, y, spec))(model)


def pc_weight_grad(model, z, x, y, spec: EnergySpec):
    """∇_θ F at fixed activities z (the batch-mean energy). Returns a model-shaped pytree."""
    return pc_energy_and_weight_grad(model, z, x, y, spec)[1]


def bp_loss_and_grad(model, x, y, spec: EnergySpec):
    """(L, ∇_θ L) of the feedforward loss L = mean_i ℓ(y_i, ŷ(x_i))."""
    return eqx.filter_value_and_grad(lambda m: jnp.mean(output_loss(m(x), y, spec.loss)))(model)


def bp_grad(model, x, y, spec: EnergySpec):
    """∇_θ L of the feedforward loss L = mean_i ℓ(y_i, ŷ(x_i))."""
    return bp_loss_and_grad(model, x, y, spec)[1]


class PC(AbstractLearningRule):
    r"""Predictive coding: infer from the feedforward pass, then ∇_θ F at the equilibrium."""

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        z0 = model.activities(x)  # the feedforward pass: start of inference and the BP loss
        ff_loss = jnp.mean(output_loss(model.output(z0), y, spec.loss))
        if parse_option(ActivityInit, inference.init, "init") is ActivityInit.ZEROS:
            z0 = jax.tree_util.tree_map(jnp.zeros_like, z0)
        sol = infer(model, x, y, solver=inference.solver, spec=spec, max_steps=inference.max_steps,
                    rtol=inference.rtol, atol=inference.atol, z0=z0, mode=mode, throw=False)
        x_used = x if sol.latent is None else sol.latent
        f, grads = pc_energy_and_weight_grad(model, sol.z, x_used, y, spec)
        return grads, StepInfo(ff_loss, f, sol.steps, sol.status)


class BP(AbstractLearningRule):
    r"""Backpropagation of the feedforward loss through the same model."""

    runs_inference: ClassVar[bool] = False

    def grads(self, model, x, y, spec, inference=None, mode=Mode.SUPERVISED):
        loss, grads = bp_loss_and_grad(model, x, y, spec)
        zero = jnp.asarray(0, jnp.int32)
        return grads, StepInfo(loss, jnp.full_like(loss, jnp.nan), zero, zero)


LEARNING_RULES: Registry[AbstractLearningRule] = Registry("algo")
LEARNING_RULES.register("pc", PC())
LEARNING_RULES.register("bp", BP())


def get_rule(rule: "AbstractLearningRule | str") -> AbstractLearningRule:
    """A learning rule object, or the one registered under a name (``pc``, ``bp``, …)."""
    return rule if isinstance(rule, AbstractLearningRule) else LEARNING_RULES.get(rule)
