"""The PC → BP width limit and the reach of inference for any PCN (pclab.theory.arch_limits).

float64 throughout. Tolerances: the exact-vs-Newton comparison is a linear solve (1e-9); the
width claims are the limits paper's (cos at converged inference rises with width, > 0.99 at the
largest μPC width), on a conv PCN small enough for the default suite.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab import theory as T
from pclab.theory.arch_limits import equilibrium_alignment, layer_reach, seed_mean, width_sweep

F64 = jnp.float64


def _dense_batch(d_in=6, d_out=3, b=12, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(b, d_in)), F64), jnp.asarray(rng.normal(size=(b, d_out)), F64)


def test_newton_on_a_linear_net_matches_the_closed_form_alignment():
    """A linear dense PCN: one Gauss–Newton step is the exact equilibrium, so the cosine equals
    pc_bp_alignment's closed form; per-layer cosines lie in [-1, 1] and the layers are 4."""
    with jax.enable_x64(True):
        x, y = _dense_batch()
        model = T.random_pcn(0, 6, 16, 4, 3, param="mupc", dtype=F64)
        got = equilibrium_alignment(model, x, y, solver=pclab.NewtonSolver(), max_steps=5, rtol=1e-12)
        ref = T.pc_bp_alignment(model, x, y, solver="exact")
        assert got.converged and got.residual_rel < 1e-9
        np.testing.assert_allclose(got.cosine, float(ref.cosine), rtol=0, atol=1e-9)
        assert len(got.per_layer) == 4 and all(-1 - 1e-12 <= c <= 1 + 1e-12 for c in got.per_layer)
        # the overall cosine of the concatenated gradients from the per-layer pieces
        pc, bp = np.asarray(got.layer_pc_norm), np.asarray(got.layer_bp_norm)
        recomposed = float(np.sum(np.asarray(got.per_layer) * pc * bp) / (got.pc_norm * got.bp_norm))
        np.testing.assert_allclose(recomposed, got.cosine, atol=1e-10)


def test_gd_reach_is_the_light_cone():
    """T GD steps from the feedforward pass move only the top T activities, so exactly the top
    T + 1 weight layers get a non-zero PC gradient (float64: no underflow); one Newton step
    reaches every layer."""
    with jax.enable_x64(True):
        x, y = _dense_batch()
        model = T.random_pcn(1, 6, 8, 6, 3, act="tanh", param="mupc", dtype=F64)
        probes = {f"GD T={t}": (pclab.GradientDescent(0.1), t) for t in (1, 2, 3)}
        probes["Newton"] = (pclab.NewtonSolver(), 1)
        rows = layer_reach(model, x, y, probes, precisions=(1.0,))
        reached = {r["inference"]: r["reached"] for r in rows}
        assert reached == {"GD T=1": 2, "GD T=2": 3, "GD T=3": 4, "Newton": 6}
        for r in rows[:3]:  # the unreached layers are the input side
            assert np.all(np.asarray(r["per_layer"])[: 6 - r["reached"]] == 0.0)


def _conv_make(param):
    def make(width, seed):
        return pclab.convnet(jax.random.PRNGKey(seed), (8, 8, 1), 4, channels=(width,), blocks=2, act="tanh",
                             param=param, dtype=F64)
    return make


def test_conv_pc_gradient_tends_to_bp_with_channels():
    """Limits paper, conv PCN with μPC: at converged inference the PC–BP cosine rises with the
    number of channels (4 → 64, factor 16) and exceeds 0.99 at 64."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(8, 8, 8, 1)), F64)
        y = jnp.asarray(np.eye(4)[rng.integers(0, 4, 8)], F64)
        widths = (4, 16, 64)
        rows = width_sweep(_conv_make("mupc"), x, y, widths, solver=pclab.NewtonSolver(), max_steps=50, rtol=1e-10)
        assert all(r["converged"] for r in rows), [(r["width"], r["residual_rel"]) for r in rows]
        cos = seed_mean(rows, "cosine", widths)
        assert np.all(np.diff(cos) > 0), cos
        assert cos[-1] > 0.99, cos
        assert seed_mean(rows, "per_layer", widths).shape == (3, len(rows[0]["per_layer"]))


def test_bad_input_is_named():
    with jax.enable_x64(True):
        x, y = _dense_batch()
        model = T.random_pcn(0, 6, 8, 3, 3, dtype=F64)
        with pytest.raises(ValueError, match="solver="):
            equilibrium_alignment(model, x, y, solver="newton")
        with pytest.raises(ValueError, match="seeds="):
            width_sweep(lambda w, s: model, x, y, (8,), seeds=0, solver=pclab.NewtonSolver())
        with pytest.raises(ValueError, match="widths="):
            width_sweep(lambda w, s: model, x, y, (), solver=pclab.NewtonSolver())
