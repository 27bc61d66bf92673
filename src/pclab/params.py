r"""Parameterisations: per-layer multipliers, initialisation and learning-rate scalings.

A PCN layer computes ``a_l · W_l φ(z)`` (plus an identity skip in residual nets). A
parameterisation fixes the multipliers ``a_l`` and the initial distribution of ``W_l`` as
functions of the input dimension D, the width N and the number of weight layers L
(science.md §1, from the μPC paper's code):

=================  ====  ===============  ===========
layer              SP    μPC (Depth-μP)   NTP / μP
=================  ====  ===============  ===========
input  a_1         1     1/√D             1/√D
hidden, skips      1     1/√(N·L)         1/√(N·L) (NTP), 1/√N (μP)
hidden, no skips   1     1/√N             1/√N
output a_L         1     1/(γN)           1/(γ√N) (NTP), 1/(γN) (μP)
=================  ====  ===============  ===========

SP draws weights from U(±1/√fan_in) (the usual framework default); the others draw N(0, 1).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import jax

from .options import parse_option


class ParamName(str, enum.Enum):
    SP = "sp"
    NTP = "ntp"
    MUP = "mup"
    MUPC = "mupc"


class WeightInit(str, enum.Enum):
    UNIFORM_FAN_IN = "uniform_fan_in"  # U(±1/√fan_in)
    STANDARD_NORMAL = "standard_normal"  # N(0, 1)


@dataclass(frozen=True)
class Multipliers:
    """Scalar multipliers of the input, hidden and output layers."""

    input: float
    hidden: float
    output: float


@dataclass(frozen=True)
class Parameterisation:
    """A parameterisation of a PCN.

    Attributes:
        name: one of ``sp``, ``ntp``, ``mup``, ``mupc``.
        gamma: divides the output multiplier (``γ`` of the μPC paper); must be > 0.
    """

    name: ParamName = ParamName.MUPC
    gamma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "name", parse_option(ParamName, self.name, "param"))
        if not (isinstance(self.gamma, (int, float)) and self.gamma > 0 and math.isfinite(self.gamma)):
            raise ValueError(f"gamma={self.gamma!r} is not valid; expected a finite number > 0")

    @property
    def weight_init(self) -> WeightInit:
        return WeightInit.UNIFORM_FAN_IN if self.name is ParamName.SP else WeightInit.STANDARD_NORMAL

    def multipliers(self, d_in: int, width: int, depth: int, skips: bool) -> Multipliers:
        """Multipliers for input dim ``d_in``, width ``width``, ``depth`` weight layers."""
        if self.name is ParamName.SP:
            return Multipliers(1.0, 1.0, 1.0 / self.gamma)
        a_in = 1.0 / math.sqrt(d_in)
        if self.name is ParamName.MUP:
            return Multipliers(a_in, 1.0 / math.sqrt(width), 1.0 / (self.gamma * width))
        hidden = 1.0 / math.sqrt(width * depth) if skips else 1.0 / math.sqrt(width)
        if self.name is ParamName.MUPC:
            return Multipliers(a_in, hidden, 1.0 / (self.gamma * width))
        return Multipliers(a_in, hidden, 1.0 / (self.gamma * math.sqrt(width)))  # NTP

    def lr_scales(self, width: int, depth: int, skips: bool) -> Multipliers:
        r"""Per-layer factors on scale-free (Adam-style) weight updates.

        Weights are stored unscaled and the multiplier ``a`` sits in the forward pass, so an
        Adam update of η per entry moves a hidden pre-activation by about ``a·N·η``. μP asks
        for Θ(1) per layer, giving ``1/(a·N) = 1/√N``; Depth-μP asks for Θ(1/L) per residual
        block, giving ``1/(L·a·N) = 1/√(N·L)``. SP and NTP keep the rate unscaled. The μPC
        paper trained with an *unscaled* rate, so these factors are opt-in
        (``TrainConfig.scale_lr``).
        """
        m = self.multipliers(1, width, depth, skips)
        if self.name is ParamName.MUP:
            return Multipliers(1.0, 1.0 / (m.hidden * width), 1.0)
        if self.name is ParamName.MUPC:
            per_block = depth if skips else 1
            return Multipliers(1.0, 1.0 / (per_block * m.hidden * width), 1.0)
        return Multipliers(1.0, 1.0, 1.0)

    def init_weight(self, key: jax.Array, shape: tuple[int, ...], fan_in: int, dtype) -> jax.Array:
        """Draw one weight array of ``shape`` (…, out, in) with this parameterisation's init."""
        if self.weight_init is WeightInit.UNIFORM_FAN_IN:
            bound = 1.0 / math.sqrt(fan_in)
            return jax.random.uniform(key, shape, dtype, -bound, bound)
        return jax.random.normal(key, shape, dtype)


def get_param(name: "str | ParamName | Parameterisation", gamma: float = 1.0) -> Parameterisation:
    """Build a :class:`Parameterisation` from a name (``sp``, ``ntp``, ``mup``, ``mupc``)."""
    if isinstance(name, Parameterisation):
        return name
    return Parameterisation(parse_option(ParamName, name, "param"), gamma)

