"""Gauss–Newton inference in the prediction errors: exact on linear nets, the dense GN step
on nonlinear ones, and energy descent to a stationary point. float64, tolerances stated."""

import jax
import jax.numpy as jnp
import pytest

import pclab
from pclab.energy import output_grad, output_hessian, output_loss
from pclab.inference.newton import gauss_newton_errors
from pclab.options import Status

from test_core_inference import _linear


def _net(act, depth=5, width=5, d_in=6, d_out=3, batch=2, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    m = pclab.resnet(k[0], d_in, width, depth, d_out, act=act, param="mupc", dtype=jnp.float64)
    x = jax.random.normal(k[1], (batch, d_in), jnp.float64)
    y = jax.nn.one_hot(jnp.arange(batch) % d_out, d_out, dtype=jnp.float64)
    return m, x, y


@pytest.mark.parametrize("kind,param,bias", [("resnet", "mupc", False), ("mlp", "sp", False), ("resnet", "sp", True)])
@pytest.mark.parametrize("precision", [1.0, 0.3])
def test_one_newton_step_is_the_exact_equilibrium_of_a_linear_net(kind, param, bias, precision):
    with jax.enable_x64(True):
        m, x, y = _linear(kind, param, bias)
        spec = pclab.EnergySpec("mse", precision)
        exact = pclab.infer(m, x, y, solver=pclab.ExactSolver(), spec=spec).z
        sol = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), spec=spec, max_steps=1)
        assert jnp.max(jnp.abs(sol.z - exact)) < 1e-10
        assert jnp.max(jnp.abs(pclab.activity_grad(m, sol.z, x, y, spec))) < 1e-10


def test_injected_activities_have_the_injected_errors():
    with jax.enable_x64(True):
        m, x, _ = _net("tanh", depth=6)
        delta = jax.random.normal(jax.random.PRNGKey(5), (5, 2, 5), jnp.float64)
        z = m.activities(x, delta)
        assert jnp.max(jnp.abs(pclab.hidden_errors(m, z, x) - delta)) < 1e-12
        assert jnp.array_equal(m.activities(x, jnp.zeros_like(delta)), m.activities(x))


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_output_hessian_matches_autodiff(loss):
    with jax.enable_x64(True):
        y_hat = jax.random.normal(jax.random.PRNGKey(0), (3, 4), jnp.float64)
        y = jax.nn.one_hot(jnp.array([0, 2, 3]), 4, dtype=jnp.float64)
        spec_loss = pclab.OutputLoss(loss)
        for b in range(3):
            h = jax.hessian(lambda v: output_loss(v[None], y[b : b + 1], spec_loss)[0])(y_hat[b])
            assert jnp.max(jnp.abs(output_hessian(y_hat, y, spec_loss)[b] - h)) < 1e-12


@pytest.mark.parametrize("act,loss", [("tanh", "mse"), ("gelu", "ce"), ("relu", "mse")])
def test_step_equals_the_dense_gauss_newton_step(act, loss):
    """Woodbury in output space == (I + JᵀAJ)⁻¹ solve over all (L−1)·N errors (1e-12)."""
    with jax.enable_x64(True):
        m, x, y = _net(act)
        spec = pclab.EnergySpec(loss, 0.7)
        delta = 0.3 * jax.random.normal(jax.random.PRNGKey(3), (4, 2, 5), jnp.float64)
        new, energy = gauss_newton_errors(m, x, y, delta, spec)
        for b in range(2):
            def y_hat(db, b=b):
                return m.predict_output(m.activities(x, delta.at[:, b].set(db.reshape(4, 5)))[-1])[b]

            db = delta[:, b].reshape(-1)
            jac = jax.jacobian(y_hat)(db)
            g = 0.7 * output_grad(y_hat(db)[None], y[b : b + 1], spec.loss)[0]
            a = 0.7 * output_hessian(y_hat(db)[None], y[b : b + 1], spec.loss)[0]
            step = jnp.linalg.solve(jnp.eye(20) + jac.T @ a @ jac, -(db + jac.T @ g))
            assert jnp.max(jnp.abs(db + step - new[:, b].reshape(-1))) < 1e-12
        assert energy == pytest.approx(float(pclab.energy(m, m.activities(x, delta), x, y, spec)), rel=1e-12)


@pytest.mark.parametrize("act,loss", [("tanh", "mse"), ("gelu", "ce")])
def test_smooth_nets_descend_to_a_stationary_point(act, loss):
    """Energy decreases step by step; within 40 steps the activity gradient falls by > 100x
    from the feedforward start and the activities cover > 99% of the way from the
    feedforward pass to the equilibrium found by long GD inference."""
    with jax.enable_x64(True):
        m, x, y = _net(act, depth=6, width=8, d_in=5, batch=3, seed=1)
        spec = pclab.EnergySpec(loss)
        sol = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), spec=spec, max_steps=40, record_energy=True)
        assert bool(jnp.all(jnp.diff(sol.energies) <= 1e-12))
        g0 = pclab.activity_grad(m, m.activities(x), x, y, spec)
        g = pclab.activity_grad(m, sol.z, x, y, spec)
        assert jnp.max(jnp.abs(g)) < 1e-2 * jnp.max(jnp.abs(g0))
        gd = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.2), spec=spec, max_steps=20000, atol=1e-13)
        assert int(gd.status) == int(Status.CONVERGED)
        assert jnp.max(jnp.abs(gd.z - sol.z)) < 1e-2 * jnp.max(jnp.abs(gd.z - m.activities(x)))


def test_tolerance_stops_early_and_generative_mode_is_refused():
    with jax.enable_x64(True):
        m, x, y = _linear("resnet", "mupc", False)
        sol = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), max_steps=10, atol=1e-12)
        assert int(sol.status) == int(Status.CONVERGED) and int(sol.steps) == 2  # step 2 changes nothing
        with pytest.raises(ValueError, match="supervised"):
            pclab.infer(m, x, y, solver=pclab.NewtonSolver(), mode="generative")


def test_weak_precision_newton_equilibrium_gives_bp_gradients():
    """Small-error limit through the Newton solver on a ReLU ResNet: ∇_θF / λ → ∇_θL
    linearly in λ (relative error < 10·λ at λ = 1e-2 and 1e-3)."""
    with jax.enable_x64(True):
        m, x, y = _net("relu", depth=8, width=8, d_in=5, batch=4, seed=2)
        bp = jax.tree_util.tree_leaves(pclab.bp_grad(m, x, y, pclab.EnergySpec("mse")))
        errs = []
        for lam in (1e-2, 1e-3):
            spec = pclab.EnergySpec("mse", lam)
            z = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), spec=spec, max_steps=10).z
            pc = jax.tree_util.tree_leaves(pclab.pc_weight_grad(m, z, x, y, spec))
            num = sum(jnp.sum((p / lam - b) ** 2) for p, b in zip(pc, bp))
            errs.append(float(jnp.sqrt(num / sum(jnp.sum(b**2) for b in bp))))
            assert errs[-1] < 10 * lam
        assert errs[1] < 0.2 * errs[0]
