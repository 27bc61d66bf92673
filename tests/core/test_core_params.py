"""Parameterisations: the μPC table, inits, and forward-pass stability with depth."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab


@pytest.mark.parametrize("d,n,l", [(784, 128, 8), (10, 64, 128), (3, 512, 16)])
def test_multipliers_match_table(d, n, l):
    mupc = pclab.get_param("mupc")
    m = mupc.multipliers(d, n, l, skips=True)
    assert (m.input, m.hidden, m.output) == pytest.approx((1 / math.sqrt(d), 1 / math.sqrt(n * l), 1 / n))
    assert mupc.multipliers(d, n, l, skips=False).hidden == pytest.approx(1 / math.sqrt(n))
    ntp = pclab.get_param("ntp").multipliers(d, n, l, skips=True)
    assert (ntp.input, ntp.hidden, ntp.output) == pytest.approx((1 / math.sqrt(d), 1 / math.sqrt(n * l), 1 / math.sqrt(n)))
    sp = pclab.get_param("sp").multipliers(d, n, l, skips=True)
    assert (sp.input, sp.hidden, sp.output) == (1.0, 1.0, 1.0)
    g = pclab.Parameterisation("mupc", gamma=4.0).multipliers(d, n, l, True)
    assert g.output == pytest.approx(1 / (4 * n))


def test_inits():
    key = jax.random.PRNGKey(0)
    sp = pclab.mlp(key, 400, 300, 3, 10, param="sp")
    bound = 1 / math.sqrt(400)
    assert float(jnp.max(jnp.abs(sp.w_in))) <= bound
    assert float(jnp.std(sp.w_in)) == pytest.approx(bound / math.sqrt(3), rel=0.02)  # U(±b) has std b/√3
    mu = pclab.resnet(key, 400, 300, 3, 10, param="mupc")
    assert float(jnp.std(mu.w_in)) == pytest.approx(1.0, rel=0.02)
    assert mu.w_hidden.shape == (1, 300, 300)


def test_unknown_param_lists_choices():
    with pytest.raises(ValueError, match="'sp', 'ntp', 'mup', 'mupc'"):
        pclab.get_param("mu-p")
    with pytest.raises(ValueError, match="gamma"):
        pclab.Parameterisation("mupc", gamma=-1.0)


def _layer_rms(model, x):
    z = model.activities(x)
    return np.asarray(jnp.sqrt(jnp.mean(z**2, axis=(1, 2))))


def test_mupc_forward_is_stable_with_depth_while_sp_is_not():
    """Under μPC the per-layer activity RMS stays O(1) from depth 8 to 128; under SP without
    skips (U(±1/√fan_in) init, tanh) it vanishes with depth."""
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 784))
    rms_mupc = {}
    for depth in (8, 32, 128):
        rms = _layer_rms(pclab.resnet(key, 784, 128, depth, 10, act="relu", param="mupc"), x)
        rms_mupc[depth] = rms
        assert np.all((rms > 0.2) & (rms < 5.0)), (depth, rms.min(), rms.max())
    # The last-layer RMS barely changes between depth 8 and 128.
    assert 0.5 < rms_mupc[128][-1] / rms_mupc[8][-1] < 2.0
    sp = _layer_rms(pclab.mlp(key, 784, 128, 128, 10, act="tanh", param="sp"), x)
    assert sp[-1] < 1e-3 * sp[0]
    # SP with skips explodes instead: the residual stream grows with depth.
    sp_skip = _layer_rms(pclab.resnet(key, 784, 128, 128, 10, act="relu", param="sp"), x)
    assert sp_skip[-1] > 100 * sp_skip[0]


def test_lr_scales():
    p = pclab.get_param("mupc")
    s = p.lr_scales(128, 16, skips=True)
    assert s.hidden == pytest.approx(1 / math.sqrt(128 * 16))
    assert pclab.get_param("sp").lr_scales(128, 16, True) == pclab.Multipliers(1.0, 1.0, 1.0)


def _hidden_changes(width: int, depth: int, eta: float = 1e-4) -> tuple[float, float]:
    """RMS change per unit η of the last hidden activity after one Adam-like step
    W_hidden ← W_hidden − η·s·sign(∇L) (Adam's first step is η·sign(g)), with s = the
    Depth-μP factor and with s = 1."""
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    m = pclab.resnet(k[0], 16, width, depth, 4, act="relu", param="mupc", dtype=jnp.float64)
    x, y = jax.random.normal(k[1], (32, 16), jnp.float64), jax.random.normal(k[2], (32, 4), jnp.float64)
    direction = jnp.sign(eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(jnp.sum((m(x) - y) ** 2, -1))))(m).w_hidden)
    last = eqx.filter_jit(lambda m: m.activities(x)[-1])
    h = last(m)

    def change(s):
        stepped = eqx.tree_at(lambda m: m.w_hidden, m, m.w_hidden - eta * s * direction)
        return float(jnp.sqrt(jnp.mean((last(stepped) - h) ** 2)) / eta)

    return change(pclab.get_param("mupc").lr_scales(width, depth, skips=True).hidden), change(1.0)


def test_depth_mup_lr_scales_make_the_feature_update_width_and_depth_free():
    """Depth-μP's hidden factor 1/√(N·L) makes one Adam step move the residual stream by Θ(η),
    whatever N and L; unscaled, the move grows like √(N·L) (float64, linear regime η = 1e-4).
    Measured: scaled 0.23–0.32 over N ∈ {64, 256} × L ∈ {8, 32}; unscaled 5.6 → 27."""
    with jax.enable_x64(True):
        scaled, unscaled = zip(*(_hidden_changes(n, d) for n, d in [(64, 8), (256, 8), (64, 32), (256, 32)]))
    assert max(scaled) / min(scaled) < 2.0
    assert unscaled[-1] / unscaled[0] > 0.6 * math.sqrt(256 * 32 / (64 * 8))  # √(NL) grows 4×
    assert unscaled[1] / unscaled[0] > 1.5 and unscaled[2] / unscaled[0] > 1.5  # in width and in depth
