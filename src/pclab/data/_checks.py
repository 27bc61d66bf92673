"""Argument checks shared by the loaders: each error names the argument and what was expected."""

from __future__ import annotations

import numbers


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: object, *, minimum: float = 0.0) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is a real number ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value!r}")
    return float(value)
