r"""Target nudging: positive, negative and centred (pcx's PN, NN, CN).

Instead of clamping the output to the label y, the nudged phase clamps it to a target moved
from the network's own prediction towards y by a strength β (pcx, Pinchetti et al. 2024,
"Benchmarking predictive coding networks — made simple"; the estimators are equilibrium
propagation's, Scellier & Bengio 2017, and its symmetric form, Laborieux et al. 2021):

    t_β = ŷ₀ + β (y − ŷ₀)                 (MSE; ŷ₀ = f(x) the feedforward output)
    t_β = p₀ + β (y − p₀),  p₀ = softmax ŷ₀   (cross-entropy: a soft target, Σ t_β = 1)

and infers with the usual energy F_β = (1/B) Σ_i [½ Σ_l ‖e_l‖² + λ ℓ(t_β, f_L(z_{L−1}))].
At the feedforward pass ∂ℓ(t_β, ŷ)/∂ŷ = β ∂ℓ(y, ŷ)/∂ŷ, so t_β is a first-order nudge of
strength β along the loss. β = 0 is the *free phase*: t_0 = ŷ₀ (or p₀) is already optimal,
so its equilibrium is the feedforward pass, where every error vanishes and ∇_θ F_0 = 0
(which is why the free-phase term of the EP estimators below is zero and is not computed);
β = 1 is standard PC (t_1 = y). With z_β the nudged equilibrium (the run's solver and
steps, from the feedforward pass) and g(β) = ∇_θ F_β(θ, z_β) (t_β held fixed), the weight
gradients are

    PN (``nudge-pn``):  g(β)/β
    NN (``nudge-nn``):  g(−β)/(−β)        (nudged away from the label, sign of the update flipped)
    CN (``nudge-cn``):  [g(β) − g(−β)]/(2β)

For a linear net the nudged errors are exactly linear in β, so g(β) = β a + β² b: PN and NN
carry opposite O(β) biases ±b and CN = a is independent of β (tested); for nonlinear nets
CN's bias is O(β²). CN runs two phases (2T inference steps per batch). Hyperparameter:
``beta`` > 0 (``--algo-opt beta=0.2``). With cross-entropy and NN, t_{−β} can leave the
simplex (a negative entry where p₀ < β/(1+β)); the energy is then not bounded below and the
finite T steps of inference are what keeps it a useful estimator. Supervised mode only.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..energy import EnergySpec, output_loss
from ..inference import Solution, infer
from ..options import Mode, OutputLoss, parse_option
from .rules import LEARNING_RULES, AbstractLearningRule, InferenceConfig, StepInfo, pc_energy_and_weight_grad


def nudged_target(y_hat0: Array, y: Array, beta, loss: OutputLoss) -> Array:
    """t_β (module docstring) from the feedforward output ŷ₀ (B, ..., O) and the label y."""
    ref = y_hat0 if parse_option(OutputLoss, loss, "loss") is OutputLoss.MSE else jax.nn.softmax(y_hat0, axis=-1)
    ref = jax.lax.stop_gradient(ref)
    return ref + beta * (y - ref)


class Phase(NamedTuple):
    """One nudged phase: the solution (activities z_β, steps, status), the target t_β, the
    batch-mean energy F_β at z_β and g(β) = ∇_θ F_β(θ, z_β)."""

    solution: Solution
    target: Array
    energy: Array
    grad: object


def nudged_phase(model, x, y, beta, spec: EnergySpec, inference: InferenceConfig, z_ff=None) -> Phase:
    """Infer with the output clamped to t_β from the feedforward pass ``z_ff`` (computed if
    ``None``); ``beta`` may be any real (0: the free phase; negative: nudged away)."""
    z_ff = model.activities(x) if z_ff is None else z_ff
    target = nudged_target(model.output(z_ff), y, beta, spec.loss)
    sol = infer(model, x, target, solver=inference.solver, spec=spec, max_steps=inference.max_steps,
                rtol=inference.rtol, atol=inference.atol, z0=z_ff, throw=False)
    f, g = pc_energy_and_weight_grad(model, sol.z, x, target, spec)
    return Phase(sol, target, f, g)


class AbstractNudging(AbstractLearningRule):
    """Nudged-phase learning (module docstring); subclasses fix the signs of the phases.

    Attributes:
        beta: the nudging strength β > 0.
    """

    beta: float = 0.1
    signs: ClassVar[tuple[float, ...]] = ()

    def __check_init__(self):
        b = self.beta  # a Python number is checked; an array (a vmapped grid of strengths) passes
        if not eqx.is_array(b) and (isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b < float("inf")):
            raise ValueError(f"beta={b!r} is not valid; expected a finite number > 0 (the nudging strength)")

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        if parse_option(Mode, mode, "mode") is not Mode.SUPERVISED:
            raise ValueError(f"{type(self).__name__} needs mode='supervised' (it nudges the output towards a label)")

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        self.validate(mode=mode)
        z_ff = model.activities(x)
        ff_loss = jnp.mean(output_loss(model.output(z_ff), y, spec.loss))
        n = len(self.signs)
        phases = [nudged_phase(model, x, y, s * self.beta, spec, inference, z_ff) for s in self.signs]
        scaled = [jax.tree_util.tree_map(lambda v, c=1.0 / (n * s * self.beta): c * v, p.grad)
                  for s, p in zip(self.signs, phases)]
        grads = jax.tree_util.tree_map(lambda *vs: sum(vs), *scaled)
        energy = sum(p.energy for p in phases) / n
        steps = sum(p.solution.steps for p in phases)
        status = jnp.max(jnp.stack([p.solution.status for p in phases]))
        return grads, StepInfo(ff_loss, energy, steps, status)


class PositiveNudging(AbstractNudging):
    """PN: g(β)/β, the label-ward nudged phase (``--algo nudge-pn``)."""

    signs: ClassVar[tuple[float, ...]] = (1.0,)


class NegativeNudging(AbstractNudging):
    """NN: g(−β)/(−β), nudged away from the label (``--algo nudge-nn``)."""

    signs: ClassVar[tuple[float, ...]] = (-1.0,)


class CentredNudging(AbstractNudging):
    """CN: [g(β) − g(−β)]/(2β), both phases from the free phase (``--algo nudge-cn``)."""

    signs: ClassVar[tuple[float, ...]] = (1.0, -1.0)


LEARNING_RULES.register("nudge-pn", PositiveNudging())
LEARNING_RULES.register("nudge-nn", NegativeNudging())
LEARNING_RULES.register("nudge-cn", CentredNudging())
