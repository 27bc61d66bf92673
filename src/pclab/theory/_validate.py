r"""Input checks shared by the theory functions.

A deep linear network is given as its layer maps B_1..B_L, a sequence of 2-d arrays of
shapes (n_1, d_in), (n_2, n_1), …, (d_out, n_{L−1}) (each (out, in)). Every check raises
``ValueError`` naming the offending argument, the layer index (``maps[i]`` is B_{i+1}) and
the shapes, so that a wrong call fails at trace time with a readable message.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..nn.dense import PCN, layer_maps


def _float_dtype(*arrays) -> jnp.dtype:
    dt = jnp.result_type(*arrays)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)


def _cast(a: jax.Array, dtype) -> jax.Array:
    return a if a.dtype == dtype else a.astype(dtype)


def as_maps(maps: "Sequence[jax.Array] | PCN", name: str = "maps") -> list[jax.Array]:
    """Check that ``maps`` chain and return them as arrays of one floating dtype.

    A bias-free linear :class:`pclab.PCN` is accepted too (its :func:`pclab.layer_maps`).
    Needs L ≥ 2 maps (at least one hidden layer).
    """
    if isinstance(maps, PCN):
        if any(b is not None for b in (maps.b_in, maps.b_hidden, maps.b_out)):
            raise ValueError(f"{name}: the theory functions need a bias-free model; got one with biases")
        maps = layer_maps(maps)
    if isinstance(maps, (jax.Array, np.ndarray)) or not isinstance(maps, Sequence):
        raise ValueError(f"{name} must be a list of 2-d arrays B_1..B_L (each (out, in)); got {type(maps).__name__}")
    arrays = [jnp.asarray(m) for m in maps]
    if len(arrays) < 2:
        raise ValueError(f"{name} has {len(arrays)} layer map(s); need at least 2 (one hidden layer)")
    for i, m in enumerate(arrays):
        if m.ndim != 2:
            raise ValueError(f"{name}[{i}] (B_{i + 1}) must be a 2-d (out, in) array; got shape {tuple(m.shape)}")
        if 0 in m.shape:
            raise ValueError(f"{name}[{i}] (B_{i + 1}) has an empty shape {tuple(m.shape)}")
    for i in range(1, len(arrays)):
        prev, cur = arrays[i - 1].shape, arrays[i].shape
        if cur[1] != prev[0]:
            raise ValueError(
                f"{name}[{i}] (B_{i + 1}) has shape {tuple(cur)} but {name}[{i - 1}] (B_{i}) has shape "
                f"{tuple(prev)}: the in-dim {cur[1]} of layer {i + 1} must equal the out-dim {prev[0]} "
                f"of layer {i}"
            )
    dt = _float_dtype(*arrays)
    return [_cast(a, dt) for a in arrays]


def check_precision(precision) -> float | jax.Array:
    """λ must be a finite number > 0 (a traced value is passed through unchecked)."""
    if isinstance(precision, jax.core.Tracer):
        return precision
    if isinstance(precision, bool):
        raise ValueError(f"precision={precision!r} is not valid; expected a finite number > 0")
    try:
        p = float(precision)
    except (TypeError, ValueError):
        raise ValueError(f"precision={precision!r} is not valid; expected a finite number > 0") from None
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"precision={precision!r} is not valid; expected a finite number > 0")
    return precision


def as_batch(maps: list[jax.Array], x, y) -> tuple[list[jax.Array], jax.Array, jax.Array]:
    """Check x (B, d_in) and y (B, d_out) against B_1 and B_L; cast all to one float dtype."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    first, last = maps[0].shape, maps[-1].shape
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-d (batch, d_in) array; got shape {tuple(x.shape)}")
    if y.ndim != 2:
        raise ValueError(f"y must be a 2-d (batch, d_out) array; got shape {tuple(y.shape)}")
    if x.shape[1] != first[1]:
        raise ValueError(
            f"x has shape {tuple(x.shape)} but maps[0] (B_1, layer 1) has shape {tuple(first)}: "
            f"expected x.shape[1] == {first[1]}"
        )
    if y.shape[1] != last[0]:
        raise ValueError(
            f"y has shape {tuple(y.shape)} but maps[{len(maps) - 1}] (B_{len(maps)}, layer {len(maps)}) "
            f"has shape {tuple(last)}: expected y.shape[1] == {last[0]}"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y have different batch sizes: {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < 1:
        raise ValueError("x and y are empty: the batch size must be >= 1")
    dt = _float_dtype(maps[0], x, y)
    return [_cast(m, dt) for m in maps], _cast(x, dt), _cast(y, dt)


def check_problem(maps, x, y, precision=1.0):
    """``as_maps`` + ``as_batch`` + ``check_precision`` in one call."""
    check_precision(precision)
    return as_batch(as_maps(maps), x, y)
