"""Dense Hessians (weights and activities) against jax.hessian of brute-force definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab import theory as T

SHAPES = [(3, 2), (3, 3), (2, 3)]  # W_1 (3, 2), W_2 (3, 3), W_3 (2, 3): P = 6 + 9 + 6


def _problem(seed=0, shapes=SHAPES, batch=8):  # batch as in the saddle tests: shared compilations
    rng = np.random.default_rng(seed)
    w = [jnp.asarray(0.7 * rng.standard_normal(s)) for s in shapes]
    x = jnp.asarray(rng.standard_normal((batch, shapes[0][1])))
    y = jnp.asarray(rng.standard_normal((batch, shapes[-1][0])))
    return w, x, y


def _brute_energy(w, x, y, lam):
    """min_z of the batch-mean energy, by one dense solve of the stacked stationarity system."""
    n = [m.shape[0] for m in w[:-1]]
    p = sum(n)
    off = np.concatenate([[0], np.cumsum(n)])

    def example_energy(z, xi, yi):
        zs = [z[off[i]:off[i + 1]] for i in range(len(n))]
        prev, e = xi, 0.0
        for m, zl in zip(w[:-1], zs):
            e = e + 0.5 * jnp.sum((zl - m @ prev) ** 2)
            prev = zl
        return e + 0.5 * lam * jnp.sum((yi - w[-1] @ prev) ** 2)

    # The activity Hessian does not depend on the example; the linear term does.
    h = jax.hessian(example_energy)(jnp.zeros(p), x[0], y[0])
    g0 = jax.vmap(jax.grad(example_energy), in_axes=(None, 0, 0))(jnp.zeros(p), x, y)
    z = jnp.linalg.solve(h, -g0.T).T
    return jnp.mean(jax.vmap(example_energy)(z, x, y))


def _brute_loss(w, x, y):
    prod = w[0]
    for m in w[1:]:
        prod = m @ prod
    return 0.5 * jnp.mean(jnp.sum((y - x @ prod.T) ** 2, -1))


def _flat(fn, shapes):
    return lambda th, *args: fn(T.unflatten_weights(th, shapes), *args)


def test_flatten_is_row_major_layer_by_layer():
    w, _, _ = _problem()
    theta = T.flatten_weights(w)
    assert theta.shape == (21,)
    np.testing.assert_array_equal(theta[6:15], np.asarray(w[1]).reshape(-1))
    assert float(theta[6 + 1 * 3 + 2]) == float(w[1][1, 2])
    for a, b in zip(T.unflatten_weights(theta, SHAPES), w):
        np.testing.assert_array_equal(a, b)


def test_energy_hessian_matches_autodiff_of_brute_force():
    w, x, y = _problem(1)
    theta = T.flatten_weights(w)
    brute = _flat(lambda ws, lam: _brute_energy(ws, x, y, lam), SHAPES)
    closed = _flat(lambda ws, lam: T.equilibrated_energy(ws, x, y, lam), SHAPES)
    grad_brute = jax.grad(brute)
    derivs = jax.jit(lambda th, lam: (*jax.jacfwd(lambda t: (grad_brute(t, lam),) * 2, has_aux=True)(th),
                                      jax.hessian(closed)(th, lam)))
    for lam in (1.0, 0.5):
        h_brute, g_brute, h_closed = derivs(theta, lam)
        h = T.energy_hessian(w, x, y, lam)
        np.testing.assert_allclose(h, h_closed, atol=1e-10)
        np.testing.assert_allclose(h, h_brute, atol=1e-8)
        np.testing.assert_allclose(T.energy_gradient(w, x, y, lam), g_brute, atol=1e-9)
        assert np.abs(np.asarray(h)).max() > 1e-2  # a non-trivial Hessian


def test_loss_hessian_matches_autodiff_of_brute_force():
    w, x, y = _problem(2)
    theta = T.flatten_weights(w)
    brute = _flat(lambda ws: _brute_loss(ws, x, y), SHAPES)
    h_brute, g_brute = jax.jit(lambda th: (jax.hessian(brute)(th), jax.grad(brute)(th)))(theta)
    np.testing.assert_allclose(T.loss_hessian(w, x, y), h_brute, atol=1e-10)
    np.testing.assert_allclose(T.loss_gradient(w, x, y), g_brute, atol=1e-10)
    value, grad, hess = T.derivatives(w, x, y, "loss")
    np.testing.assert_allclose(value, _brute_loss(w, x, y), rtol=1e-12)
    np.testing.assert_allclose(hess, h_brute, atol=1e-10)


@pytest.mark.parametrize("kind, lam", [("plain", 1.0), ("mupc-residual", 2.5)])
def test_activity_hessian_is_the_example_energy_hessian(kind, lam):
    param, skips = ("sp", False) if kind == "plain" else ("mupc", True)
    model = T.random_pcn(3, 3, 4, 4, 2, param=param, skips=skips, dtype=jnp.float64)
    rng = np.random.default_rng(4)
    x, y = jnp.asarray(rng.standard_normal((1, 3))), jnp.asarray(rng.standard_normal((1, 2)))
    spec = pclab.EnergySpec(precision=lam)
    e = lambda zf: pclab.example_energies(model, zf.reshape(3, 1, 4), x, y, spec)[0]  # noqa: E731
    h_auto = jax.jit(jax.hessian(e))(jnp.zeros(12))
    h = T.activity_hessian(pclab.layer_maps(model), lam)
    np.testing.assert_allclose(h, h_auto, atol=1e-12)
    ev = np.linalg.eigvalsh(np.asarray(h_auto))
    np.testing.assert_allclose(T.activity_condition_number(pclab.layer_maps(model), lam), ev[-1] / ev[0], rtol=1e-9)
    np.testing.assert_allclose(T.activity_eigenvalues(pclab.layer_maps(model), lam), ev, atol=1e-10)


def test_activity_hessian_blocks_unequal_widths():
    w, _, _ = _problem(6, shapes=[(4, 2), (3, 4), (2, 3)])
    h = np.asarray(T.activity_hessian(w, 0.5))
    assert h.shape == (7, 7)
    np.testing.assert_allclose(h[:4, :4], np.eye(4) + np.asarray(w[1]).T @ np.asarray(w[1]), atol=1e-12)
    np.testing.assert_allclose(h[4:, 4:], np.eye(3) + 0.5 * np.asarray(w[2]).T @ np.asarray(w[2]), atol=1e-12)
    np.testing.assert_allclose(h[4:, :4], -np.asarray(w[1]), atol=1e-12)
    np.testing.assert_allclose(h[:4, 4:], -np.asarray(w[1]).T, atol=1e-12)
