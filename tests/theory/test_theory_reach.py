"""How far inference carries the output error down a deep PCN before the weight update.

From the feedforward pass every prediction error is zero. One GD step on the activities moves
only z_{L−1}; step t moves z_{L−t}. So after T steps only the top T hidden weights (and W_L)
have a nonzero PC gradient, and W_1 has one only once T ≥ L − 1: an exact light cone. One
Gauss–Newton step in the errors reaches every layer, and at a weak output precision λ its
gradient is aligned with BP's layer by layer.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab import theory as T

D, N, L, O, B = 6, 8, 10, 3, 12


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.standard_normal((B, D))), jnp.asarray(rng.standard_normal((B, O)))
    return T.random_pcn(1, D, N, L, O, act="tanh", param="mupc", skips=True, dtype=jnp.float64), x, y


@pytest.mark.parametrize("steps", [1, 3, L - 2, L - 1])
def test_gd_inference_reaches_one_layer_per_step(problem, steps):
    model, x, y = problem
    a = T.pc_bp_alignment(model, x, y, solver=pclab.GradientDescent(0.2), max_steps=steps, rtol=0.0)
    per_layer = np.asarray(a.per_layer)  # W_1 .. W_L
    assert per_layer.shape == (L,) and a.infer_steps == steps
    reached = per_layer != 0.0
    # W_L and the top `steps` hidden weights, W_{L-steps}..W_{L-1}; W_1 once steps >= L - 1
    expect = np.arange(1, L + 1) >= L - steps
    np.testing.assert_array_equal(reached, expect)


def test_one_newton_step_reaches_every_layer_aligned_with_bp(problem):
    model, x, y = problem
    gap = {}
    for lam in (1.0, 1e-2, 1e-4):
        a = T.pc_bp_alignment(model, x, y, solver=pclab.NewtonSolver(), spec=pclab.EnergySpec(precision=lam),
                              max_steps=1, rtol=0.0)
        assert all(c != 0.0 for c in a.per_layer)
        gap[lam] = 1 - min(a.per_layer)
    # small-error limit: the worst layer's 1 - cos shrinks with λ (measured 0.51, 2.4e-3, 2.6e-7)
    assert gap[1.0] > 0.1 and gap[1e-2] < 1e-2 and gap[1e-4] < 1e-6
    gd = T.pc_bp_alignment(model, x, y, solver=pclab.GradientDescent(0.2), max_steps=1, rtol=0.0,
                           spec=pclab.EnergySpec(precision=1e-4))
    assert sum(c != 0.0 for c in gd.per_layer) == 2  # while one GD step reaches W_{L-1} and W_L only


def test_cosine_of_a_zero_gradient_is_zero():
    a = {"w": jnp.zeros((2, 3))}
    b = {"w": jnp.ones((2, 3))}
    assert float(T.cosine_similarity(a, b)) == 0.0
    assert float(T.cosine_similarity(b, b)) == pytest.approx(1.0, abs=1e-15)


def test_cosine_stays_in_its_range_under_float32_rounding():
    """Parallel float32 vectors can give ⟨a,b⟩/(‖a‖‖b‖) = 1 + 1e-7 unclipped; it is clipped
    to [−1, 1] and still exact up to rounding for (anti)parallel inputs."""
    v = jax.random.normal(jax.random.key(3), (3, 1000)) * jnp.array([[1e-3], [1.0], [7.0]])
    v = v.astype(jnp.float32)
    for i in range(3):
        c = T.cosine_similarity(v[i], 3.1 * v[i])
        assert c.dtype == jnp.float32 and -1.0 <= float(c) <= 1.0 and float(c) == pytest.approx(1.0, abs=1e-6)
        assert -1.0 <= float(T.cosine_similarity(v[i], -v[i])) <= -1.0 + 1e-6
