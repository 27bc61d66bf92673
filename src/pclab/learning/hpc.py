r"""Amortised / hybrid predictive coding (hPC; after Tschantz, Millidge, Seth & Buckley,
"Hybrid predictive coding: inferring, fast and slow", PLoS Comput. Biol. 2023).

A learned feedforward *amortiser* q_φ proposes the activities in one pass ("fast"), PC
inference starts there and refines them ("slow"), and both networks learn from the result:
the PCN from the PC energy at the refined activities, the amortiser by regression onto them.

For a dense PCN (input dim D, width N, L weight layers, output dim O) the amortiser reads
both clamped ends, u = [x, y] ∈ R^{D+O} (x is the input, or in generative mode the initial
latent), and outputs a latent part and an activity part,

    q_φ(u) = W_2 φ(W_1 u + b_1) + b_2 + S u ∈ R^{D + (L−1)N}      (S: a linear skip, optional)
    q_φ(u) = (q_lat (B, D),  q_z reshaped to (L−1, B, N))

and the proposal is, with ``residual=True`` (the default) a correction of the feedforward pass,

    supervised:  z⁰ = z_ff(x) + q_z                    (q_lat unused)
    generative:  x⁰ = x + q_lat,   z⁰ = z_ff(x⁰) + q_z  (the latent is free)

or with ``residual=False`` the amortiser's output itself, z⁰ = q_z (x⁰ = q_lat). Inference
(:func:`pclab.infer`, any solver) runs from (x⁰, z⁰) to (x*, z*). One training step descends

    J(θ, φ) = F(θ; z*) + w · A(φ),    A(φ) = (1/B) Σ_i ½ (‖z⁰_i − z*_i‖² + ‖x⁰_i − x*_i‖²)

(the latent term only in generative mode; z*, x* and the PCN's weights held fixed inside A),
so θ gets the PC gradient and φ the gradient of the regression onto the equilibrium
(w = ``amortiser_weight``). W_2 and S start at zero, so at initialisation q ≡ 0 and, with
``residual=True``, hPC is PC exactly; a *perfect* amortiser (z⁰ = z*) starts inference at the
equilibrium, where the activity gradient vanishes and A = 0.

The model hPC trains is an :class:`AmortisedPCN` (``rule.prepare(pcn, key)``); as an
:class:`~pclab.nn.AbstractPCN` it is the PCN (evaluation, energy, layers), and
:meth:`AmortisedPCN.propose` gives the amortised start. Dense models only (``mlp``, ``resnet``).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..energy import energy, output_loss
from ..inference import infer
from ..nn.base import AbstractWrappedPCN, batch_sum_squares
from ..nn.dense import PCN, dense
from ..options import Activation, Mode, parse_option
from ..params import ParamInfo, Role
from .gradient_inference import check_dense_model
from .rules import LEARNING_RULES, AbstractLearningRule, StepInfo


class Amortiser(eqx.Module):
    """q(u) = W_2 φ(W_1 u + b_1) + b_2 (+ S u): a one-hidden-layer MLP with a linear skip.

    Attributes: w1 (H, I), b1 (H,), w2 (P, H), b2 (P,), skip (P, I) or ``None``, act φ.
    """

    w1: Float[Array, "H I"]
    b1: Float[Array, " H"]
    w2: Float[Array, "P H"]
    b2: Float[Array, " P"]
    skip: Float[Array, "P I"] | None
    act: Activation = eqx.field(static=True)

    def __call__(self, u: Float[Array, "B I"]) -> Float[Array, "B P"]:
        out = dense(self.act(dense(u, self.w1) + self.b1), self.w2) + self.b2
        return out if self.skip is None else out + dense(u, self.skip)


class AmortisedPCN(AbstractWrappedPCN):
    """A dense PCN (``base``) with an :class:`Amortiser` proposing its activities.

    As an AbstractPCN it delegates to ``base``. The amortiser's arrays have
    :class:`~pclab.Role` ``INPUT`` in :meth:`param_info` (no learning-rate scaling).
    """

    base: PCN
    amortiser: Amortiser
    residual: bool = eqx.field(static=True, default=True)

    def propose(self, x: Float[Array, "B D"], y: Float[Array, "B O"], mode: Mode = Mode.SUPERVISED, z_ff=None):
        """The amortised start (x⁰ or ``None`` when supervised, z⁰ of shape (L−1, B, N)).
        ``z_ff``: the feedforward activities of x if already computed (supervised)."""
        mode = parse_option(Mode, mode, "mode")
        b, d = x.shape[0], self.base.d_in
        q = self.amortiser(jnp.concatenate([x, y], axis=-1))
        q_lat = q[:, :d]
        q_z = q[:, d:].reshape(b, self.base.depth - 1, self.base.width).transpose(1, 0, 2)
        if mode is Mode.SUPERVISED:
            if not self.residual:
                return None, q_z
            return None, (self.base.activities(x) if z_ff is None else z_ff) + q_z
        if not self.residual:
            return q_lat, q_z
        lat0 = x + q_lat
        return lat0, self.base.activities(lat0) + q_z

    def param_info(self):
        a = self.amortiser
        fan_u, fan_h = a.w1.shape[1], a.w1.shape[0]
        tree = eqx.filter(self, eqx.is_array)
        tree = eqx.tree_at(lambda m: m.base, tree, self.base.param_info())
        infos = Amortiser(ParamInfo(Role.INPUT, fan_u), ParamInfo(Role.INPUT, fan_u, is_bias=True),
                          ParamInfo(Role.INPUT, fan_h), ParamInfo(Role.INPUT, fan_h, is_bias=True),
                          None if a.skip is None else ParamInfo(Role.INPUT, fan_u), a.act)
        return eqx.tree_at(lambda m: m.amortiser, tree, infos)


def amortised(pcn: PCN, key: Array, width: int = 256, skip: bool = True, residual: bool = True,
              act: "Activation | str" = "tanh") -> AmortisedPCN:
    """Add an amortiser of hidden width ``width`` to a dense PCN: W_1 ~ N(0, 1/(D+O)), and
    W_2, S and the biases zero (so it proposes q ≡ 0 until it learns)."""
    if not isinstance(pcn, PCN):
        raise ValueError(f"amortised() needs a dense pclab.PCN (pclab.mlp / pclab.resnet); got {type(pcn).__name__}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r} is not valid; expected an integer >= 1")
    dtype = pcn.w_in.dtype
    n_in = pcn.d_in + pcn.d_out
    n_out = pcn.d_in + (pcn.depth - 1) * pcn.width
    w1 = jax.random.normal(key, (width, n_in), dtype) / math.sqrt(n_in)
    amort = Amortiser(w1, jnp.zeros(width, dtype), jnp.zeros((n_out, width), dtype), jnp.zeros(n_out, dtype),
                      jnp.zeros((n_out, n_in), dtype) if skip else None, parse_option(Activation, act, "act"))
    return AmortisedPCN(pcn, amort, bool(residual))


def amortiser_loss(model: AmortisedPCN, x, y, z_star, latent_star=None, mode: Mode = Mode.SUPERVISED, z_ff=None):
    """A(φ) = (1/B) Σ_i ½ (‖z⁰_i − z*_i‖² + ‖x⁰_i − x*_i‖²), the latent term in generative mode."""
    lat0, z0 = model.propose(x, y, mode, z_ff)
    a = 0.5 * batch_sum_squares(jax.tree_util.tree_map(jnp.subtract, z0, z_star))
    if lat0 is not None and latent_star is not None:
        a = a + 0.5 * jnp.sum(jnp.square(lat0 - latent_star), axis=1)
    return jnp.mean(a)


class HPC(AbstractLearningRule):
    r"""Hybrid (amortised) PC (module docstring).

    Attributes:
        width: hidden width H of the amortiser. skip: give it a linear skip S.
        residual: the amortiser corrects the feedforward pass (True) or replaces it.
        amortiser_weight: w ≥ 0 on the amortiser's regression loss.
    """

    width: int = eqx.field(static=True, default=256)
    skip: bool = eqx.field(static=True, default=True)
    residual: bool = eqx.field(static=True, default=True)
    amortiser_weight: float = 1.0

    def __check_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width={self.width!r} is not valid; expected an integer >= 1")
        w = self.amortiser_weight
        if not eqx.is_array(w) and (isinstance(w, bool) or not isinstance(w, (int, float))
                                     or not 0 <= w < float("inf")):
            raise ValueError(f"amortiser_weight={w!r} is not valid; expected a finite number >= 0")

    def prepare(self, model, key):
        if isinstance(model, AmortisedPCN):
            return model
        check_dense_model("hpc", model, AmortisedPCN)
        return amortised(model, key, self.width, self.skip, self.residual)

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        parse_option(Mode, mode, "mode")
        check_dense_model("hpc", model, AmortisedPCN)

    def infer(self, model: AmortisedPCN, x, y, spec, inference, mode=Mode.SUPERVISED, z_ff=None, record_energy=False):
        """PC inference from the amortised start: ((x⁰, z⁰), :class:`pclab.inference.Solution`)."""
        mode = parse_option(Mode, mode, "mode")
        if not isinstance(model, AmortisedPCN):
            raise ValueError(f"algo='hpc' trains an AmortisedPCN; got {type(model).__name__} "
                             "(build it with rule.prepare(pcn, key))")
        lat0, z0 = model.propose(x, y, mode, z_ff)
        sol = infer(model.base, x if lat0 is None else lat0, y, solver=inference.solver, spec=spec,
                    max_steps=inference.max_steps, rtol=inference.rtol, atol=inference.atol, z0=z0, mode=mode,
                    record_energy=record_energy, throw=False)
        return (lat0, z0), sol

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        mode = parse_option(Mode, mode, "mode")
        z_ff = model.base.activities(x)
        ff_loss = jnp.mean(output_loss(model.base.output(z_ff), y, spec.loss))
        _, sol = self.infer(model, x, y, spec, inference, mode, z_ff=z_ff)
        z_star = jax.lax.stop_gradient(sol.z)
        lat_star = None if sol.latent is None else jax.lax.stop_gradient(sol.latent)
        x_used = x if lat_star is None else lat_star
        z_ff = jax.lax.stop_gradient(z_ff)

        def objective(m):
            f = energy(m.base, z_star, x_used, y, spec)
            fixed = eqx.tree_at(lambda t: t.base, m, jax.lax.stop_gradient(m.base))
            return f + self.amortiser_weight * amortiser_loss(fixed, x, y, z_star, lat_star, mode, z_ff), f

        (_, f), grads = eqx.filter_value_and_grad(objective, has_aux=True)(model)
        return grads, StepInfo(ff_loss, f, sol.steps, sol.status)


LEARNING_RULES.register("hpc", HPC())
