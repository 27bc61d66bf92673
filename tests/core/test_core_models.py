"""Convolutional and transformer PCNs: layers against reference computations written out
here, causal masking, exact inference of a linear conv PCN against a dense solve, the
λ → 0 limit PC → BP, parameterisation roles and bad input. float64; tolerances stated."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab.nn.ops import conv2d

F64 = jnp.float64


def _conv_ref(x, k, stride):
    """Zero-padded 'SAME' cross-correlation with explicit loops (NHWC images, OIHW kernels)."""
    x, k = np.moveaxis(np.asarray(x), 3, 1), np.asarray(k)
    b, c, h, w = x.shape
    m, _, kh, _ = k.shape
    p = (kh - 1) // 2
    ho = -(-h // stride)
    pad_total = max((ho - 1) * stride + kh - h, 0)
    lo = pad_total // 2
    xp = np.zeros((b, c, h + pad_total, w + pad_total))
    xp[:, :, lo:lo + h, lo:lo + w] = x
    out = np.zeros((b, m, ho, ho))
    for i in range(ho):
        for j in range(ho):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kh]
            out[:, :, i, j] = np.einsum("bcuv,mcuv->bm", patch, k)
    del p
    return np.moveaxis(out, 1, 3)


def _conv_model(act="tanh", param="mupc", blocks=2):
    return pclab.convnet(jax.random.PRNGKey(0), (8, 8, 2), 3, channels=(3, 4), blocks=blocks, act=act, param=param,
                         dtype=F64)


def _conv_batch():
    k = jax.random.split(jax.random.PRNGKey(1), 2)
    return jax.random.normal(k[0], (2, 8, 8, 2), F64), jax.nn.one_hot(jnp.array([0, 2]), 3, dtype=F64)


def _tf_model(pre_norm=True, param="mupc", blocks=2):
    return pclab.transformer(jax.random.PRNGKey(2), 7, d_model=8, heads=2, blocks=blocks, context=6,
                             pre_norm=pre_norm, param=param, dtype=F64)


def _tf_batch(t=6):
    k = jax.random.split(jax.random.PRNGKey(3), 2)
    return (jax.random.randint(k[0], (3, t), 0, 7),
            jax.nn.one_hot(jax.random.randint(k[1], (3, t), 0, 7), 7, dtype=F64))


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_matches_explicit_loops(stride):
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3), F64)
        k = jax.random.normal(jax.random.PRNGKey(1), (4, 3, 3, 3), F64)
        np.testing.assert_allclose(conv2d(x, k, stride), _conv_ref(x, k, stride), atol=1e-12)


def test_conv_pcn_forward_matches_reference():
    with jax.enable_x64(True):
        m, (x, _) = _conv_model(), _conv_batch()
        phi = np.tanh
        a_in, a_out = m.mult
        z = a_in * _conv_ref(x, m.stem, 1)
        for k in m.blocks[0]:
            z = z + m.mult_res[0] * _conv_ref(phi(z), k, 1)
        z = m.mult_down[0] * _conv_ref(phi(z), m.down[0], 2)
        for k in m.blocks[1]:
            z = z + m.mult_res[1] * _conv_ref(phi(z), k, 1)
        y_ref = a_out * phi(z).mean(axis=(1, 2)) @ np.asarray(m.w_out).T
        np.testing.assert_allclose(m(x), y_ref, atol=1e-12)
        np.testing.assert_allclose(m.activities(x)[1][-1], z, atol=1e-12)


def _attention_ref(m, blk, h):
    """One block written out per head and position with NumPy."""
    h = np.asarray(h)
    mult = dict(m.mult)

    def ln(v, g, b):
        mu = v.mean(-1, keepdims=True)
        return g * (v - mu) / np.sqrt(((v - mu) ** 2).mean(-1, keepdims=True) + 1e-5) + b

    g1, b1n = (np.asarray(a) for a in blk.ln1)
    hn = ln(h, g1, b1n) if m.pre_norm else h
    q, k, v = (mult["q"] * hn @ np.asarray(w).T for w in (blk.wq, blk.wk, blk.wv))
    b_, t, d = h.shape
    e = d // m.heads
    att = np.zeros_like(h)
    for b in range(b_):
        for hd in range(m.heads):
            sl = slice(hd * e, (hd + 1) * e)
            for i in range(t):
                logits = np.array([mult["logit"] * q[b, i, sl] @ k[b, j, sl] for j in range(i + 1)])
                p = np.exp(logits - logits.max())
                p /= p.sum()
                att[b, i, sl] = sum(p[j] * v[b, j, sl] for j in range(i + 1))
    u = h + mult["o"] * att @ np.asarray(blk.wo).T
    g2, b2n = (np.asarray(a) for a in blk.ln2)
    un = ln(u, g2, b2n) if m.pre_norm else u
    hid = np.asarray(jax.nn.gelu(mult["1"] * un @ np.asarray(blk.w1).T + np.asarray(blk.b1)))
    return u + mult["2"] * hid @ np.asarray(blk.w2).T + np.asarray(blk.b2)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_transformer_block_matches_reference(pre_norm):
    with jax.enable_x64(True):
        m, (x, _) = _tf_model(pre_norm), _tf_batch()
        z = m.activities(x)
        for k in range(m.n_blocks):
            np.testing.assert_allclose(z[k + 1], _attention_ref(m, m.block_params(k), z[k]), atol=1e-12)
        np.testing.assert_allclose(z[0], np.asarray(m.embed)[np.asarray(x)] + np.asarray(m.pos)[:6], atol=1e-14)


@pytest.mark.parametrize("which", ["conv", "transformer"])
def test_feedforward_activities_have_zero_errors_and_inject_sets_them(which):
    with jax.enable_x64(True):
        m, (x, _) = (_conv_model(), _conv_batch()) if which == "conv" else (_tf_model(), _tf_batch())
        z = m.activities(x)
        assert max(float(jnp.max(jnp.abs(e))) for e in jax.tree_util.tree_leaves(pclab.hidden_errors(m, z, x))) < 1e-12
        delta = jax.tree_util.tree_map(lambda a: 0.1 * jnp.cos(jnp.arange(a.size).reshape(a.shape)), z)
        got = pclab.hidden_errors(m, m.activities(x, delta), x)
        for g, d in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(delta)):
            np.testing.assert_allclose(g, d, atol=1e-12)


def test_causal_masking():
    """Changing token t leaves every activity and prediction at positions < t unchanged."""
    with jax.enable_x64(True):
        m, (x, _) = _tf_model(), _tf_batch()
        x2 = x.at[:, 4].set((x[:, 4] + 1) % 7)
        z, z2 = m.activities(x), m.activities(x2)
        np.testing.assert_array_equal(z[:, :, :4], z2[:, :, :4])
        assert float(jnp.max(jnp.abs(z[:, :, 4] - z2[:, :, 4]))) > 1e-3
        # predictions from activities that differ only at positions >= 4
        zp = z.at[:, :, 4:].add(1.0)
        np.testing.assert_allclose(m.predictions(zp, x)[:, :, :4], m.predictions(z, x)[:, :, :4], atol=1e-13)
        np.testing.assert_allclose(m.output(zp)[:, :4], m.output(z)[:, :4], atol=1e-13)


@eqx.filter_jit  # one compiled program: an eager Hessian of a conv PCN took 20 s, compiled 2 s
def _flat_quadratic_solve(m, x, y, spec):
    """Minimiser of the (quadratic) energy by a dense solve over all activities."""
    z0 = m.activities(x)
    flat, unravel = jax.flatten_util.ravel_pytree(z0)

    def total(v):
        return jnp.sum(pclab.example_energies(m, unravel(v), x, y, spec))

    h = jax.hessian(total)(jnp.zeros_like(flat))
    g0 = jax.grad(total)(jnp.zeros_like(flat))
    return unravel(jnp.linalg.solve(h, -g0))


@pytest.mark.parametrize("precision", [1.0, 0.3])
def test_linear_conv_pcn_exact_and_newton_equal_a_dense_solve(precision):
    import jax.flatten_util  # noqa: F401

    with jax.enable_x64(True):
        m, (x, y) = _conv_model(act="linear", blocks=1), _conv_batch()
        spec = pclab.EnergySpec("mse", precision)
        ref = _flat_quadratic_solve(m, x, y, spec)
        for solver in (pclab.ExactSolver(), pclab.NewtonSolver()):
            sol = pclab.infer(m, x, y, solver=solver, spec=spec, max_steps=1)
            for a, b in zip(jax.tree_util.tree_leaves(sol.z), jax.tree_util.tree_leaves(ref)):
                np.testing.assert_allclose(a, b, atol=1e-10)


def _relative_error(m, x, y, loss, lam):
    """‖∇_θF/λ − ∇_θL‖ / ‖∇_θL‖ at Newton-converged inference (one compiled program)."""

    @eqx.filter_jit
    def run(m, x, y):
        spec = pclab.EnergySpec(loss, lam)
        z = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), spec=spec, max_steps=30, atol=1e-13, throw=False).z
        pc = jax.tree_util.tree_leaves(pclab.pc_weight_grad(m, z, x, y, spec))
        bp = jax.tree_util.tree_leaves(pclab.bp_grad(m, x, y, spec))
        num = sum(jnp.sum((p / lam - b) ** 2) for p, b in zip(pc, bp))
        return jnp.sqrt(num / sum(jnp.sum(b**2) for b in bp))

    return float(run(m, x, y))


@pytest.mark.parametrize("which", ["dense", "conv", "transformer"])
def test_weak_precision_pc_gradient_tends_to_bp(which):
    """∇_θF/λ → ∇_θL as λ → 0, the error falling linearly in λ (< 10·λ; ratio < 0.2 per decade)."""
    with jax.enable_x64(True):
        if which == "dense":
            k = jax.random.split(jax.random.PRNGKey(4), 2)
            m = pclab.resnet(k[0], 5, 6, 5, 3, act="tanh", dtype=F64)
            x, y, loss = jax.random.normal(k[1], (4, 5), F64), jax.nn.one_hot(jnp.arange(4) % 3, 3, dtype=F64), "mse"
        elif which == "conv":
            (m, (x, y)), loss = (_conv_model(), _conv_batch()), "mse"
        else:
            (m, (x, y)), loss = (_tf_model(), _tf_batch()), "ce"
        errs = [_relative_error(m, x, y, loss, lam) for lam in (1e-2, 1e-3)]
        assert errs[0] < 10 * 1e-2 and errs[1] < 10 * 1e-3, errs
        assert errs[1] < 0.2 * errs[0], errs


def test_parameterisation_roles_give_the_documented_multipliers():
    shape_only = eqx.filter_eval_shape  # the multipliers are static: no weights need drawing
    conv = shape_only(pclab.convnet, jax.random.PRNGKey(0), (8, 8, 1), 10, channels=(4, 8), blocks=3, param="mupc")
    assert conv.mult == pytest.approx((1 / 3, 1 / 8))  # stem 1/√(1·9), readout 1/C
    assert conv.mult_res == pytest.approx((1 / math.sqrt(36 * 6), 1 / math.sqrt(72 * 6)))  # 1/√(C k² n_blocks)
    assert conv.mult_down == pytest.approx((1 / math.sqrt(36),))
    tf = dict(shape_only(pclab.transformer, jax.random.PRNGKey(0), 11, d_model=16, heads=4, blocks=8, context=4).mult)
    assert tf["o"] == pytest.approx(1 / (4 * 8)) and tf["2"] == pytest.approx(1 / (8 * 8))  # 1/(√fan_in · n_blocks)
    assert tf["logit"] == pytest.approx(1 / 4) and tf["out"] == pytest.approx(1 / 16) and tf["q"] == pytest.approx(1 / 4)
    sp = dict(shape_only(pclab.transformer, jax.random.PRNGKey(0), 11, d_model=16, heads=4, blocks=8, context=4,
                         param="sp").mult)
    assert sp["logit"] == pytest.approx(1 / 2) and sp["o"] == 1.0 and sp["out"] == 1.0
    # the dense table is the role rule applied to dense layers
    p = pclab.get_param("mupc")
    assert p.multiplier(pclab.ParamInfo(pclab.Role.RESIDUAL, 128, 16)) == pytest.approx(1 / math.sqrt(128 * 16))
    assert p.lr_scale(pclab.ParamInfo(pclab.Role.RESIDUAL, 128, 16)) == pytest.approx(1 / math.sqrt(128 * 16))


def test_lr_scales_apply_to_every_model():
    m = pclab.transformer(jax.random.PRNGKey(2), 7, d_model=8, heads=2, blocks=4, context=6)
    scales = pclab.learning.update_scales(pclab.get_param("mupc"), m)
    # W_o: residual, fan-in 8, 4 blocks, power 1: 1/(blocks·a·fan_in) = 1/(4·(1/(√8·4))·8) = 1/√8
    assert float(scales.blocks.wo) == pytest.approx(1 / math.sqrt(8))
    assert float(scales.embed) == 1.0 and float(scales.w_out) == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="divisible by 2"):
        pclab.convnet(jax.random.PRNGKey(0), (7, 7, 1), 3, channels=(2, 4))
    m = pclab.convnet(jax.random.PRNGKey(0), (8, 8, 1), 3, channels=(2, 4))
    with pytest.raises(ValueError, match=r"image shape \(6, 6, 1\)"):
        pclab.infer(m, jnp.ones((2, 6, 6, 1)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="4-d array"):
        pclab.infer(m, jnp.ones((2, 64)), jnp.ones((2, 3)))
    t = pclab.transformer(jax.random.PRNGKey(0), 7, d_model=8, heads=2, blocks=1, context=4)
    with pytest.raises(ValueError, match="context is 1..4"):
        pclab.infer(t, jnp.zeros((2, 5), jnp.int32), jnp.ones((2, 5, 7)))
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 7\)"):
        pclab.infer(t, jnp.full((2, 4), 9, jnp.int32), jnp.ones((2, 4, 7)))
    with pytest.raises(ValueError, match=r"y has shape \(2, 4, 5\)"):
        pclab.infer(t, jnp.zeros((2, 4), jnp.int32), jnp.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="integer token ids"):
        pclab.infer(t, jnp.zeros((2, 4)), jnp.ones((2, 4, 7)))
    with pytest.raises(ValueError, match="not divisible by heads"):
        pclab.transformer(jax.random.PRNGKey(0), 7, d_model=6, heads=4)
    with pytest.raises(ValueError, match="role="):
        pclab.ParamInfo("readout", 3)
    with pytest.raises(ValueError, match="supervised"):
        pclab.infer(m, jnp.ones((2, 8, 8, 1)), jnp.ones((2, 3)), solver=pclab.NewtonSolver(), mode="generative")
