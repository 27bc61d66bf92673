"""Linear convolutional networks (arXiv 2507.06367): the end-to-end filter against explicit strided
convolutions, conserved invariants, the metric K = DμDμᵀ on fibres of (v, δ), and parameter- vs
function-space gradient flow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import convolve2d

from pclab.theory import lcn as LCN
from pclab.theory import lcn_flow as LF


def _filters(shapes, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(scale * rng.standard_normal(sh) / np.sqrt(np.prod(sh))) for sh in shapes]


class Quadratic:
    def __init__(self, target):
        self.target = jnp.asarray(target)

    def __call__(self, v):
        return 0.5 * jnp.sum((v - self.target) ** 2)


@pytest.mark.parametrize("shapes, strides, n", [(((2,), (3,)), (1, 1), 50), (((3,), (2,), (2,)), (2, 3, 1), 80),
                                                (((2, 3), (3, 2), (2, 2)), (2, 2, 3), 31)])
def test_end_to_end_filter_is_the_composition_of_strided_correlations(shapes, strides, n):
    ws = _filters(shapes)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((n,) * len(shapes[0])))
    y = x
    for w, s in zip(ws, strides):
        y = LCN.strided_conv(y, w, s)
    v = LCN.end_to_end_filter(ws, strides)
    z = LCN.strided_conv(x, v, int(np.prod(strides)))
    assert y.shape == z.shape
    np.testing.assert_allclose(y, z, atol=1e-12)
    if len(shapes[0]) == 1:  # strided_conv is the valid cross-correlation y[i] = sum_j w[j] x[s i + j]
        x1, w1, s = np.asarray(x), np.asarray(ws[0]), strides[0]
        ref = [x1[s * i: s * i + len(w1)] @ w1 for i in range((n - len(w1)) // s + 1)]
        np.testing.assert_allclose(LCN.strided_conv(x, ws[0], s), ref, atol=1e-12)


def test_polynomial_product_convention():
    p, q = np.array([1.0, 2.0, -1.0]), np.array([0.5, 3.0])
    np.testing.assert_allclose(LCN.polymul(jnp.asarray(p), jnp.asarray(q)), np.convolve(p, q), atol=1e-14)
    # π(w1)(t) π(w2)(t^2): lowest power first
    np.testing.assert_allclose(LCN.end_to_end_filter([jnp.asarray(p), jnp.asarray(q)], (2, 1)),
                               np.polynomial.polynomial.polymul(p, [0.5, 0.0, 3.0]), atol=1e-14)
    A, B = np.random.default_rng(0).standard_normal((2, 3)), np.random.default_rng(1).standard_normal((3, 2))
    np.testing.assert_allclose(LCN.polymul(jnp.asarray(A), jnp.asarray(B)), convolve2d(A, B), atol=1e-12)


def test_invariants_conserved_and_rk4_drift_shrinks_with_the_step():
    ws, strides = _filters(((3,), (2,), (2,)), seed=2), (2, 2, 1)
    loss = Quadratic(np.random.default_rng(3).standard_normal(9))
    ts = np.linspace(0.0, 1.5, 7)
    adaptive = LF.parameter_flow(loss, ws, strides, ts, rtol=1e-10, atol=1e-12)
    assert float(adaptive.loss[-1]) < 0.5 * float(adaptive.loss[0])
    assert float(jnp.max(jnp.abs(adaptive.invariants - adaptive.invariants[0]))) < 1e-7
    drift = [float(jnp.max(jnp.abs(f.invariants - f.invariants[0]))) for f in
             (LF.parameter_flow(loss, ws, strides, ts, adaptive=False, dt0=dt) for dt in (0.05, 0.025))]
    assert drift[1] < drift[0] / 8  # RK4: error ~ dt^4 (measured ratio ~ 16)
    with pytest.raises(ValueError, match="increasing"):
        LF.parameter_flow(loss, ws, strides, [0.0, 0.0])


def test_stride_one_counterexample_same_v_and_delta_different_K():
    for a, b in ((0.5, -1.5), (2.0, 0.3)):
        w, w2 = LCN.swapped_factors(a, b)
        np.testing.assert_allclose(LCN.end_to_end_filter(w, (1, 1)), LCN.end_to_end_filter(w2, (1, 1)), atol=1e-14)
        np.testing.assert_allclose(LCN.invariants(w), LCN.invariants(w2), atol=1e-14)
        assert float(jnp.linalg.norm(LCN.metric(w, (1, 1)) - LCN.metric(w2, (1, 1)))) > 0.1
    # the same swap in 2-D at stride 1 when both filters have one shape (a finding, see lcn.py)
    w1, w2 = _filters(((2, 2), (2, 2)), seed=4)
    c = jnp.linalg.norm(w1) / jnp.linalg.norm(w2)
    sw = [c * w2, w1 / c]
    np.testing.assert_allclose(LCN.end_to_end_filter(sw, (1, 1)), LCN.end_to_end_filter([w1, w2], (1, 1)), atol=1e-14)
    np.testing.assert_allclose(LCN.invariants(sw), LCN.invariants([w1, w2]), atol=1e-14)
    assert float(jnp.linalg.norm(LCN.metric(sw, (1, 1)) - LCN.metric([w1, w2], (1, 1)))) > 1e-3


@pytest.mark.parametrize("shapes, strides, same", [(((2,), (2,)), (2, 1), True), (((3,), (2,), (2,)), (2, 3, 1), True),
                                                   (((2, 2), (2, 3)), (1, 1), True), (((2,), (2,)), (1, 1), False)])
def test_metric_on_fibres_from_random_restarts(shapes, strides, same):
    res, dk = LCN.fibre_metrics(_filters(shapes, seed=5, scale=2.0), strides, jax.random.PRNGKey(0), restarts=12)
    ok = np.asarray(res) < 1e-10
    assert ok.sum() >= 2
    if same:
        assert float(np.max(np.asarray(dk)[ok])) < 1e-8
    else:  # stride 1 in 1-D: restarts land on both factorisations
        assert float(np.max(np.asarray(dk)[ok])) > 1e-3


@pytest.mark.parametrize("shapes, strides", [(((2, 2), (3, 3)), (1, 1))])  # 1-D: tests/experiments (lcn-flow)
def test_parameter_and_function_space_flows_agree(shapes, strides):
    ws = _filters(shapes, seed=6)
    v0 = LCN.end_to_end_filter(ws, strides)
    loss = Quadratic(np.random.default_rng(7).standard_normal(v0.shape))
    ts = np.linspace(0.0, 1.0, 5)
    p = LF.parameter_flow(loss, ws, strides, ts, rtol=1e-10, atol=1e-12)
    f = LF.function_space_flow(loss, ws, strides, ts, rtol=1e-10, atol=1e-12)
    assert float(jnp.max(jnp.abs(p.v - f.v))) < 1e-7
    assert float(jnp.max(jnp.abs(p.v[-1] - p.v[0]))) > 0.1  # it moved
    np.testing.assert_allclose(f.invariants, np.broadcast_to(p.invariants[0], f.invariants.shape), atol=1e-10)
    # v̇ = Dμ ẇ = −K ∇ℓ at the start
    sizes = np.cumsum([0] + [int(np.prod(sh)) for sh in shapes])
    unravel = lambda th: [th[a:b].reshape(sh) for a, b, sh in zip(sizes[:-1], sizes[1:], shapes)]  # noqa: E731
    flat = jnp.concatenate([w.ravel() for w in ws])
    grad_w = jax.grad(lambda th: loss(LCN.end_to_end_filter(unravel(th), strides)))(flat)
    np.testing.assert_allclose(LCN.jacobian(ws, strides) @ -grad_w,
                               -LCN.metric(ws, strides) @ jax.grad(loss)(v0).ravel(), atol=1e-12)


def test_bad_filters_and_strides_name_the_argument():
    with pytest.raises(ValueError, match=r"filters\[1\] is 2-d but filters\[0\] is 1-d"):
        LCN.end_to_end_filter([jnp.ones(2), jnp.ones((2, 2))], (1, 1))
    with pytest.raises(ValueError, match="one per layer"):
        LCN.end_to_end_filter([jnp.ones(2), jnp.ones(2)], (1,))
    with pytest.raises(ValueError, match=r"strides\[1\]=0"):
        LCN.metric([jnp.ones(2), jnp.ones(2)], (1, 0))
    with pytest.raises(ValueError, match="non-empty list"):
        LCN.invariants(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match=r"filters\[0\] has shape \(2, 2, 2\); expected a 1-d"):
        LCN.end_to_end_filter([jnp.ones((2, 2, 2))], (1,))
