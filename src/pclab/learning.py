r"""Learning: jitted PC and BP training steps on the same model, and evaluation.

A PC step is: activities from a feedforward pass → :func:`infer` → ``∇_θ F`` at the
equilibrium (activities held fixed) → an Optax update. A BP step is ``∇_θ L`` of the
feedforward loss → the same Optax update. Both are built once by :func:`make_train_step`
and compile once: later batches of the same shape reuse the compiled program.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from .energy import EnergySpec, energy, output_loss
from .inference import AbstractSolver, GradientDescent, infer
from .nn.pcn import PCN
from .options import ActivityInit, Mode, OutputLoss, parse_option
from .params import Multipliers


class Algorithm(str, enum.Enum):
    PC = "pc"
    BP = "bp"


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


def scale_updates(scales: Multipliers, model: PCN) -> optax.GradientTransformation:
    """An Optax transformation multiplying the updates of input, hidden and output layers by
    ``scales`` (e.g. :meth:`Parameterisation.lr_scales`)."""
    tree = jax.tree_util.tree_map(lambda _: 1.0, eqx.filter(model, eqx.is_array))
    tree = eqx.tree_at(
        lambda m: (m.w_in, m.w_hidden, m.w_out),
        tree,
        (scales.input, scales.hidden, scales.output),
    )
    for name, s in (("b_in", scales.input), ("b_hidden", scales.hidden), ("b_out", scales.output)):
        if getattr(model, name) is not None:
            tree = eqx.tree_at(lambda m, n=name: getattr(m, n), tree, s)

    def update(updates, state, params=None):
        return jax.tree_util.tree_map(lambda u, s: u * s, updates, tree), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def pc_weight_grad(model: PCN, z, x, y, spec: EnergySpec) -> PCN:
    """∇_θ F at fixed activities z (the batch-mean energy). Returns a model-shaped pytree."""
    return pc_energy_and_weight_grad(model, z, x, y, spec)[1]


def pc_energy_and_weight_grad(model: PCN, z, x, y, spec: EnergySpec) -> tuple[Array, PCN]:
    """(F, ∇_θ F) at fixed activities z, from one forward and one backward pass."""
    z = jax.lax.stop_gradient(z)
    return eqx.filter_value_and_grad(lambda m: energy(m, z, x, y, spec))(model)


def bp_grad(model: PCN, x, y, spec: EnergySpec) -> PCN:
    """∇_θ L of the feedforward loss L = mean_i ℓ(y_i, ŷ(x_i))."""
    return eqx.filter_grad(lambda m: jnp.mean(output_loss(m(x), y, spec.loss)))(model)


def train_grads(
    model: PCN,
    x: Float[Array, "B D"],
    y: Float[Array, "B O"],
    algo: Algorithm,
    spec: EnergySpec,
    inference: InferenceConfig,
    mode: Mode = Mode.SUPERVISED,
) -> tuple[PCN, StepInfo]:
    """Weight gradients of one step and its diagnostics (pure; vmappable over models).

    PC: infer, then ∇_θ F at the equilibrium. BP: ∇_θ L of the feedforward loss.
    """
    if algo is Algorithm.BP:
        loss, grads = eqx.filter_value_and_grad(lambda m: jnp.mean(output_loss(m(x), y, spec.loss)))(model)
        zero = jnp.asarray(0, jnp.int32)
        return grads, StepInfo(loss, jnp.full_like(loss, jnp.nan), zero, zero)
    z0 = model.activities(x)  # the feedforward pass: start of inference and the BP loss
    ff_loss = jnp.mean(output_loss(model.predict_output(z0[-1]), y, spec.loss))
    if parse_option(ActivityInit, inference.init, "init") is ActivityInit.ZEROS:
        z0 = jnp.zeros_like(z0)
    sol = infer(model, x, y, solver=inference.solver, spec=spec, max_steps=inference.max_steps,
                rtol=inference.rtol, atol=inference.atol, z0=z0, mode=mode, throw=False)
    x_used = x if sol.latent is None else sol.latent
    f, grads = pc_energy_and_weight_grad(model, sol.z, x_used, y, spec)
    return grads, StepInfo(ff_loss, f, sol.steps, sol.status)


def apply_grads(optimizer: optax.GradientTransformation, model: PCN, opt_state, grads):
    """One optimiser update: returns (new model, new optimiser state)."""
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state


def make_train_step(
    optimizer: optax.GradientTransformation,
    algo: Algorithm | str = Algorithm.PC,
    *,
    spec: EnergySpec = EnergySpec(),
    inference: InferenceConfig = InferenceConfig(),
    mode: Mode = Mode.SUPERVISED,
) -> Callable:
    """Build ``step(model, opt_state, x, y) -> (model, opt_state, StepInfo)``, jitted.

    x: (B, D), y: (B, O) (one-hot for ``loss='ce'``). For PC the weight gradient is the
    batch-mean energy's; for BP the feedforward loss's. Create ``opt_state`` with
    ``optimizer.init(eqx.filter(model, eqx.is_array))``.
    """
    algo = parse_option(Algorithm, algo, "algo")
    mode = parse_option(Mode, mode, "mode")

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        grads, info = train_grads(model, x, y, algo, spec, inference, mode)
        model, opt_state = apply_grads(optimizer, model, opt_state, grads)
        return model, opt_state, info

    return step


class Evaluation(NamedTuple):
    loss: float
    accuracy: float


def evaluate(
    model: PCN, x: Float[Array, "N D"], y: Float[Array, "N O"], spec: EnergySpec = EnergySpec(), batch_size: int = 1000
) -> Evaluation:
    """Feedforward loss and accuracy (argmax ŷ == argmax y) over a data set, in batches."""
    loss, acc = batched_means(lambda xb, yb: _eval_sums_jit(model, xb, yb, spec.loss), x, y, batch_size)
    return Evaluation(float(loss), float(acc))


def eval_sums(model: PCN, x: Float[Array, "B D"], y: Float[Array, "B O"], loss: OutputLoss) -> tuple[Array, Array]:
    """(Σ_i ℓ(y_i, ŷ_i), number of argmax hits) over one batch of the feedforward network."""
    y_hat = model(x)
    correct = jnp.sum(jnp.argmax(y_hat, -1) == jnp.argmax(y, -1))
    return jnp.sum(output_loss(y_hat, y, loss)), correct


_eval_sums_jit = eqx.filter_jit(eval_sums)


def batched_means(fn: Callable, x, y, batch_size: int):
    """Run ``fn(x_batch, y_batch) -> (loss_sum, correct)`` over the data in batches and return
    (mean loss, accuracy) as NumPy values (arrays if ``fn`` is vmapped over models)."""
    n = x.shape[0]
    if n == 0:
        raise ValueError("evaluate() got an empty data set")
    tot_loss, tot_correct = 0.0, 0.0
    for i in range(0, n, batch_size):
        l, c = fn(x[i : i + batch_size], y[i : i + batch_size])
        tot_loss = tot_loss + np.asarray(l, np.float64)
        tot_correct = tot_correct + np.asarray(c, np.float64)
    return tot_loss / n, tot_correct / n
