"""The small data and layer shapes shared by the saddle tests (science.md §2): D = 2 inputs,
N = 3 hidden units, O = 2 outputs, B = 8 examples; y is offset from 0 so that Σ_yy is full rank."""

import jax.numpy as jnp
import numpy as np

D, N, O, B = 2, 3, 2, 8


def saddle_data(seed=0):
    """(x (B, D), y (B, O)) in float64."""
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((B, D))), jnp.asarray(1.0 + rng.standard_normal((B, O)))


def layer_shapes(hidden):
    """Weight shapes [(N, D), (N, N) × (hidden − 1), (O, N)] of a net with ``hidden`` hidden layers."""
    return [(N, D)] + [(N, N)] * (hidden - 1) + [(O, N)]
