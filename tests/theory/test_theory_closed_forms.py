"""Closed forms F*, S and z* against brute force (dense solve, pclab.infer GD and ExactSolver)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab import theory as T

D, N, O, B = 3, 5, 2, 6


def _batch(seed=1, d_out=O):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((B, D))), jnp.asarray(rng.standard_normal((B, d_out)))


KINDS = {"plain": ("sp", False), "residual": ("sp", True), "mupc-residual": ("mupc", True), "mupc-plain": ("mupc", False)}


def _model(kind, seed=0, d_out=O):
    param, skips = KINDS[kind]
    return T.random_pcn(seed, D, N, 4, d_out, param=param, skips=skips, dtype=jnp.float64)


@eqx.filter_jit
def _infer(model, x, y, solver, spec, max_steps, atol):
    return pclab.infer(model, x, y, solver=solver, spec=spec, max_steps=max_steps, atol=atol)


@pytest.mark.parametrize("kind, precision", [("plain", 1.0), ("residual", 0.4), ("mupc-residual", 1.0),
                                             ("mupc-plain", 0.4)])
def test_energy_and_activities_match_brute_force(kind, precision):
    model = _model(kind)
    maps = pclab.layer_maps(model)
    x, y = _batch()
    spec = pclab.EnergySpec(precision=precision)
    f_star = T.equilibrated_energy(maps, x, y, precision)

    z_closed = T.equilibrium_activities(maps, x, y, precision)
    z_dense = T.dense_equilibrium_activities(maps, x, y, precision)
    z_exact = _infer(model, x, y, pclab.ExactSolver(), spec, 1, 0.0).z
    for zc, zd, ze in zip(z_closed, z_dense, z_exact):
        np.testing.assert_allclose(zc, zd, rtol=0, atol=1e-10)
        np.testing.assert_allclose(zc, ze, rtol=0, atol=1e-10)
    # F* is the energy at the dense minimiser (pclab's own energy and ours agree).
    np.testing.assert_allclose(f_star, T.linear_energy(maps, z_dense, x, y, precision), rtol=1e-12)
    np.testing.assert_allclose(f_star, pclab.energy(model, jnp.stack(z_dense), x, y, spec), rtol=1e-12)
    # The equilibrium is a minimum: a perturbation raises the energy.
    rng = np.random.default_rng(0)
    z_pert = [z + 1e-2 * rng.standard_normal(z.shape) for z in z_closed]
    assert float(T.linear_energy(maps, z_pert, x, y, precision)) > float(f_star)


@pytest.mark.parametrize("kind, precision", [("plain", 1.0), ("mupc-residual", 0.4)])
def test_energy_matches_converged_gd_inference(kind, precision):
    model = _model(kind)
    x, y = _batch()
    spec = pclab.EnergySpec(precision=precision)
    sol = _infer(model, x, y, pclab.GradientDescent(0.2), spec, 20000, 1e-13)
    assert bool(sol.converged)
    f_star = T.equilibrated_energy(pclab.layer_maps(model), x, y, precision)
    np.testing.assert_allclose(pclab.energy(model, sol.z, x, y, spec), f_star, rtol=1e-9)
    for zc, zg in zip(T.equilibrium_activities(pclab.layer_maps(model), x, y, precision), sol.z):
        np.testing.assert_allclose(zc, zg, atol=1e-8)


def test_errors_at_equilibrium_sum_to_energy():
    maps = pclab.layer_maps(_model("residual", 3))
    x, y = _batch(2)
    lam = 0.7
    errs = T.equilibrium_errors(maps, x, y, lam)
    total = sum(0.5 * np.mean(np.sum(np.asarray(e) ** 2, -1)) for e in errs[:-1])
    total += lam * 0.5 * np.mean(np.sum(np.asarray(errs[-1]) ** 2, -1))
    np.testing.assert_allclose(total, T.equilibrated_energy(maps, x, y, lam), rtol=1e-12)


def test_rescaling_matrix_definition():
    b1, b2, b3, b4 = (np.asarray(m) for m in pclab.layer_maps(_model("plain", 4)))
    expect = np.eye(O) / 0.5 + b4 @ b4.T + (b4 @ b3) @ (b4 @ b3).T + (b4 @ b3 @ b2) @ (b4 @ b3 @ b2).T
    maps = [b1, b2, b3, b4]
    np.testing.assert_allclose(T.rescaling_matrix(maps, 0.5), expect, rtol=1e-12)
    s = np.asarray(T.rescaling_matrix(maps))
    np.testing.assert_allclose(T.rescaling_deviation(maps), np.linalg.norm(s - np.eye(O), 2), rtol=1e-10)


@pytest.mark.parametrize("kind", ["plain", "mupc-residual"])
def test_scalar_output_energy_is_rescaled_loss(kind):
    maps = pclab.layer_maps(_model(kind, 5, d_out=1))
    x, y = _batch(3, d_out=1)
    s = T.rescaling_factor(maps)
    assert float(s) >= 1.0
    np.testing.assert_allclose(T.equilibrated_energy(maps, x, y), T.linear_loss(maps, x, y) / s, rtol=1e-12)
    # With precision λ: F* = λ L / s_λ, s_λ = λ S.
    np.testing.assert_allclose(T.equilibrated_energy(maps, x, y, 0.3),
                               0.3 * T.linear_loss(maps, x, y) / T.rescaling_factor(maps, 0.3), rtol=1e-12)


def test_float32_agrees_with_float64():
    maps64 = [np.asarray(m) for m in pclab.layer_maps(_model("mupc-residual", 6))]
    x, y = (np.asarray(v) for v in _batch(4))
    f64 = float(T.equilibrated_energy(maps64, x, y))
    with jax.enable_x64(False):
        maps32 = [m.astype(np.float32) for m in maps64]
        x32, y32 = x.astype(np.float32), y.astype(np.float32)
        f32 = T.equilibrated_energy(maps32, x32, y32)
        z32 = T.equilibrium_activities(maps32, x32, y32)
        assert f32.dtype == jnp.float32 and z32[0].dtype == jnp.float32
    np.testing.assert_allclose(float(f32), f64, rtol=1e-5)


def test_feedforward_and_end_to_end():
    model = _model("residual", 7)
    maps = pclab.layer_maps(model)
    x, _ = _batch(5)
    y_hat = np.asarray(eqx.filter_jit(lambda m, v: m(v))(model, x))
    np.testing.assert_allclose(T.feedforward_activities(maps, x)[-1], y_hat, atol=1e-12)
    np.testing.assert_allclose(np.asarray(x) @ np.asarray(T.end_to_end(maps)).T, y_hat, atol=1e-12)
