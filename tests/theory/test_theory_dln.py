"""Deep linear landscape (arXiv 2107.13289): critical points, their values and their kind, float64.

Data: X (4, 16) with XXᵀ = I and Y with Σ eigenvalues (9, 4, 1) and noise 0.5, so tr(YYᵀ) = 14.5
and the critical values are 14.5 − Σ_{i∈S} λ_i exactly.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T
from pclab.theory import dln

LAM, NOISE = (9.0, 4.0, 1.0), 0.5
TRACE = sum(LAM) + NOISE


@pytest.fixture(scope="module")
def data():
    with jax.enable_x64(True):
        return T.planted_data(jax.random.PRNGKey(0), 4, 3, 16, LAM, noise=NOISE)


def _widths(H, n=3):
    return (n,) * (H - 1)


def test_critical_values_enumerate_every_subset(data):
    X, Y = data
    vals = T.critical_values(X, Y, (3, 3))
    expected = {frozenset(s) for k in range(4) for s in itertools.combinations(range(3), k)}
    assert set(vals) == expected
    for S, v in vals.items():
        assert abs(v - (TRACE - sum(LAM[i] for i in S))) <= 1e-10 * TRACE
    narrow = T.critical_values(X, Y, (3, 2))            # r_max = 2: no |S| = 3
    assert max(len(S) for S in narrow) == 2 and min(narrow, key=narrow.get) == frozenset({0, 1})


@pytest.mark.parametrize("H, construction", [(2, {}), (2, {"balanced": True}), (3, {}), (3, {"balanced": True}),
                                             (3, {"extra_rank": (1, 0)}), (3, {"extra_rank": (0, 1)}),
                                             (4, {"extra_rank": (1, 1)})])
def test_constructed_points_are_critical_with_the_predicted_value(data, H, construction):
    X, Y = data
    vals = T.critical_values(X, Y, _widths(H))
    spec = T.dln_spectrum(X, Y)
    for S, v in vals.items():
        if construction.get("extra_rank") and len(S) + 1 > 3:
            continue
        w = T.critical_point(X, Y, _widths(H), S, jax.random.PRNGKey(len(S)), **construction)
        grad = np.linalg.norm(np.asarray(T.dln_gradient(w, X, Y)))
        c = T.dln_classify(w, X, Y)
        assert grad <= 1e-10 * c.grad_scale and c.grad_norm <= 1e-10 * c.grad_scale
        assert abs(float(T.dln_loss(w, X, Y)) - v) <= 1e-10 * TRACE
        assert c.subset == S and c.subset_residual <= 1e-10
        U = spec.eigenvectors[:, sorted(S)]
        P = np.asarray(T.partial_product(w, 1, H))
        np.testing.assert_allclose(P, U @ U.T @ spec.A, atol=1e-10 * np.linalg.norm(spec.A))
        if construction.get("balanced"):
            for h in range(H - 1):
                gap = np.asarray(w[h + 1].T @ w[h + 1] - w[h] @ w[h].T)
                assert np.abs(gap).max() <= 1e-10
        if construction.get("extra_rank"):
            q_in, q_out = construction["extra_rank"]
            assert c.ranks_prefix[0] == len(S) + q_in and c.ranks_suffix[-1] == len(S) + q_out


@pytest.mark.parametrize("widths", [(3,), (2,), (3, 2)])
def test_global_minima_are_exactly_the_top_r_max_eigenvalues(data, widths):
    X, Y = data
    r_max = min(3, *widths)
    kinds = {S: T.dln_classify(T.critical_point(X, Y, widths, S, jax.random.PRNGKey(1)), X, Y).kind
             for S in T.critical_values(X, Y, widths)}
    assert {S for S, k in kinds.items() if k == "global_minimum"} == {frozenset(range(r_max))}
    assert "not_critical" not in kinds.values()


def test_two_layers_every_other_critical_point_is_a_strict_saddle(data):
    X, Y = data
    for S in T.critical_values(X, Y, (3,)):
        c = T.dln_classify(T.critical_point(X, Y, (3,), S, jax.random.PRNGKey(2)), X, Y)
        assert c.predicted == c.kind
        if S != frozenset({0, 1, 2}):
            assert c.kind == "strict_saddle" and c.lambda_min < -0.1
    origin = [jnp.zeros((3, 4)), jnp.zeros((3, 3))]
    c = T.dln_classify(origin, X, Y)
    # at the origin ½ΔᵀHΔ = −2⟨YXᵀ, Δ_2Δ_1⟩, whose minimum on the unit sphere is −σ_max(YXᵀ)
    sigma = np.linalg.svd(np.asarray(Y @ X.T), compute_uv=False)[0]
    assert c.kind == "strict_saddle" and abs(c.lambda_min + 2 * sigma) <= 1e-10 * sigma


@pytest.mark.parametrize("H", [3, 4])
def test_deep_origin_has_a_zero_hessian_and_an_order_H_escape(data, H):
    X, Y = data
    origin = [jnp.zeros(s) for s in [(3, 4)] + [(3, 3)] * (H - 2) + [(3, 3)]]
    assert np.abs(np.asarray(T.dln_hessian(origin, X, Y))).max() == 0.0
    c = T.dln_classify(origin, X, Y)
    assert c.kind == c.predicted == "non_strict_saddle" and c.lambda_min == c.lambda_max == 0.0
    # L(tΔ) = ‖Y‖² − 2tᴴ⟨Y, Δ_H⋯Δ_1 X⟩ + t²ᴴ‖Δ_H⋯Δ_1 X‖²: the first non-zero order is H
    assert c.escape_order == H and c.escape_drop < 0
    assert c.ranks_prefix == c.ranks_suffix == (0,) * (H - 1) and c.subset == frozenset()


def test_three_layers_reported_kinds_with_ranks(data):
    """Numerical classification (the rank criterion was not encoded): non-initial S are strict
    (expected, arXiv 2107.13289); the minimal-rank initial segments are non-strict with an
    order-3 certificate; filling a spare row of W_1 (rank W_1 = |S| + 1) makes them strict."""
    X, Y = data
    for S in T.critical_values(X, Y, (3, 3)):
        c = T.dln_classify(T.critical_point(X, Y, (3, 3), S, jax.random.PRNGKey(3)), X, Y)
        initial = S == frozenset(range(len(S)))
        if len(S) == 3:
            assert c.kind == c.predicted == "global_minimum"
        elif not initial:
            assert c.kind == "strict_saddle" and c.lambda_min < -0.1
        elif len(S) < 3:
            assert c.kind == "non_strict_saddle" and c.escape_order == 3 and c.escape_drop < 0
            assert c.ranks_prefix == c.ranks_suffix == (len(S), len(S))
            inflated = T.critical_point(X, Y, (3, 3), S, jax.random.PRNGKey(3), extra_rank=(1, 0))
            ci = T.dln_classify(inflated, X, Y)
            assert ci.kind == "strict_saddle" and ci.ranks_prefix[0] == len(S) + 1


def test_classify_uses_the_autodiff_hessian(data):
    X, Y = data
    for w in (T.dln_init(jax.random.PRNGKey(4), 4, 3, (3, 2), 0.7),
              T.critical_point(X, Y, (3, 2), {1}, jax.random.PRNGKey(5))):
        blocks = jax.jit(jax.hessian(lambda ws: T.dln_loss(ws, X, Y)))(w)
        sizes = [a.size for a in w]
        dense = np.block([[np.asarray(blocks[i][j]).reshape(sizes[i], sizes[j]) for j in range(len(w))]
                          for i in range(len(w))])
        mine = np.asarray(T.dln_hessian(w, X, Y))
        assert np.abs(mine - dense).max() <= 1e-12 * np.abs(dense).max()
        c = T.dln_classify(w, X, Y)
        np.testing.assert_allclose(c.hessian_eigenvalues, np.linalg.eigvalsh(dense), atol=1e-10 * np.abs(dense).max())
    assert T.dln_classify(T.dln_init(jax.random.PRNGKey(6), 4, 3, (3, 2), 0.7), X, Y).kind == "not_critical"


def test_line_coefficients_are_the_exact_polynomial(data):
    X, Y = data
    w = T.dln_init(jax.random.PRNGKey(7), 4, 3, (3, 3), 0.5)
    d = T.dln_init(jax.random.PRNGKey(8), 4, 3, (3, 3), 0.5)
    c, _ = dln.line_coefficients(w, d, X, Y)
    for t in (-1.3, 0.2, 0.9):
        direct = float(T.dln_loss([a + t * b for a, b in zip(w, d)], X, Y))
        assert abs(float(np.polyval(np.asarray(c)[::-1], t)) - direct) <= 1e-10 * direct


def test_gradient_descent_reaches_the_minimum_and_visits_the_initial_segments(data):
    X, Y = data
    vals = T.critical_values(X, Y, (3, 3))
    _, losses = T.dln_gradient_descent(T.dln_init(jax.random.PRNGKey(9), 4, 3, (3, 3), 0.5), X, Y, 0.005, 5000)
    assert abs(losses[-1] - min(vals.values())) <= 1e-8 * TRACE
    _, losses = T.dln_gradient_descent(T.dln_init(jax.random.PRNGKey(9), 4, 3, (3,), 1e-6), X, Y, 0.005, 3000)
    visits = [v["subset"] for v in T.visited_critical_values(losses, T.critical_values(X, Y, (3,)))]
    assert visits == [frozenset(range(k)) for k in range(4)]


def test_bad_input_names_the_argument(data):
    X, Y = data
    w = T.critical_point(X, Y, (3,), {0}, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"weights\[1\] \(W_2\) has shape \(3, 2\).*do not chain"):
        T.dln_classify([w[0], jnp.ones((3, 2))], X, Y)
    with pytest.raises(ValueError, match=r"weights\[0\] \(W_1\).*d_x == 4"):
        T.dln_hessian([jnp.ones((3, 5)), w[1]], X, Y)
    with pytest.raises(ValueError, match="n columns"):
        T.critical_values(X, Y[:, :5], (3,))
    with pytest.raises(ValueError, match="X: XXᵀ .* singular"):
        T.critical_values(jnp.concatenate([X, X[:1]]), Y, (3,))
    rep_x, rep_y = T.planted_data(jax.random.PRNGKey(1), 4, 3, 16, (4.0, 4.0, 1.0))
    with pytest.raises(ValueError, match="Y: .*repeated eigenvalues λ_0"):
        T.critical_point(rep_x, rep_y, (3,), {0}, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="larger than r_max = 2"):
        T.critical_point(X, Y, (2,), {0, 1, 2}, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="index 3 out of range"):
        T.critical_point(X, Y, (3,), {3}, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="widths"):
        T.critical_values(X, Y, ())
    with pytest.raises(ValueError, match="extra_rank"):
        T.critical_point(X, Y, (3,), {0}, jax.random.PRNGKey(0), extra_rank=(1, 0))
    with pytest.raises(ValueError, match="tol"):
        T.dln_classify(w, X, Y, tol=-1.0)
