r"""Small full-batch training loops that record what the theory figures plot.

``train_trace`` runs plain gradient descent θ ← θ − η g for ``steps`` steps with g the PC
gradient ∇_θ F(θ, z*) at the inference result z* (``algo='pc'``) or the BP gradient ∇_θ L
(``algo='bp'``), using :func:`pclab.make_train_step`, and records before every update:

* ``loss``: the feedforward MSE/CE loss L(θ) (batch mean of ½‖y − ŷ‖² for MSE);
* ``energy``: the batch-mean energy F at the numerical equilibrium (PC only, else NaN);
* ``energy_theory``: the closed form F*(θ) (linear bias-free models, if requested);
* ``infer_steps``, ``status``: inference steps and status (0 converged, 1 step cap).

``small_init`` redraws all weights from N(0, std²) (the multipliers are kept), the near-origin
initialisation of the saddle-escape experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..energy import EnergySpec
from ..learning import InferenceConfig, make_train_step
from ..nn.dense import PCN, layer_maps
from .equilibrium import equilibrated_energy


def small_init(model: PCN, key: jax.Array, std: float = 5e-3) -> PCN:
    """``model`` with W_1, the stacked W_2..W_{L−1} and W_L redrawn i.i.d. from N(0, std²)."""
    if not std >= 0:
        raise ValueError(f"std={std!r} is not valid; expected a number >= 0")
    keys = jax.random.split(key, 3)
    arrays = (model.w_in, model.w_hidden, model.w_out)
    new = tuple(std * jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, arrays))
    return eqx.tree_at(lambda m: (m.w_in, m.w_hidden, m.w_out), model, new)


@dataclass(frozen=True)
class TrainTrace:
    """Per-step records (numpy arrays of length ``steps``); see the module docstring."""

    loss: np.ndarray
    energy: np.ndarray
    energy_theory: np.ndarray
    infer_steps: np.ndarray
    status: np.ndarray


def train_trace(
    model: PCN,
    x: jax.Array,
    y: jax.Array,
    *,
    algo: str = "pc",
    lr: float = 0.1,
    steps: int = 100,
    inference: InferenceConfig = InferenceConfig(),
    spec: EnergySpec = EnergySpec(),
    closed_form: bool = False,
) -> tuple[PCN, TrainTrace]:
    """Train ``model`` by full-batch GD on (x (B, D), y (B, O)); return it and its :class:`TrainTrace`."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not valid; expected an integer >= 1")
    opt = optax.sgd(lr)
    step = make_train_step(opt, algo, spec=spec, inference=inference)
    state = opt.init(eqx.filter(model, eqx.is_array))
    theory = eqx.filter_jit(lambda m: equilibrated_energy(layer_maps(m), x, y, spec.precision))
    rec = {k: [] for k in ("loss", "energy", "energy_theory", "infer_steps", "status")}
    for _ in range(steps):
        f_star = theory(model) if closed_form else jnp.nan
        model, state, info = step(model, state, x, y)
        for k, v in (("loss", info.loss), ("energy", info.energy), ("energy_theory", f_star),
                     ("infer_steps", info.infer_steps), ("status", info.status)):
            rec[k].append(v)
    out = {k: np.asarray(jax.device_get(jnp.stack([jnp.asarray(v) for v in vs]))) for k, vs in rec.items()}
    return model, TrainTrace(**out)
