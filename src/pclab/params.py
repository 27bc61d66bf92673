r"""Parameterisations: each parameter's multiplier, initialisation and learning-rate factor,
from its *role* and *fan-in* — so that one parameterisation applies to every architecture.

A layer computes ``a · W ⊛ φ(z)`` (``⊛`` a matmul, a convolution, an attention product). A
model declares for each parameter a :class:`ParamInfo` (role, fan-in, number of residual
blocks sharing the stream); a :class:`Parameterisation` maps it to ``a``, the initial
distribution of ``W`` and a factor on scale-free (Adam-style) updates. The dense numbers are
those of the μPC paper's code (arXiv 2505.13124, §3 "μPC"); with L weight layers, width N and
input dimension D:

==================  ====  ===============  ===========  ==========
role (fan-in)       SP    μPC (Depth-μP)   NTP          μP
==================  ====  ===============  ===========  ==========
input (D)           1     1/√D             1/√D         1/√D
hidden (N)          1     1/√N             1/√N         1/√N
residual (N, L)     1     1/√(N·L^{2p})    1/√(N·L^{2p})  1/√N
output (N)          1/γ   1/(γN)           1/(γ√N)      1/(γN)
embedding           1     1                1            1
attention (d_head)  1/√d  1/d              1/d          1/d
norm                1     1                1            1
==================  ====  ===============  ===========  ==========

``p`` is the block's ``branch_power``: ½ for Depth-μP ResNets (dense and convolutional, where
``L`` counts the blocks), 1 for transformers (residual branch 1/n_blocks, arXiv 2602.07697).
SP draws weights from U(±1/√fan_in) (the usual framework default); the others N(0, 1).
Embeddings draw N(0, 1) and norm gains start at 1 under every parameterisation.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .registry import Registry


class Role(str, enum.Enum):
    """What a parameter does in its network (see the module table)."""

    INPUT = "input"
    HIDDEN = "hidden"
    RESIDUAL = "residual"
    OUTPUT = "output"
    EMBEDDING = "embedding"
    ATTENTION = "attention"
    NORM = "norm"


@dataclass(frozen=True)
class ParamInfo:
    """Role and fan-in of one parameter (or one stack of identical parameters).

    Attributes:
        role: a :class:`Role`. fan_in: inputs per output unit (D, N, C_in·k², d_head...).
        blocks: residual blocks sharing the stream (``L`` of Depth-μP); 1 elsewhere.
        branch_power: exponent ``p`` of the residual-branch factor ``blocks^{-p}``.
        is_bias: a bias (initialised to zero, multiplier 1).
    """

    role: Role
    fan_in: int = 1
    blocks: int = 1
    branch_power: float = 0.5
    is_bias: bool = False

    def __post_init__(self):
        if not isinstance(self.role, Role):
            raise ValueError(f"role={self.role!r} is not valid; expected one of {[r.value for r in Role]}")
        for name in ("fan_in", "blocks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} is not valid; expected an integer >= 1")


class WeightInit(str, enum.Enum):
    UNIFORM_FAN_IN = "uniform_fan_in"  # U(±1/√fan_in)
    STANDARD_NORMAL = "standard_normal"  # N(0, 1)


@dataclass(frozen=True)
class Multipliers:
    """Scalar multipliers of the input, hidden and output layers of a dense PCN."""

    input: float
    hidden: float
    output: float


PARAMETERISATIONS: Registry[type] = Registry("param")


@dataclass(frozen=True)
class Parameterisation:
    """Base class: ``Parameterisation("mupc", gamma=2.0)`` builds the registered subclass.

    Subclasses override :meth:`_scale` (the multiplier of a weight, without γ) and, if they
    scale updates, :meth:`lr_scale`. ``gamma`` > 0 divides the output multiplier (the μPC
    paper's γ).
    """

    name: str = "mupc"
    gamma: float = 1.0

    def __new__(cls, name="mupc", gamma: float = 1.0):
        if cls is Parameterisation:
            cls = PARAMETERISATIONS.get(getattr(name, "value", name))
        return super().__new__(cls)

    def __post_init__(self):
        object.__setattr__(self, "name", _name_of(type(self)))  # __new__ chose the class from the name
        g = self.gamma
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not (g > 0 and math.isfinite(g)):
            raise ValueError(f"gamma={g!r} is not valid; expected a finite number > 0")

    # ----- per parameter ------------------------------------------------------------------
    def multiplier(self, info: ParamInfo) -> float:
        """The forward multiplier ``a`` of a parameter with ``info`` (1 for biases)."""
        if info.is_bias or info.role in (Role.NORM, Role.EMBEDDING):
            return 1.0
        a = self._scale(info)
        return a / self.gamma if info.role is Role.OUTPUT else a

    def _scale(self, info: ParamInfo) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def weight_init(self, info: ParamInfo) -> WeightInit:
        return WeightInit.STANDARD_NORMAL

    def init(self, key: jax.Array, shape: tuple[int, ...], info: ParamInfo, dtype=jnp.float32) -> jax.Array:
        """Draw a parameter of ``shape`` (stacks first, then (out, in, …)) for ``info``."""
        if info.is_bias:
            return jnp.zeros(shape, dtype)
        if info.role is Role.NORM:
            return jnp.ones(shape, dtype)
        if info.role is not Role.EMBEDDING and self.weight_init(info) is WeightInit.UNIFORM_FAN_IN:
            bound = 1.0 / math.sqrt(info.fan_in)
            return jax.random.uniform(key, shape, dtype, -bound, bound)
        return jax.random.normal(key, shape, dtype)

    def lr_scale(self, info: ParamInfo) -> float:
        """Factor on a scale-free update of this parameter (1 unless the subclass scales)."""
        return 1.0

    # ----- the dense table (kept for the dense PCN and the theory toolkit) ----------------
    def multipliers(self, d_in: int, width: int, depth: int, skips: bool) -> Multipliers:
        """Multipliers of a dense PCN: input dim ``d_in``, ``width``, ``depth`` weight layers."""
        hidden = ParamInfo(Role.RESIDUAL, width, depth) if skips else ParamInfo(Role.HIDDEN, width)
        return Multipliers(self.multiplier(ParamInfo(Role.INPUT, d_in)), self.multiplier(hidden),
                           self.multiplier(ParamInfo(Role.OUTPUT, width)))

    def lr_scales(self, width: int, depth: int, skips: bool) -> Multipliers:
        """:meth:`lr_scale` of the input, hidden and output weights of a dense PCN."""
        hidden = ParamInfo(Role.RESIDUAL, width, depth) if skips else ParamInfo(Role.HIDDEN, width)
        return Multipliers(self.lr_scale(ParamInfo(Role.INPUT, 1)), self.lr_scale(hidden),
                           self.lr_scale(ParamInfo(Role.OUTPUT, width)))


def _name_of(cls: type) -> str:
    for n in PARAMETERISATIONS:
        if PARAMETERISATIONS.get(n) is cls:
            return n
    return cls.__name__.lower()


def _feature_lr(param: Parameterisation, info: ParamInfo, per_block: bool) -> float:
    r"""1/(blocks·a·fan_in) on hidden and residual weights: weights are stored unscaled and
    ``a`` sits in the forward pass, so an Adam step of η per entry moves a pre-activation by
    ≈ a·fan_in·η. μP asks for Θ(1) per layer; Depth-μP for Θ(1/L) per residual block."""
    if info.is_bias or info.role not in (Role.HIDDEN, Role.RESIDUAL):
        return 1.0
    blocks = info.blocks if (per_block and info.role is Role.RESIDUAL) else 1
    return 1.0 / (blocks * param.multiplier(info) * info.fan_in)


@PARAMETERISATIONS.register("sp")
class SP(Parameterisation):
    """Standard parameterisation: multiplier 1 (1/√d_head on attention), U(±1/√fan_in) init."""

    def _scale(self, info):
        return 1.0 / math.sqrt(info.fan_in) if info.role is Role.ATTENTION else 1.0

    def weight_init(self, info):
        return WeightInit.UNIFORM_FAN_IN


@PARAMETERISATIONS.register("ntp")
class NTP(Parameterisation):
    """Neural-tangent parameterisation with Depth-μP residual branches."""

    def _scale(self, info):
        if info.role is Role.ATTENTION:
            return 1.0 / info.fan_in
        a = 1.0 / math.sqrt(info.fan_in)
        return a * info.blocks ** (-info.branch_power) if info.role is Role.RESIDUAL else a


@PARAMETERISATIONS.register("mup")
class MuP(Parameterisation):
    """μP: 1/√fan_in inside, 1/fan_in at the output, no depth scaling; lr 1/√N inside."""

    def _scale(self, info):
        if info.role in (Role.OUTPUT, Role.ATTENTION):
            return 1.0 / info.fan_in
        return 1.0 / math.sqrt(info.fan_in)

    def lr_scale(self, info):
        return _feature_lr(self, info, per_block=False)


@PARAMETERISATIONS.register("mupc")
class MuPC(Parameterisation):
    """μPC = Depth-μP (arXiv 2505.13124): μP with residual branches scaled by blocks^{-p}."""

    def _scale(self, info):
        if info.role in (Role.OUTPUT, Role.ATTENTION):
            return 1.0 / info.fan_in
        a = 1.0 / math.sqrt(info.fan_in)
        return a * info.blocks ** (-info.branch_power) if info.role is Role.RESIDUAL else a

    def lr_scale(self, info):
        return _feature_lr(self, info, per_block=True)


def get_param(name: "str | Parameterisation", gamma: float = 1.0) -> Parameterisation:
    """A :class:`Parameterisation` by registered name (``sp``, ``ntp``, ``mup``, ``mupc``)."""
    if isinstance(name, Parameterisation):
        return name
    return Parameterisation(name, gamma)
