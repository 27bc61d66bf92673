"""A new architecture touches only ``nn/``: a PCN defined here, in a few lines, trains through
``make_train_step``, infers with GD and Newton and gets ``pc_bp_alignment`` unchanged.

The toy model: two tanh layers of different widths held as a *tuple* of activity stacks
(not one array), so every generic path (energy, solvers, Newton's pytree Jacobian) is used.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import pclab
from pclab.theory import pc_bp_alignment


class TwoWidths(pclab.AbstractPCN):
    w1: jax.Array  # (5, 3)
    w2: jax.Array  # (4, 5)
    w3: jax.Array  # (2, 4)

    def activities(self, x, inject=None):
        d = (None, None) if inject is None else inject
        z1 = x @ self.w1.T + (0 if d[0] is None else d[0][0])
        z2 = jnp.tanh(z1) @ self.w2.T + (0 if d[1] is None else d[1][0])
        return (z1[None], z2[None])

    def predictions(self, z, x):
        return ((x @ self.w1.T)[None], (jnp.tanh(z[0][0]) @ self.w2.T)[None])

    def output(self, z):
        return jnp.tanh(z[1][0]) @ self.w3.T

    def param_info(self):
        return TwoWidths(pclab.ParamInfo(pclab.Role.INPUT, 3), pclab.ParamInfo(pclab.Role.HIDDEN, 5),
                         pclab.ParamInfo(pclab.Role.OUTPUT, 4))

    def layers(self, tree):
        return [[tree.w1], [tree.w2], [tree.w3]]

    def check_input(self, x):
        if x.ndim != 2 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (batch, 3); got {x.shape}")


def _setup(dtype=jnp.float64):
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    m = TwoWidths(*(0.7 * jax.random.normal(k[i], s, dtype) for i, s in enumerate([(5, 3), (4, 5), (2, 4)])))
    x = jax.random.normal(k[3], (6, 3), dtype)
    y = jnp.sin(x[:, :2])
    return m, x, y


def test_custom_pcn_energy_inference_and_newton():
    with jax.enable_x64(True):
        m, x, y = _setup()
        z = m.activities(x)
        assert max(float(jnp.max(jnp.abs(e))) for e in pclab.hidden_errors(m, z, x)) < 1e-14
        gd = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.2), max_steps=5000, atol=1e-12)
        nt = pclab.infer(m, x, y, solver=pclab.NewtonSolver(), max_steps=400, atol=1e-12, record_energy=True)
        assert bool(gd.converged) and bool(nt.converged)
        for a, b in zip(gd.z, nt.z):  # the same equilibrium
            assert float(jnp.max(jnp.abs(a - b))) < 1e-8
        assert bool(jnp.all(jnp.diff(nt.energies[: int(nt.steps)]) <= 1e-12))
        g = pclab.activity_grad(m, nt.z, x, y)
        assert max(float(jnp.max(jnp.abs(v))) for v in jax.tree_util.tree_leaves(g)) < 1e-8


def test_custom_pcn_trains_and_aligns():
    with jax.enable_x64(True):
        m, x, y = _setup()
        opt = optax.chain(optax.adam(3e-2), pclab.scale_updates(pclab.get_param("mupc"), m))
        state = opt.init(eqx.filter(m, eqx.is_array))
        step = pclab.make_train_step(opt, "pc", inference=pclab.InferenceConfig(pclab.NewtonSolver(), 3))
        first = None
        for _ in range(60):
            m, state, info = step(m, state, x, y)
            first = float(info.loss) if first is None else first
        assert float(info.loss) < 0.3 * first
        lam = 1e-3
        a = pc_bp_alignment(m, x, y, solver=pclab.NewtonSolver(), spec=pclab.EnergySpec("mse", lam), max_steps=20)
        assert len(a.per_layer) == 3 and a.cosine > 0.999


def test_custom_pcn_wrong_activity_structure_is_named():
    m, x, y = _setup(jnp.float32)
    with pytest.raises(ValueError, match="z0 has pytree structure"):
        pclab.infer(m, x, y, z0=m.activities(x)[0])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\)"):
        pclab.infer(m, x[:, :2], y)
    with pytest.raises(ValueError, match="y has shape"):
        pclab.infer(m, x, y[:, :1])
