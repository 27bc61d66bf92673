"""Learning: small-error limit PC → BP, no recompilation, training works, NaN guards."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pclab


def _flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))])


def test_pc_gradient_tends_to_bp_gradient_as_precision_vanishes():
    """Classic small-error limit: with output precision λ → 0, ∇_θF*/λ → ∇_θL (rel. error O(λ))."""
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(0), 3)
        m = pclab.mlp(k[0], 5, 8, 4, 3, act="tanh", param="sp", dtype=jnp.float64)
        x = jax.random.normal(k[1], (6, 5), jnp.float64)
        y = jax.random.normal(k[2], (6, 3), jnp.float64)
        g_bp = _flat(pclab.bp_grad(m, x, y, pclab.EnergySpec()))
        errs = []
        for lam in (1e-1, 1e-2, 1e-3):
            spec = pclab.EnergySpec("mse", lam)
            sol = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.5), spec=spec, max_steps=5000, atol=1e-14)
            g_pc = _flat(pclab.pc_weight_grad(m, sol.z, x, y, spec)) / lam
            errs.append(float(jnp.linalg.norm(g_pc - g_bp) / jnp.linalg.norm(g_bp)))
        assert errs[2] < 1e-2
        assert errs[0] > 5 * errs[1] > 25 * errs[2]  # shrinks ~linearly in λ


def test_train_step_compiles_once_across_batches():
    k = jax.random.PRNGKey(0)
    m = pclab.resnet(k, 8, 16, 6, 4, act="relu")
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(m, eqx.is_array))
    step = pclab.make_train_step(opt, "pc", inference=pclab.InferenceConfig(pclab.GradientDescent(0.2), max_steps=5))
    for i in range(4):
        kx = jax.random.fold_in(k, i)
        x = jax.random.normal(kx, (32, 8))
        y = jax.nn.one_hot(jax.random.randint(kx, (32,), 0, 4), 4)
        m, state, info = step(m, state, x, y)
    assert step._cached._cache_size() == 1
    assert int(info.infer_steps) == 5


@pytest.mark.parametrize("algo", ["pc", "bp"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_training_learns_a_teacher(algo, loss):
    """Both algorithms fit a linearly separable 4-class problem well above chance."""
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    teacher = jax.random.normal(k[0], (8, 4))
    x = jax.random.normal(k[1], (512, 8))
    y = jax.nn.one_hot(jnp.argmax(x @ teacher, 1), 4)
    m = pclab.resnet(k[2], 8, 32, 6, 4, act="tanh", param="mupc")
    opt = optax.adam(3e-2)
    state = opt.init(eqx.filter(m, eqx.is_array))
    spec = pclab.EnergySpec(loss)
    step = pclab.make_train_step(opt, algo, spec=spec, inference=pclab.InferenceConfig(pclab.GradientDescent(0.3), max_steps=10))
    before = pclab.evaluate(m, x, y, spec)
    for epoch in range(15):
        perm = jax.random.permutation(jax.random.fold_in(k[3], epoch), 512)
        for i in range(0, 512, 64):
            idx = perm[i : i + 64]
            m, state, info = step(m, state, x[idx], y[idx])
    after = pclab.evaluate(m, x, y, spec)
    assert after.loss < 0.6 * before.loss
    assert after.accuracy > 0.9


def test_bp_step_equals_optax_on_bp_grad():
    k = jax.random.PRNGKey(0)
    m = pclab.mlp(k, 3, 5, 3, 2, act="tanh")
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
    opt = optax.sgd(0.1)
    state = opt.init(eqx.filter(m, eqx.is_array))
    new, _, info = pclab.make_train_step(opt, "bp")(m, state, x, y)
    g = pclab.bp_grad(m, x, y, pclab.EnergySpec())
    assert np.allclose(_flat(new), _flat(m) - 0.1 * _flat(g), atol=1e-6)
    assert float(info.loss) == pytest.approx(float(pclab.loss(m, x, y)), rel=1e-6)


def test_scale_updates_multiplies_per_layer():
    m = pclab.resnet(jax.random.PRNGKey(0), 3, 5, 4, 2, bias=True)
    scales = pclab.Multipliers(2.0, 3.0, 5.0)
    tx = pclab.scale_updates(scales, m)
    ones = jax.tree_util.tree_map(jnp.ones_like, eqx.filter(m, eqx.is_array))
    out, _ = tx.update(ones, tx.init(ones))
    assert float(out.w_in[0, 0]) == 2.0 and float(out.b_in[0]) == 2.0
    assert float(out.w_hidden[0, 0, 0]) == 3.0 and float(out.b_hidden[0, 0]) == 3.0
    assert float(out.w_out[0, 0]) == 5.0 and float(out.b_out[0]) == 5.0


def test_unknown_algo_is_rejected():
    with pytest.raises(ValueError, match="algo='ep' is not valid; expected one of 'pc', 'bp'"):
        pclab.make_train_step(optax.sgd(0.1), "ep")


@pytest.mark.parametrize("algo", ["pc", "bp"])
def test_masked_update_is_the_step_when_alive_and_the_identity_when_not(algo):
    m = pclab.resnet(jax.random.PRNGKey(1), 3, 6, 4, 2)
    x, y = jax.random.normal(jax.random.PRNGKey(2), (5, 3)), jnp.zeros((5, 2))
    opt = optax.adam(0.05)
    state = opt.init(eqx.filter(m, eqx.is_array))
    rule, spec, inference = pclab.learning.get_rule(algo), pclab.EnergySpec(), pclab.learning.InferenceConfig()
    want, want_state, _ = rule.update(m, state, x, y, opt, spec, inference)
    got, got_state, _ = pclab.learning.masked_update(rule, m, state, x, y, jnp.asarray(True), opt, spec, inference)
    assert np.array_equal(_flat(got), _flat(want))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(got_state),
                                                    jax.tree_util.tree_leaves(want_state)))
    same, same_state, _ = pclab.learning.masked_update(rule, m, state, x, y, jnp.asarray(False), opt, spec, inference)
    assert np.array_equal(_flat(same), _flat(m)) and not np.array_equal(_flat(same), _flat(want))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(same_state),
                                                    jax.tree_util.tree_leaves(state)))


def test_rule_options_are_its_fields_and_unknown_ones_are_named():
    from pclab.experiments.config import TrainConfig

    assert pclab.learning.PC().options() == {}
    with pytest.raises(ValueError, match="'beta' not an option of PC; valid options: none"):
        TrainConfig(algo="pc", algo_options={"beta": 0.1})
    with pytest.raises(ValueError, match="algo_options=.*expected a table"):
        TrainConfig(algo_options=[1])
