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

**Any model** (conv, transformer, …) gets a *copy amortiser* instead (``amortiser='copy'``,
the default for every model but the dense PCN): a network q_φ of the PCN's own architecture,
as in Tschantz et al.'s hybrid PC, where the amortiser is a bottom-up network of the same
shape, proposing

    z⁰ = q_φ.activities(x⁰)      (x⁰ = x; in generative mode the latent is not proposed)

with ``residual=True`` q_φ has the weights W + φ of the PCN shifted by a learned offset
φ = Δ (Δ = 0 at initialisation), so it tracks the PCN as the PCN learns; with
``residual=False`` φ are weights of q's own, a copy of W at initialisation. Either way z⁰ is
the feedforward pass at initialisation, so hPC is PC exactly, and A(φ) trains φ towards the
equilibrium. (The dense MLP amortiser reads y as well; the copy reads x only.)

The model hPC trains is an :class:`AmortisedPCN` (``rule.prepare(pcn, key)``); as an
:class:`~pclab.nn.AbstractPCN` it is the PCN (evaluation, energy, layers), and
:meth:`AmortisedPCN.propose` gives the amortised start.
"""

from __future__ import annotations

import abc
import enum
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..energy import energy, output_loss
from ..inference import infer
from ..nn.base import AbstractPCN, AbstractWrappedPCN, batch_sum_squares
from ..nn.dense import PCN, dense
from ..options import Activation, Mode, parse_option
from ..params import ParamInfo, Role
from .gradient_inference import DENSE_MODELS
from .rules import LEARNING_RULES, AbstractLearningRule, StepInfo


class AmortiserKind(str, enum.Enum):
    """What proposes hPC's activities: ``mlp`` (:class:`Amortiser`, dense PCNs) or ``copy``
    (:class:`CopyAmortiser`, any model)."""

    MLP = "mlp"
    COPY = "copy"


class AbstractAmortiser(eqx.Module):
    """Proposes the start of inference from the clamped ends."""

    @abc.abstractmethod
    def propose(self, base: AbstractPCN, x, y, mode: Mode, z_ff, residual: bool):
        """(x⁰ or ``None`` when supervised, z⁰ shaped like ``base.activities(x)``)."""

    @abc.abstractmethod
    def param_info(self, base: AbstractPCN):
        """A :class:`~pclab.ParamInfo` per array (the amortiser's own tree structure)."""


class Amortiser(AbstractAmortiser):
    """q(u) = W_2 φ(W_1 u + b_1) + b_2 (+ S u): a one-hidden-layer MLP with a linear skip, reading
    u = [x, y] and writing (the latent's correction (B, D), the activities' (L−1, B, N)) for a
    dense PCN.

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

    def propose(self, base: PCN, x, y, mode, z_ff, residual):
        b, d = x.shape[0], base.d_in
        q = self(jnp.concatenate([x, y], axis=-1))
        q_lat = q[:, :d]
        q_z = q[:, d:].reshape(b, base.depth - 1, base.width).transpose(1, 0, 2)
        if mode is Mode.SUPERVISED:
            if not residual:
                return None, q_z
            return None, (base.activities(x) if z_ff is None else z_ff) + q_z
        if not residual:
            return q_lat, q_z
        lat0 = x + q_lat
        return lat0, base.activities(lat0) + q_z

    def param_info(self, base):
        fan_u, fan_h = self.w1.shape[1], self.w1.shape[0]
        return Amortiser(ParamInfo(Role.INPUT, fan_u), ParamInfo(Role.INPUT, fan_u, is_bias=True),
                         ParamInfo(Role.INPUT, fan_h), ParamInfo(Role.INPUT, fan_h, is_bias=True),
                         None if self.skip is None else ParamInfo(Role.INPUT, fan_u), self.act)


class CopyAmortiser(AbstractAmortiser):
    """A network q of the PCN's own architecture proposing z⁰ = q.activities(x). With
    ``residual`` (the default) q has the PCN's weights plus a learned offset, W + Δ with Δ = 0
    at initialisation: q follows the PCN as it learns, and Δ learns where the equilibrium
    differs from the feedforward pass. Without, q has weights of its own (W at
    initialisation). The arrays have the PCN's roles.

    Attributes: weights: Δ or q's weights, the structure of ``eqx.filter(base, eqx.is_inexact_array)``.
    """

    weights: AbstractPCN

    def net(self, base: AbstractPCN, residual: bool) -> AbstractPCN:
        """q: the PCN with weights W + Δ (``residual``) or with ``weights``."""
        own = eqx.filter(base, eqx.is_inexact_array)
        arrays = jax.tree_util.tree_map(jnp.add, own, self.weights) if residual else self.weights
        return eqx.combine(arrays, eqx.filter(base, eqx.is_inexact_array, inverse=True))

    def propose(self, base, x, y, mode, z_ff, residual):
        return (None if mode is Mode.SUPERVISED else x), self.net(base, residual).activities(x)

    def param_info(self, base):
        return CopyAmortiser(base.param_info())


class AmortisedPCN(AbstractWrappedPCN):
    """A PCN (``base``) with an amortiser proposing its activities.

    As an AbstractPCN it delegates to ``base``. The MLP amortiser's arrays have
    :class:`~pclab.Role` ``INPUT`` in :meth:`param_info` (no learning-rate scaling); a copy
    amortiser's have the PCN's roles.
    """

    base: AbstractPCN
    amortiser: AbstractAmortiser
    residual: bool = eqx.field(static=True, default=True)

    def propose(self, x, y, mode: Mode = Mode.SUPERVISED, z_ff=None):
        """The amortised start (x⁰ or ``None`` when supervised, z⁰ shaped like the activities).
        ``z_ff``: the feedforward activities of x if already computed (supervised)."""
        return self.amortiser.propose(self.base, x, y, parse_option(Mode, mode, "mode"), z_ff, self.residual)

    def param_info(self):
        tree = eqx.filter(self, eqx.is_array)
        return eqx.tree_at(lambda m: (m.base, m.amortiser), tree,
                           (self.base.param_info(), self.amortiser.param_info(self.base)))


def amortised(pcn: AbstractPCN, key: Array, width: int = 256, skip: bool = True, residual: bool = True,
              act: "Activation | str" = "tanh", kind: "AmortiserKind | str | None" = None) -> AmortisedPCN:
    """Add an amortiser to a PCN. ``kind`` (default: ``mlp`` for a dense :class:`pclab.PCN`,
    ``copy`` otherwise): ``mlp`` is an MLP of hidden width ``width`` with W_1 ~ N(0, 1/(D+O)),
    and W_2, S and the biases zero (so it proposes q ≡ 0 until it learns); ``copy`` is the PCN
    with weights W + Δ, Δ = 0 (``residual``) or a copy of W (so both propose the feedforward
    pass until they learn)."""
    kind = resolve_kind(kind, pcn)
    check_amortiser(kind, pcn)
    if kind is AmortiserKind.COPY:
        own = eqx.filter(pcn, eqx.is_inexact_array)
        start = jax.tree_util.tree_map(jnp.zeros_like, own) if residual else own
        return AmortisedPCN(pcn, CopyAmortiser(start), bool(residual))
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r} is not valid; expected an integer >= 1")
    dtype = pcn.w_in.dtype
    n_in = pcn.d_in + pcn.d_out
    n_out = pcn.d_in + (pcn.depth - 1) * pcn.width
    w1 = jax.random.normal(key, (width, n_in), dtype) / math.sqrt(n_in)
    amort = Amortiser(w1, jnp.zeros(width, dtype), jnp.zeros((n_out, width), dtype), jnp.zeros(n_out, dtype),
                      jnp.zeros((n_out, n_in), dtype) if skip else None, parse_option(Activation, act, "act"))
    return AmortisedPCN(pcn, amort, bool(residual))


def _is_dense(model) -> bool:
    """Whether ``model`` (an instance, possibly amortised, or a registered name) is a dense PCN;
    ``None`` (no model given) counts as dense."""
    if isinstance(model, AmortisedPCN):
        model = model.base
    return model is None or isinstance(model, PCN) or (isinstance(model, str) and model.lower() in DENSE_MODELS)


def resolve_kind(kind, model) -> AmortiserKind:
    """``kind`` as an :class:`AmortiserKind`; ``None`` means ``mlp`` for a dense PCN (an
    instance or the name ``mlp`` / ``resnet``, or no model given) and ``copy`` for any other."""
    if kind is not None:
        return parse_option(AmortiserKind, kind, "amortiser")
    return AmortiserKind.MLP if _is_dense(model) else AmortiserKind.COPY


def check_amortiser(kind: AmortiserKind, model) -> None:
    """Raise ``ValueError`` if the MLP amortiser is asked for a model that is not a dense PCN."""
    if kind is not AmortiserKind.MLP or _is_dense(model):
        return
    if isinstance(model, AmortisedPCN):
        model = model.base
    got = f"model={model!r}" if isinstance(model, str) else type(model).__name__
    raise ValueError(f"algo='hpc' with amortiser='mlp' supports the dense models only: model="
                     f"{', '.join(map(repr, DENSE_MODELS))} (pclab.PCN); amortiser='copy' works with "
                     f"any model; got {got}")


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
        width: hidden width H of the MLP amortiser. skip: give it a linear skip S.
        residual: the MLP amortiser corrects the feedforward pass (True) or replaces it.
        amortiser_weight: w ≥ 0 on the amortiser's regression loss.
        amortiser: ``'mlp'`` or ``'copy'`` (:class:`AmortiserKind`); ``None``: ``mlp`` for the
            dense models, ``copy`` for the others.
    """

    width: int = eqx.field(static=True, default=256)
    skip: bool = eqx.field(static=True, default=True)
    residual: bool = eqx.field(static=True, default=True)
    amortiser_weight: float = 1.0
    amortiser: AmortiserKind | None = eqx.field(static=True, default=None, converter=lambda k: None if k is None
                                                else parse_option(AmortiserKind, k, "amortiser"))

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
        return amortised(model, key, self.width, self.skip, self.residual, kind=self.amortiser)

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        parse_option(Mode, mode, "mode")
        check_amortiser(resolve_kind(self.amortiser, model), model)

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
