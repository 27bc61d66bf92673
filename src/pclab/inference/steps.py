"""A fixed number of loop steps, rolled or unrolled.

``lax.scan(..., unroll=True)`` does not unroll a scan of length 1: JAX reads ``unroll=True`` as
``unroll=length`` and a 1-step unroll as "not unrolled", so one inference step (Newton, a
direct solver, or ePC with T = 1) ran inside a one-trip ``while`` loop. XLA:CPU runs
convolutions inside a loop body several times slower than the same ops at top level
(:mod:`pclab.nn.conv`; measured 5.20 s against 0.79 s for T = 1 against T = 2 on an 18-block
conv PCN), so :func:`fixed_steps` unrolls in Python when asked.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def fixed_steps(body: Callable, carry, length: int, unroll: bool):
    """``carry, ys = lax.scan(body, carry, None, length)``, with ``body(carry, None) -> (carry, y)``.

    ``unroll``: trace ``body`` ``length`` times as straight-line code (no loop in the
    program); else a rolled ``lax.scan``. ``ys`` stacks the per-step outputs on a leading
    axis of size ``length`` (``None`` leaves stay ``None``), as ``lax.scan`` does.
    """
    if not unroll:
        return jax.lax.scan(body, carry, None, length=length)
    outs = []
    for _ in range(length):
        carry, y = body(carry, None)
        outs.append(y)
    return carry, jax.tree_util.tree_map(lambda *ys: jnp.stack(ys), *outs)
