"""Energies and activity gradients: hand-written gradient vs autodiff, layer sums, batch convention."""

import itertools

import jax
import jax.numpy as jnp
import pytest

import pclab


def _net(kind, act, bias, key, d_in=5, width=6, depth=5, d_out=3, param="mupc"):
    build = pclab.resnet if kind == "resnet" else pclab.mlp
    return build(key, d_in, width, depth, d_out, act=act, param=param, bias=bias, dtype=jnp.float64)


def _randomise_biases(model, key):
    leaves = [model.b_in, model.b_hidden, model.b_out]
    if leaves[0] is None:
        return model
    ks = jax.random.split(key, 3)
    new = [jax.random.normal(k, b.shape, b.dtype) for k, b in zip(ks, leaves)]
    import equinox as eqx

    return eqx.tree_at(lambda m: (m.b_in, m.b_hidden, m.b_out), model, tuple(new))


@pytest.mark.parametrize(
    "kind,act,bias,loss", list(itertools.product(["mlp", "resnet"], ["linear", "tanh", "relu", "gelu"], [False, True], ["mse", "ce"]))
)
def test_activity_grad_equals_autodiff(kind, act, bias, loss):
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(3), 5)
        m = _randomise_biases(_net(kind, act, bias, k[0]), k[4])
        x = jax.random.normal(k[1], (4, 5), jnp.float64)
        y = jax.nn.softmax(jax.random.normal(k[2], (4, 3), jnp.float64)) if loss == "ce" else jax.random.normal(k[2], (4, 3), jnp.float64)
        z = m.activities(x) + 0.3 * jax.random.normal(k[3], (4, 4, 6), jnp.float64)
        spec = pclab.EnergySpec(loss, precision=0.7)
        auto = jax.grad(lambda z_: 4 * pclab.energy(m, z_, x, y, spec))(z)
        hand = pclab.activity_grad(m, z, x, y, spec)
        assert jnp.max(jnp.abs(auto - hand)) < 1e-12


def test_layer_energies_sum_to_energy_and_feedforward_errors_vanish():
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(0), 3)
        m = _net("resnet", "tanh", False, k[0])
        x = jax.random.normal(k[1], (8, 5), jnp.float64)
        y = jax.random.normal(k[2], (8, 3), jnp.float64)
        z = m.activities(x)
        per = pclab.layer_energies(m, z, x, y)
        assert per.shape == (5,)
        assert jnp.allclose(per[:-1], 0.0, atol=1e-14)  # feedforward activities: hidden errors 0
        # ... so the energy equals the BP loss there.
        assert jnp.allclose(pclab.energy(m, z, x, y), pclab.loss(m, x, y), rtol=1e-12)
        z2 = z + 0.1
        assert jnp.allclose(jnp.sum(pclab.layer_energies(m, z2, x, y)), pclab.energy(m, z2, x, y), rtol=1e-12)


def test_energy_is_batch_mean_and_activity_grad_is_batch_size_free():
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(1), 3)
        m = _net("mlp", "tanh", False, k[0])
        x = jax.random.normal(k[1], (6, 5), jnp.float64)
        y = jax.random.normal(k[2], (6, 3), jnp.float64)
        z = m.activities(x) + 0.2
        e_all = pclab.example_energies(m, z, x, y)
        assert jnp.allclose(pclab.energy(m, z, x, y), jnp.mean(e_all))
        g_full = pclab.activity_grad(m, z, x, y)
        g_one = pclab.activity_grad(m, z[:, :1], x[:1], y[:1])
        assert jnp.allclose(g_full[:, :1], g_one, atol=1e-14)


def test_energy_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="precision"):
        pclab.EnergySpec("mse", precision=0.0)
    with pytest.raises(ValueError, match="loss=.*'mse', 'ce'"):
        pclab.EnergySpec("hinge")
