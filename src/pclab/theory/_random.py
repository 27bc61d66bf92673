"""Random draws that share compiled samplers across shapes.

Every new shape passed to ``jax.random.normal`` costs one XLA compilation of the sampler
(about 0.3–1 s on a 2-core CPU), which dominates small theory computations. :func:`normal_draw`
draws a vector of power-of-two length and reshapes its first entries, so all shapes with sizes in
one power-of-two bucket reuse one compiled sampler. Draws are deterministic in the key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def normal_draw(key: jax.Array, shape: tuple, dtype=None) -> Array:
    """N(0, 1) entries of ``shape`` (the first prod(shape) of a draw of length 2^⌈log2 prod(shape)⌉)."""
    size = int(np.prod(shape))
    bucket = 1 << max(size - 1, 1).bit_length()
    return jax.random.normal(key, (bucket,), dtype or jnp.result_type(float))[:size].reshape(tuple(shape))
