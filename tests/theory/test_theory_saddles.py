"""Science.md §2: the origin and zero-rank saddles are strict for F* and non-strict for the MSE."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T

from saddle_data import B, D, N, O
from saddle_data import layer_shapes as _shapes
from saddle_data import saddle_data as _data


def _sigma_yy_max(y):
    return float(np.linalg.eigvalsh(np.asarray(y).T @ np.asarray(y) / y.shape[0])[-1])


@pytest.mark.parametrize("hidden", [2, 3])
def test_origin_strict_for_energy_flat_for_loss(hidden):
    x, y = _data()
    w = T.zero_rank_point(_shapes(hidden))
    rep = T.saddle_report(w, x, y)
    np.testing.assert_allclose(rep.energy_lambda_min, -_sigma_yy_max(y), rtol=1e-10)
    np.testing.assert_allclose(T.predicted_lambda_min(y), -_sigma_yy_max(y), rtol=1e-12)
    assert np.abs(np.asarray(T.loss_hessian(w, x, y))).max() < 1e-12
    assert rep.energy_grad_norm < 1e-12 and rep.loss_grad_norm < 1e-12
    assert rep.kind("energy") == "strict saddle" and rep.energy_strict_saddle
    assert rep.kind("loss") == "degenerate" and not rep.loss_strict_saddle


def test_origin_one_hidden_layer_cross_block():
    x, y = _data(1)
    shapes = _shapes(1)
    w = T.zero_rank_point(shapes)
    h = np.asarray(T.energy_hessian(w, x, y))
    s_yy, s_yx = np.asarray(y.T @ y / B), np.asarray(y.T @ x / B)
    # W_2 diagonal block −Σ_yy ⊗ I; W_1 block 0; cross block −Σ_yx[o, d] δ[n, m].
    np.testing.assert_allclose(h[6:, 6:], -np.kron(s_yy, np.eye(N)), atol=1e-12)
    np.testing.assert_allclose(h[:6, :6], 0.0, atol=1e-12)
    cross = -np.einsum("od,nm->onmd", s_yx, np.eye(N)).reshape(O * N, N * D)
    np.testing.assert_allclose(h[6:, :6], cross, atol=1e-12)
    np.testing.assert_allclose(np.asarray(T.loss_hessian(w, x, y))[6:, :6], cross, atol=1e-12)
    rep = T.saddle_report(w, x, y)
    assert rep.energy_strict_saddle and rep.loss_strict_saddle  # one hidden layer: strict for both
    assert rep.energy_lambda_min < -_sigma_yy_max(y) - 1e-3  # the cross block pushes λ_min below −λ_max(Σ_yy)


@pytest.mark.parametrize("hidden", [3])
def test_zero_rank_saddle(hidden):
    x, y = _data(2)
    a = jnp.asarray(np.random.default_rng(7).standard_normal((N, N)))
    w = T.zero_rank_point(_shapes(hidden), a)
    rep = T.saddle_report(w, x, y)
    expect = -_sigma_yy_max(y) * (1.0 + float(np.linalg.norm(np.asarray(a), 2)) ** 2)
    np.testing.assert_allclose(rep.energy_lambda_min, expect, rtol=1e-10)
    np.testing.assert_allclose(T.predicted_lambda_min(y, a), expect, rtol=1e-12)
    assert np.abs(np.asarray(T.loss_hessian(w, x, y))).max() < 1e-12
    assert rep.energy_strict_saddle and rep.kind("loss") == "degenerate"


@pytest.mark.parametrize("hidden, with_a", [(1, False), (2, False), (2, True), (3, True)])
@pytest.mark.parametrize("lam", [1.0, 0.6])
def test_predicted_hessians_equal_autodiff(hidden, with_a, lam):
    x, y = _data(3)
    a = jnp.asarray(np.random.default_rng(8).standard_normal((N, N))) if with_a else None
    shapes = _shapes(hidden)
    w = T.zero_rank_point(shapes, a)
    hf, hl = T.predicted_hessians(shapes, x, y, a, precision=lam)
    np.testing.assert_allclose(T.energy_hessian(w, x, y, lam), hf, atol=1e-11)
    np.testing.assert_allclose(T.loss_hessian(w, x, y), hl, atol=1e-11)


def test_generic_point_is_not_critical_and_tolerances_are_honest():
    x, y = _data(4)
    rng = np.random.default_rng(9)
    w = [jnp.asarray(0.5 * rng.standard_normal(s)) for s in _shapes(2)]
    rep = T.saddle_report(w, x, y)
    assert rep.kind("energy") == "not critical" and rep.kind("loss") == "not critical"
    assert 0 < rep.tol < 1e-6 and 0 < rep.grad_tol < 1e-6
    # Nudging the origin off criticality is detected.
    w0 = T.zero_rank_point(_shapes(2))
    w0[-1] = w0[-1] + 1e-3
    assert T.saddle_report(w0, x, y).kind("energy") == "not critical"
    # float32: the default tolerance widens with eps.
    with jax.enable_x64(False):
        x32, y32 = (jnp.asarray(np.asarray(v), jnp.float32) for v in (x, y))
        rep32 = T.saddle_report([jnp.zeros(s, jnp.float32) for s in _shapes(2)], x32, y32)
    assert rep32.tol > 1e-4 and rep32.energy_strict_saddle
