"""Science.md §2, Theorem 3: more zero-rank saddle families, strict for F* and degenerate for the MSE.

Every Hessian here is ``jax.hessian`` of the closed-form F* (or of the MSE) on the flattened
weights, in float64, compared with the closed form of :mod:`pclab.theory.saddle_families`.
Tolerances: Hessian entries agree to 1e-11 (rounding is ~1e-15 at these sizes), "zero" means
|entry| < 1e-12, and "strict" means λ_min < −tol with saddle_report's tol = √eps·scale ≈ 1.5e-8·scale.
Shapes stay few (compilations dominate the cost): D = 2, N = 3, O = 2, H = 2..4 hidden layers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T
from pclab.theory import saddle_families as SF

from saddle_data import B, D, N, O
from saddle_data import layer_shapes as _shapes
from saddle_data import saddle_data as _data


def _top(m):
    return float(np.linalg.eigvalsh(np.asarray(m))[-1])


def _check_family(w, x, y, lam_min, precision=1.0):
    """Autodiff = closed form; critical for both; strict for F* at lam_min; MSE Hessian exactly 0."""
    closed = SF.output_zero_derivatives(w, x, y, precision)
    hf, hl = T.energy_hessian(w, x, y, precision), T.loss_hessian(w, x, y)
    np.testing.assert_allclose(hf, closed["energy_hessian"], atol=1e-11)
    np.testing.assert_allclose(hl, closed["loss_hessian"], atol=1e-11)
    assert np.abs(np.asarray(hl)).max() < 1e-12  # degenerate: the whole MSE Hessian vanishes
    rep = T.saddle_report(w, x, y, precision=precision)
    assert rep.energy_grad_norm < 1e-12 and rep.loss_grad_norm < 1e-12
    np.testing.assert_allclose(rep.energy_lambda_min, lam_min, rtol=1e-10)
    np.testing.assert_allclose(SF.output_zero_lambda_min(w, y, precision), lam_min, rtol=1e-10)
    assert rep.kind("energy") == "strict saddle" and rep.kind("loss") == "degenerate"
    assert SF.loss_cross_blocks_vanish(w, x, y, atol=1e-12)
    return rep


@pytest.mark.parametrize("precision", [1.0, 0.6])
def test_orthogonal_pair_w2_a_w3_c_with_ca_zero(precision):
    """H = 3: W_2 = A, W_3 = C, CA = 0, W_1 = W_4 = 0. λ_min(∇²F*) = −λ²λ_max(Σ_yy)(1 + σ_max(C)²)."""
    x, y = _data()
    w = SF.zero_rank_family("orthogonal-pair", _shapes(3), 1)
    a, c = w[1], w[2]
    assert float(jnp.abs(c @ a).max()) < 1e-12 and float(jnp.abs(a).max()) > 0.1 and float(jnp.abs(c).max()) > 0.1
    sigma_c = float(np.linalg.norm(np.asarray(c), 2))
    expect = -(precision**2) * _top(y.T @ y / B) * (1 + sigma_c**2)
    _check_family(w, x, y, expect, precision)


def test_orthogonal_pair_needs_ca_zero():
    """The same point with CA != 0: the MSE gets the cross block −CA ⊗ Σ_yx with W_1 and the
    point is a strict saddle of both objectives."""
    x, y = _data()
    w = SF.zero_rank_family("orthogonal-pair", _shapes(3), 1)
    w[2] = w[2] + jnp.asarray(np.random.default_rng(9).standard_normal(w[2].shape))
    assert float(jnp.abs(w[2] @ w[1]).max()) > 0.1
    closed = SF.output_zero_derivatives(w, x, y)
    np.testing.assert_allclose(T.loss_hessian(w, x, y), closed["loss_hessian"], atol=1e-11)
    rep = T.saddle_report(w, x, y)
    assert rep.kind("loss") == "strict saddle" and rep.kind("energy") == "strict saddle"
    assert not SF.loss_cross_blocks_vanish(w, x, y, atol=1e-6)


def test_first_layer_family():
    """W_1 = A only. H = 3: degenerate for the MSE, strict for F* with λ_min = −λ_max(Σ_yy)
    whatever A is (M = I). H = 2: the MSE cross block −Σ_yx Aᵀ between W_3 and W_2 makes it
    strict for both."""
    x, y = _data(1)
    w = SF.zero_rank_family("first", _shapes(3), 2)
    _check_family(w, x, y, -_top(y.T @ y / B))
    w_big = [10.0 * w[0]] + w[1:]
    np.testing.assert_allclose(T.saddle_report(w_big, x, y).energy_lambda_min, -_top(y.T @ y / B), rtol=1e-10)
    w2 = SF.zero_rank_family("first", _shapes(2), 2)
    np.testing.assert_allclose(T.loss_hessian(w2, x, y), SF.output_zero_derivatives(w2, x, y)["loss_hessian"],
                               atol=1e-11)
    rep2 = T.saddle_report(w2, x, y)
    assert rep2.kind("loss") == "strict saddle" and rep2.kind("energy") == "strict saddle"


@pytest.mark.parametrize("zero", [(0, 1), (0, 2), (1, 2)])
def test_three_zero_layers_with_random_others(zero):
    """H = 4 (L = 5): W_5 and two more layers zero, the rest random. λ_min = −λ_max(Σ_yy)λ_max(M),
    M = Σ_l K_l K_lᵀ (K_l = W_{L−1}⋯W_{l+1}) built by hand here."""
    x, y = _data(2)
    w = SF.zero_rank_family("three-zeros", _shapes(4), 3, zero=zero)
    ws = [np.asarray(v) for v in w]
    m = np.zeros((N, N))
    for l in range(len(ws) - 1):  # K for 0-based layer l: ws[L-2] ... ws[l+1]
        k = np.eye(ws[l].shape[0])
        for v in ws[l + 1:len(ws) - 1]:
            k = v @ k
        m += k @ k.T
    np.testing.assert_allclose(SF.output_zero_terms(w)["M"], m, atol=1e-12)
    _check_family(w, x, y, -_top(y.T @ y / B) * _top(m))


def test_escape_direction_is_flat_for_the_loss():
    """Along F*'s negative-curvature eigenvector v (it lies in W_L) the MSE is exactly constant and
    F* falls like ½ε²λ_min; along a random direction u the MSE moves only at third order."""
    x, y = _data()
    w = SF.zero_rank_family("orthogonal-pair", _shapes(3), 1)
    theta = T.flatten_weights(w)
    shapes = [tuple(v.shape) for v in w]
    ev, vecs = np.linalg.eigh(np.asarray(T.energy_hessian(w, x, y)))
    v = jnp.asarray(vecs[:, 0])
    last = T.layer_slices(w)[-1]
    assert float(jnp.linalg.norm(v[last])) == pytest.approx(1.0, abs=1e-12)  # v lives in W_L
    f = lambda th: float(T.equilibrated_energy(T.unflatten_weights(th, shapes), x, y))  # noqa: E731
    loss = lambda th: float(T.linear_loss(T.unflatten_weights(th, shapes), x, y))  # noqa: E731
    f0, l0 = f(theta), loss(theta)
    for eps in (1e-1, 1e-3):
        assert loss(theta + eps * v) == l0  # the product W_{L:1} stays 0: exactly flat
        np.testing.assert_allclose(f(theta + eps * v) - f0, 0.5 * eps**2 * ev[0], rtol=max(10 * eps**2, 1e-6))
    u = jnp.asarray(np.random.default_rng(5).standard_normal(theta.shape))
    u = u / jnp.linalg.norm(u)
    d1, d2 = loss(theta + 1e-2 * u) - l0, loss(theta + 1e-3 * u) - l0
    assert abs(d1) > 0  # the loss does move along u ...
    assert 300 < d1 / d2 < 3000  # ... at third order (a factor 10 in ε gives ~1000)
    assert abs(d2) / 1e-6 < 1e-2  # so |ΔL|/ε² → 0: flat to second order


def test_closed_form_against_the_numerically_equilibrated_energy():
    """Not through Theorem 1: the activity equilibrium z* by a dense solve, then the Hessian of
    F*(θ) = min_z F(θ, z) by the envelope/Schur formula F_θθ − F_θz F_zz⁻¹ F_zθ at (θ, z*), from
    jax.hessian of the energy F in (θ, z) jointly. The same Hessian at the orthogonal-pair saddle."""
    x, y = _data(3)
    w = SF.zero_rank_family("orthogonal-pair", _shapes(3), 4)
    shapes = [tuple(v.shape) for v in w]
    theta = T.flatten_weights(w)
    z = jnp.concatenate([v.reshape(-1) for v in T.dense_equilibrium_activities(w, x, y)])
    z_shapes = [(B, s[0]) for s in shapes[:-1]]
    p = theta.shape[0]

    def energy(u):
        return T.linear_energy(T.unflatten_weights(u[:p], shapes), T.unflatten_weights(u[p:], z_shapes), x, y)

    h = jax.jit(jax.hessian(energy))(jnp.concatenate([theta, z]))
    h_tt, h_tz, h_zz = h[:p, :p], h[:p, p:], h[p:, p:]
    h_star = h_tt - h_tz @ jnp.linalg.solve(h_zz, h_tz.T)
    np.testing.assert_allclose(h_star, SF.output_zero_derivatives(w, x, y)["energy_hessian"], atol=1e-10)


def test_nonzero_output_layer_is_not_a_saddle_of_the_energy():
    """W_4 = C, W_3 = A, CA = 0, W_1 = W_2 = 0: a zero-Hessian critical point of the MSE, but not
    critical for F* (S = I + CCᵀ depends on W_L at first order): the families need W_L = 0."""
    x, y = _data()
    a, c = SF.orthogonal_pair(6, (N, N), (O, N))
    w = [jnp.zeros((N, D)), jnp.zeros((N, N)), a, c]
    rep = T.saddle_report(w, x, y)
    assert rep.kind("loss") == "degenerate" and np.abs(np.asarray(T.loss_hessian(w, x, y))).max() < 1e-12
    assert rep.kind("energy") == "not critical" and rep.energy_grad_norm > 1e-2


def test_matches_the_origin_and_penultimate_closed_forms():
    x, y = _data(4)
    for hidden, a in ((2, None), (3, jnp.asarray(np.random.default_rng(1).standard_normal((N, N))))):
        shapes = _shapes(hidden)
        w = T.zero_rank_point(shapes, a)
        hf, hl = T.predicted_hessians(shapes, x, y, a, precision=0.6)
        closed = SF.output_zero_derivatives(w, x, y, 0.6)
        np.testing.assert_allclose(closed["energy_hessian"], hf, atol=1e-12)
        np.testing.assert_allclose(closed["loss_hessian"], hl, atol=1e-12)


def test_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="family='nope' is not valid"):
        SF.zero_rank_family("nope", _shapes(3), 0)
    with pytest.raises(ValueError, match="needs L >= 4"):
        SF.zero_rank_family("orthogonal-pair", _shapes(2), 0)
    with pytest.raises(ValueError, match="needs W_L = 0"):
        SF.output_zero_derivatives([jnp.ones(s) for s in _shapes(2)], x, y)
    with pytest.raises(ValueError, match="rank-deficient"):
        SF.orthogonal_pair(0, (N, N), (O, N), rank=N)
