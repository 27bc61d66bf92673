"""L^p approximation rates (arXiv 2206.04360): rate shapes, the Monte-Carlo L^p estimator and
trained ReLU networks, float64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lp_error_matches_the_exact_integral(p):
    # ‖x‖_{L^p(U[0,1])} = (1/(p+1))^{1/p}
    exact = (1.0 / (p + 1.0)) ** (1.0 / p)
    e = T.lp_error(lambda x: x[:, 0], lambda x: jnp.zeros(x.shape[0]), p, T.uniform_sampler(1), 200_000,
                   jax.random.PRNGKey(0))
    assert abs(e.value - exact) <= 4 * e.stderr and e.stderr < 2e-3 and e.n == 200_000


def test_lp_error_two_dimensions_and_sup():
    # ‖x_1 x_2‖_{L^2(U[0,1]^2)} = (E x_1² E x_2²)^{1/2} = 1/3
    f, zero = (lambda x: x[:, 0] * x[:, 1]), (lambda x: jnp.zeros((x.shape[0], 1)))
    e = T.lp_error(f, zero, 2, T.uniform_sampler(2), 200_000, jax.random.PRNGKey(1))
    assert abs(e.value - 1.0 / 3.0) <= 4 * e.stderr
    sup = T.lp_error(f, zero, math.inf, T.uniform_sampler(2), 50_000, jax.random.PRNGKey(2))
    assert 0.98 < sup.value <= 1.0 and math.isnan(sup.stderr)      # a lower estimate of sup = 1


def test_lp_error_standard_error_matches_the_spread_over_seeds():
    # delta-method standard error against the empirical spread of 40 independent estimates (n = 500)
    est = [T.lp_error(lambda x: x[:, 0] ** 2, lambda x: jnp.zeros(x.shape[0]), 2, T.uniform_sampler(1), 500,
                      jax.random.PRNGKey(k)) for k in range(40)]
    spread, mean_se = np.std([e.value for e in est], ddof=1), np.mean([e.stderr for e in est])
    assert 0.7 < spread / mean_se < 1.4


def test_rate_shapes_have_the_stated_exponents():
    W, L, a, d = 1000, 4, 0.5, 2
    e = a / d
    for p in (1, 2, math.inf):                                       # same Hölder exponent for every p
        assert T.holder_exponent(a, d, p) == e
    # doubling W: factor 2^{−α/d} times the log term (log 2W / log W)^{−α/d}
    ratio = T.holder_rate(2 * W, L, a, d) / T.holder_rate(W, L, a, d)
    assert abs(ratio - (2 * math.log(2 * W) / math.log(W)) ** (-e)) <= 1e-12
    assert abs(ratio * (math.log(2 * W) / math.log(W)) ** e - 2 ** (-e)) <= 1e-12
    assert abs(T.holder_rate(W, 2 * L, a, d) / T.holder_rate(W, L, a, d) - 2 ** (-e)) <= 1e-12   # no log term
    assert abs(T.pseudo_dimension_shape(2 * W, L) / T.pseudo_dimension_shape(W, L)
               - 2 * math.log(2 * W) / math.log(W)) <= 1e-12
    assert T.pseudo_dimension_shape(W, L) == W * L * math.log(W)
    assert T.monotone_exponent(1, 2) == 1.0 and T.monotone_exponent(3, 2) == 0.25 and T.monotone_exponent(2, 1) == 0.5
    assert T.monotone_exponent(1, math.inf) == 0.0 and T.monotone_rate(W, L, 1, math.inf) == 1.0   # no sup-norm rate
    assert abs(T.monotone_rate(W, 2 * L, 1, 2) / T.monotone_rate(W, L, 1, 2) - 0.5) <= 1e-12
    ws = np.array([10.0, 100.0, 1000.0])
    assert abs(T.loglog_slope(ws, 3 * ws ** -0.7) + 0.7) <= 1e-12


def test_trained_errors_fall_with_size_and_the_monotone_sup_norm_does_not():
    x = jax.random.uniform(jax.random.PRNGKey(0), (512, 1), jnp.float32)   # training needs no float64
    f = T.weierstrass(0.5, 1)
    small, large = T.fit_relu_family(jax.random.PRNGKey(1), f, x, (4, 32), 3, steps=1500)
    assert large.n_params == T.relu_n_params(1, 32, 3) == 2 * 32 + 33 * 32 + 33
    err = [T.lp_error(f, g, 2, T.uniform_sampler(1), 20_000, jax.random.PRNGKey(2)).value for g in (small, large)]
    assert err[1] < 0.75 * err[0]                                    # measured ≈ 0.5
    step = T.monotone_step(0.3, 0.5)
    fit = T.fit_relu(jax.random.PRNGKey(3), step, x, 32, 3, steps=1500)
    l1 = T.lp_error(step, fit, 1, T.uniform_sampler(1), 20_000, jax.random.PRNGKey(4)).value
    sup = T.lp_error(step, fit, math.inf, T.uniform_sampler(1), 20_000, jax.random.PRNGKey(4)).value
    assert l1 < 0.03 and sup > 0.2            # a continuous g is never uniformly closer than jump/2 = 0.25


@pytest.mark.parametrize("p", [0.5, 0, -1, float("nan"), True, "2"])
def test_p_below_one_is_refused(p):
    with pytest.raises(ValueError, match="p="):
        T.lp_error(lambda x: x[:, 0], lambda x: x[:, 0], p, T.uniform_sampler(1), 10, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="p="):
        T.monotone_exponent(1, p)


def test_bad_arguments_name_themselves():
    for call, name in ((lambda: T.holder_rate(1, 2, 0.5, 1), "n_params"), (lambda: T.holder_rate(10, 0, 0.5, 1), "n_layers"),
                       (lambda: T.holder_rate(10, 2, 0.0, 1), "alpha"), (lambda: T.holder_rate(10, 2, 0.5, 0), "d"),
                       (lambda: T.loglog_slope([1.0], [1.0]), "x and y"),
                       (lambda: T.lp_error(lambda x: x[:, 0], lambda x: x[:, 0], 2, T.uniform_sampler(1), 1,
                                           jax.random.PRNGKey(0)), "n="),
                       (lambda: T.lp_error(lambda x: x, lambda x: x[:, 0], 2, T.uniform_sampler(2), 10,
                                           jax.random.PRNGKey(0)), "one value per sample"),
                       (lambda: T.fit_relu(jax.random.PRNGKey(0), T.monotone_step(), jnp.ones((4, 1)), 0, 3), "width"),
                       (lambda: T.weierstrass(1.5), "alpha")):
        with pytest.raises(ValueError, match=name):
            call()
