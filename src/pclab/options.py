"""Typed options shared across pclab.

Every option is an :class:`enum.Enum` whose values are the names users type on the command
line. :func:`parse_option` turns a string into the enum and fails with a message naming the
argument and the valid choices.
"""

from __future__ import annotations

import enum
from typing import TypeVar

import jax
import jax.numpy as jnp

E = TypeVar("E", bound=enum.Enum)


def parse_option(kind: type[E], value: "E | str", argname: str) -> E:
    """Return ``value`` as a member of ``kind``; raise ``ValueError`` listing valid names."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        valid = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{argname}={value!r} is not valid; expected one of {valid}") from None


def choices(kind: type[enum.Enum]) -> list[str]:
    """The names of an option's members, in definition order (for CLI ``choices``)."""
    return [m.value for m in kind]


class Activation(str, enum.Enum):
    """Pointwise nonlinearity φ applied to an activity before it is multiplied by a weight."""

    LINEAR = "linear"
    TANH = "tanh"
    RELU = "relu"
    GELU = "gelu"

    def __call__(self, x: jax.Array) -> jax.Array:
        if self is Activation.LINEAR:
            return x
        if self is Activation.TANH:
            return jnp.tanh(x)
        if self is Activation.RELU:
            return jax.nn.relu(x)
        return jax.nn.gelu(x)


class OutputLoss(str, enum.Enum):
    """Output term of the energy: ``mse`` = ½‖y − ŷ‖², ``ce`` = −Σ y·log softmax(ŷ)."""

    MSE = "mse"
    CE = "ce"


class Mode(str, enum.Enum):
    """Which ends are clamped: ``supervised`` clamps input x and target y; ``generative``
    clamps only the target (the data, at the top) and leaves the input activity free."""

    SUPERVISED = "supervised"
    GENERATIVE = "generative"


class ActivityInit(str, enum.Enum):
    """How hidden activities start before inference."""

    FEEDFORWARD = "feedforward"
    ZEROS = "zeros"


class Status(enum.IntEnum):
    """Outcome of an inference run (stored as an int32 array inside jit)."""

    CONVERGED = 0
    MAX_STEPS = 1
    NONFINITE = 2
