"""Shuffled mini-batches and train/validation splits driven by explicit JAX PRNG keys.

The order of examples is ``jax.random.permutation(key, n)``: the same key gives the same
batches, and no hidden global random state is used. Pass ``jax.random.fold_in(key, epoch)``
(or split a key) to get a new order every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from pclab.data._checks import check_float, check_int


def num_batches(n: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of batches `batches` yields for ``n`` examples: ``n // b``, or ``ceil(n / b)``."""
    n = check_int("n", n, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    return n // batch_size if drop_last else -(-n // batch_size)


def _permutation(key: Any, n: int) -> np.ndarray:
    return np.asarray(jax.random.permutation(key, n))


def _check_pair(x: Any, y: Any) -> int:
    n = np.shape(x)[0] if np.ndim(x) else -1
    if n < 0:
        raise ValueError(f"x: expected an array with a leading example axis, got shape {np.shape(x)}")
    if y is not None and (np.ndim(y) == 0 or np.shape(y)[0] != n):
        raise ValueError(f"y: expected leading dimension {n} (that of x), got shape {np.shape(y)}")
    return n


def batches(
    x: Any,
    y: Any,
    batch_size: int,
    *,
    key: Any,
    drop_last: bool = True,
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(x_batch, y_batch)`` pairs covering a random permutation of the examples.

    Args:
        x: ``(n, ...)`` numpy or JAX array.
        y: ``(n, ...)`` array (labels or targets), or None (then ``y_batch`` is None).
        batch_size: examples per batch ``b >= 1``.
        key: a JAX PRNG key; the order is ``jax.random.permutation(key, n)``.
        drop_last: drop the final ``n % b`` examples (all batches then have size ``b``,
            which avoids recompiling a jitted step); if false the last batch is smaller.

    Returns:
        an iterator of ``(x[idx], y[idx])`` with ``idx`` a slice of the permutation (same
        array type as the input).

    Raises:
        ValueError (at the call, not at the first batch): ``batch_size < 1``, ``batch_size > n`` with ``drop_last`` (no batch at
            all), or ``x`` and ``y`` of different lengths.
    """
    n = _check_pair(x, y)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if drop_last and batch_size > n:
        raise ValueError(
            f"batch_size: expected at most n={n} with drop_last=True (else no batch), got {batch_size}"
        )
    perm = _permutation(key, n)  # checked and drawn now, not at the first next()
    return _iterate(x, y, perm, batch_size, num_batches(n, batch_size, drop_last))


def _iterate(x: Any, y: Any, perm: np.ndarray, batch_size: int, count: int) -> Iterator[tuple[Any, Any]]:
    for i in range(count):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        yield x[idx], (None if y is None else y[idx])


def train_val_split(
    x: Any,
    y: Any,
    *,
    val_size: int | float,
    key: Any,
) -> tuple[Any, Any, Any, Any]:
    """Randomly hold out a validation set.

    Args:
        x: ``(n, ...)`` array. y: ``(n, ...)`` array.
        val_size: number of validation examples (int, ``0 <= val_size < n``) or a fraction
            in ``[0, 1)`` (rounded to the nearest count).
        key: a JAX PRNG key; the validation examples are the first ``val_size`` of
            ``jax.random.permutation(key, n)``; both parts keep the original order.

    Returns:
        ``(x_train, y_train, x_val, y_val)``.
    """
    n = _check_pair(x, y)
    if isinstance(val_size, float):
        frac = check_float("val_size", val_size)
        if frac >= 1.0:
            raise ValueError(f"val_size: expected a fraction in [0, 1) or a count < n, got {val_size}")
        n_val = int(round(frac * n))
    else:
        n_val = check_int("val_size", val_size, minimum=0)
    if n_val >= n:
        raise ValueError(f"val_size: expected fewer than n={n} examples, got {n_val}")
    val = np.zeros(n, dtype=bool)
    val[_permutation(key, n)[:n_val]] = True
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]
