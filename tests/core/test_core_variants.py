"""PC variants as learning rules (iPC, ePC, nudging): their limits, energy descent, training,
vmapping over stacked models, and the combinations they refuse. Theory checks run in float64."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pclab
from pclab.energy import output_grad
from pclab.experiments.config import TrainConfig
from pclab.learning import IPC, EPC, CentredNudging, ErrorSolver, NegativeNudging, PositiveNudging, nudged_phase
from pclab.learning.nudging import nudged_target
from pclab.theory.alignment import rule_bp_cosines

F64 = jnp.float64
VARIANTS = ["ipc", "epc", "nudge-pn", "nudge-nn", "nudge-cn"]


def _flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))])


def _rel(a, b):
    return float(jnp.linalg.norm(_flat(a) - _flat(b)) / jnp.linalg.norm(_flat(b)))


def _small_net(act="tanh", loss="mse"):
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    m = pclab.mlp(k[0], 5, 8, 4, 3, act=act, param="sp", dtype=F64)
    x = jax.random.normal(k[1], (6, 5), F64)
    y = jax.nn.one_hot(jnp.arange(6) % 3, 3, dtype=F64)
    return m, x, y


def _small_resnet(seed):
    """A depth-6 tanh μPC ResNet (5 → 8 → 3) and a batch of 4, float64 (call under enable_x64)."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    m = pclab.resnet(k[0], 5, 8, 6, 3, act="tanh", param="mupc", dtype=F64)
    return m, jax.random.normal(k[1], (4, 5), F64), jax.nn.one_hot(jnp.arange(4) % 3, 3, dtype=F64)


@eqx.filter_jit
def _grads(rule, model, x, y, spec, inference):
    return rule.grads(model, x, y, spec, inference)


# ----- limits ------------------------------------------------------------------------------
CONVERGED = pclab.InferenceConfig(pclab.GradientDescent(0.3), max_steps=4000, atol=1e-13)


def test_epc_and_pc_reach_the_same_equilibrium():
    """GD on the errors δ and GD on the activities, both run to convergence (update RMS
    ≤ 1e-13), end at the same energy (rel. 1e-10) and weight gradient (rel. 1e-8)."""
    with jax.enable_x64(True):
        m, x, y = _small_net()
        spec = pclab.EnergySpec()
        g_pc, i_pc = _grads(pclab.PC(), m, x, y, spec, CONVERGED)
        g_ep, i_ep = _grads(EPC(), m, x, y, spec, CONVERGED)
        assert int(i_pc.status) == int(i_ep.status) == int(pclab.Status.CONVERGED)
        assert float(i_ep.energy) == pytest.approx(float(i_pc.energy), rel=1e-10)
        assert float(i_ep.energy) < 0.8 * float(i_ep.loss)  # inference did something
        assert _rel(g_ep, g_pc) < 1e-8


def test_epc_first_step_reaches_every_layer():
    """One GD step on δ from the feedforward pass gives every hidden layer the error
    δ_l = −γ ∂ℓ/∂z_l (the backward pass), so on a depth-6 μPC ResNet every layer's weight
    gradient is aligned with BP's (per-layer cosine > 0.99, float64); GD on the activities
    would reach only the top layer in one step."""
    with jax.enable_x64(True):
        m, x, y = _small_resnet(3)
        spec, inf = pclab.EnergySpec(), pclab.InferenceConfig(pclab.GradientDescent(0.2), max_steps=1)
        cos = [float(c) for c in rule_bp_cosines(EPC(), m, x, y, spec, inf)]
        assert len(cos) == 6 and min(cos) > 0.99, cos


def test_epc_one_step_is_the_bp_gradient_in_the_small_step_limit():
    """One GD step of size η on δ from δ = 0 sets δ_l = −η λ ∂ℓ/∂z_l, so every layer's ePC
    weight gradient is η λ × BP's up to O(η²): the relative error of g_ePC/(ηλ) against g_BP
    falls ~10× per 10× in η (float64; measured 1.9e-3 → 1.9e-4 → 1.9e-5 for the hidden layers
    here at η = 1e-2, 1e-3, 1e-4). The output layer's gradient is λ ∂ℓ/∂W_L itself (not scaled by η), so it is checked
    against λ × BP's. This is why ePC with T = 1 trains like BP under Adam
    (``--preset mupc-128-epc``)."""
    with jax.enable_x64(True):
        m, x, y = _small_resnet(5)
        lam = 0.5
        spec = pclab.EnergySpec(precision=lam)
        g_bp = m.layers(pclab.bp_grad(m, x, y, spec))
        errors = []
        for eta in (1e-2, 1e-3, 1e-4):
            inf = pclab.InferenceConfig(pclab.GradientDescent(eta), max_steps=1)
            g = m.layers(_grads(EPC(), m, x, y, spec, inf)[0])
            hidden = [float(jnp.linalg.norm(a[0] / (eta * lam) - b[0]) / jnp.linalg.norm(b[0]))
                      for a, b in zip(g[:-1], g_bp[:-1])]
            out = float(jnp.linalg.norm(g[-1][0] / lam - g_bp[-1][0]) / jnp.linalg.norm(g_bp[-1][0]))
            errors.append(max(hidden))
            assert out < 2 * eta, (eta, out)
        assert errors[0] < 0.01
        assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5, errors


def test_ipc_with_zero_weight_step_is_pc_inference():
    """weight_step = 0: the weights stay put and the activities and the energy trace are those
    of pclab.infer with the same solver and steps (to 1e-12, float64); the optimiser is
    still stepped (its state counts the T updates). weight_step = 1 moves the weights and
    ends at a lower energy, and vmapped over two stacked models each member's update equals
    its update run alone (rel. 1e-9)."""
    with jax.enable_x64(True):
        m, x, y = _small_net()
        spec, solver = pclab.EnergySpec(), pclab.heavy_ball(0.1)
        inf = pclab.InferenceConfig(solver, max_steps=12)
        opt = optax.adam(1e-2)
        state = opt.init(eqx.filter(m, eqx.is_array))
        run = eqx.filter_jit(lambda s, m, st, x, y: IPC(weight_step=s).run(m, st, x, y, opt, spec, inf))
        t = run(jnp.asarray(0.0, F64), m, state, x, y)
        sol = pclab.infer(m, x, y, solver=solver, max_steps=12, record_energy=True)
        assert float(jnp.max(jnp.abs(t.z - sol.z))) < 1e-12
        assert float(jnp.max(jnp.abs(t.energies - sol.energies))) < 1e-12
        assert bool(jnp.all(_flat(t.model) == _flat(m)))
        assert int(t.opt_state[0].count) == 12
        moved = run(jnp.asarray(1.0, F64), m, state, x, y)
        assert _rel(moved.model, m) > 1e-3
        assert float(moved.energies[-1]) < float(t.energies[-1])  # learning lowers the energy further
        # vmapped over two stacked models (as the lr grid runs it), each member's update is its own
        models = eqx.filter_vmap(lambda k: pclab.mlp(k, 5, 8, 4, 3, act="tanh", param="sp", dtype=F64))(
            jax.random.split(jax.random.PRNGKey(3), 2))
        states = eqx.filter_vmap(lambda m: opt.init(eqx.filter(m, eqx.is_array)))(models)
        one = jnp.asarray(1.0, F64)
        both = eqx.filter_jit(eqx.filter_vmap(run, in_axes=(None, 0, 0, None, None)))(one, models, states, x, y)
        for i in range(2):
            pick = lambda tree: jax.tree_util.tree_map(lambda a: a[i] if eqx.is_array(a) else a, tree)  # noqa: E731
            alone = run(one, pick(models), pick(states), x, y)
            step_v, step_a = _flat(pick(both.model)) - _flat(pick(models)), _flat(alone.model) - _flat(pick(models))
            assert float(jnp.linalg.norm(step_v - step_a) / jnp.linalg.norm(step_a)) < 1e-9


def test_nudging_with_zero_strength_is_the_free_phase():
    """β = 0: the nudged target is the network's own output, the equilibrium is the
    feedforward pass (the free phase), the energy there is 0 (MSE) and the weight gradient
    vanishes (to 1e-12), for MSE and CE; β = 1 is standard PC (PN equals PC to 1e-12).
    Float64."""
    with jax.enable_x64(True):
        m, x, y = _small_net()
        inf = pclab.InferenceConfig(pclab.GradientDescent(0.3), max_steps=20)
        free = eqx.filter_jit(lambda m, x, y: [nudged_phase(m, x, y, 0.0, pclab.EnergySpec(loss), inf)
                                               for loss in ("mse", "ce")])(m, x, y)
        for phase in free:
            assert float(jnp.max(jnp.abs(phase.solution.z - m.activities(x)))) < 1e-12
            assert float(jnp.max(jnp.abs(_flat(phase.grad)))) < 1e-12
        assert abs(float(free[0].energy)) < 1e-24
        spec = pclab.EnergySpec()
        g_pn, _ = _grads(PositiveNudging(beta=1.0), m, x, y, spec, CONVERGED)
        g_pc, _ = _grads(pclab.PC(), m, x, y, spec, CONVERGED)
        assert float(jnp.max(jnp.abs(_flat(g_pn) - _flat(g_pc)))) < 1e-12


def test_nudged_target_moves_the_output_gradient_by_beta():
    """At the feedforward output, ∂ℓ(t_β, ŷ)/∂ŷ = β ∂ℓ(y, ŷ)/∂ŷ for MSE and CE (to 1e-12)."""
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(5), 2)
        y_hat, y = jax.random.normal(k[0], (4, 5), F64), jax.nn.one_hot(jnp.arange(4), 5, dtype=F64)
        for loss in (pclab.OutputLoss.MSE, pclab.OutputLoss.CE):
            for beta in (0.3, -0.2):
                t = nudged_target(y_hat, y, beta, loss)
                lhs = output_grad(y_hat, t, loss)
                rhs = beta * output_grad(y_hat, y, loss)
                assert float(jnp.max(jnp.abs(lhs - rhs))) < 1e-12


def test_centred_nudging_cancels_the_first_order_bias_on_a_linear_net():
    """Linear net, exact equilibrium: g(β) = β a + β² b, so CN = a whatever β (rel. 1e-10)
    while PN and NN move with β, by +β b and −β b (rel. 1e-8). Float64."""
    with jax.enable_x64(True):
        m, x, y = _small_net(act="linear")
        spec = pclab.EnergySpec()
        inf = pclab.InferenceConfig(pclab.ExactSolver(), max_steps=1)
        rules = (PositiveNudging, NegativeNudging, CentredNudging)
        g = eqx.filter_jit(lambda m, x, y, betas: [
            jax.vmap(lambda b, r=r: _flat(r(beta=b).grads(m, x, y, spec, inf)[0]))(betas) for r in rules])(
            m, x, y, jnp.asarray([0.5, 0.01], F64))
        pn, nn, cn = g
        rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))  # noqa: E731
        assert rel(cn[0], cn[1]) < 1e-10
        assert rel(pn[0], cn[1]) > 0.05
        assert rel(pn[0] - cn[1], -(nn[0] - cn[1])) < 1e-8
        assert rel(pn[0] - cn[1], 50 * (pn[1] - cn[1])) < 1e-8


# ----- energy descent on dense and conv models ------------------------------------------
def _conv():
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    m = pclab.convnet(k[0], (4, 4, 1), 3, channels=(2,), blocks=1, act="tanh", unroll=False)  # rolled: compiles fast
    x = jax.random.normal(k[1], (4, 4, 4, 1))
    return m, x, jax.nn.one_hot(jnp.arange(4) % 3, 3)


def _traces(variant, m, x, y, spec, solver, steps):
    """The energy before each inference step of the variant's phase(s), (phases, T)."""
    if variant == "ipc":
        opt = optax.sgd(1e-2)
        inf = pclab.InferenceConfig(solver, max_steps=steps)
        return IPC().run(m, opt.init(eqx.filter(m, eqx.is_array)), x, y, opt, spec, inf).energies[None]
    if variant == "epc":
        return pclab.infer(m, x, y, solver=ErrorSolver(solver), spec=spec, max_steps=steps, record_energy=True,
                           throw=False).energies[None]
    signs = {"nudge-pn": (1.0,), "nudge-nn": (-1.0,), "nudge-cn": (1.0, -1.0)}[variant]
    t = [nudged_target(m(x), y, 0.5 * s, spec.loss) for s in signs]
    return jnp.stack([pclab.infer(m, x, ti, solver=solver, spec=spec, max_steps=steps, record_energy=True,
                                  throw=False).energies for ti in t])


def test_energy_decreases_during_inference_on_a_conv_pcn():
    """Every variant's inference energy falls at every step (up to 1e-6 relative) and ends
    lower than it starts, on a conv PCN with CE output (the weights move too for iPC)."""
    m, x, y = _conv()
    spec = pclab.EnergySpec("ce")
    traces = eqx.filter_jit(lambda m, x, y: {v: _traces(v, m, x, y, spec, pclab.GradientDescent(0.1), 6)
                                             for v in VARIANTS})(m, x, y)
    for v, tr in traces.items():
        tr = np.asarray(tr, np.float64)
        assert np.all(np.isfinite(tr)), v
        assert np.all(np.diff(tr, axis=1) <= 1e-6 * np.abs(tr[:, :-1])), (v, tr)
        assert np.all(tr[:, -1] < tr[:, 0]), (v, tr)


def test_ipc_runs_in_generative_mode():
    """Generative mode (labels as the free latent at the bottom, data clamped at the top): the
    latent is inferred with the activities, the energy falls at every step."""
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    m = pclab.mlp(k[0], 4, 16, 3, 20, act="tanh", param="sp")
    latent, data = jax.nn.one_hot(jnp.arange(8) % 4, 4), jax.random.normal(k[1], (8, 20))
    opt = optax.sgd(0.01)
    inf = pclab.InferenceConfig(pclab.GradientDescent(0.1), max_steps=6)
    t = eqx.filter_jit(lambda m, s, x, y: IPC().run(m, s, x, y, opt, pclab.EnergySpec(), inf, "generative"))(
        m, opt.init(eqx.filter(m, eqx.is_array)), latent, data)
    assert t.latent.shape == (8, 4) and float(jnp.max(jnp.abs(t.latent - latent))) > 0
    assert np.all(np.diff(np.asarray(t.energies)) < 0)


# ----- training, vmapped over stacked models --------------------------------------------
def _teacher_task():
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    teacher = jax.random.normal(k[0], (8, 4))
    x = jax.random.normal(k[1], (256, 8))
    return x, jax.nn.one_hot(jnp.argmax(x @ teacher, 1), 4)


_stack_loss = eqx.filter_jit(eqx.filter_vmap(pclab.loss, in_axes=(0, None, None, None)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_short_training_lowers_the_loss_and_vmaps(variant):
    """Two models stacked on a leading axis train in one vmapped step (as the lr grid runs
    them): both members' feedforward losses fall by 40% in 48 steps on a 4-class teacher
    task (CE output, Adam)."""
    x, y = _teacher_task()
    models = eqx.filter_vmap(lambda k: pclab.resnet(k, 8, 32, 4, 4, act="tanh", param="mupc"))(
        jax.random.split(jax.random.PRNGKey(7), 2))
    rule = TrainConfig(algo=variant).rule
    if variant == "ipc":
        rule = rule.with_options(weight_step=0.25)
    spec = pclab.EnergySpec("ce")
    opt = optax.adam(1e-1)
    inference = pclab.InferenceConfig(pclab.GradientDescent(0.2), max_steps=4)
    states = eqx.filter_vmap(lambda m: opt.init(eqx.filter(m, eqx.is_array)))(models)
    step = eqx.filter_jit(eqx.filter_vmap(
        lambda m, s, xb, yb: rule.update(m, s, xb, yb, opt, spec, inference), in_axes=(0, 0, None, None)))
    before = np.asarray(_stack_loss(models, x, y, spec))
    for epoch in range(6):
        for i in range(0, 256, 32):
            models, states, info = step(models, states, x[i:i + 32], y[i:i + 32])
    after = np.asarray(_stack_loss(models, x, y, spec))
    assert np.all(np.isfinite(after)) and np.all(after < 0.6 * before), (variant, before, after)


@pytest.mark.slow  # ~7 s of compilation per variant on a 2-core CPU
def test_variants_train_a_transformer_step():
    """One update of every variant on a tiny transformer PCN (token CE) is finite, changes
    the weights and does not raise the batch loss."""
    k = jax.random.split(jax.random.PRNGKey(4), 3)
    m = pclab.transformer(k[0], 7, d_model=8, heads=2, blocks=2, context=5)
    x = jax.random.randint(k[1], (4, 5), 0, 7)
    y = jax.nn.one_hot(jnp.roll(x, -1, axis=1), 7)
    spec, opt = pclab.EnergySpec("ce"), optax.sgd(0.05)
    inference = pclab.InferenceConfig(pclab.GradientDescent(0.1), max_steps=3)
    state = opt.init(eqx.filter(m, eqx.is_array))
    out = eqx.filter_jit(lambda m, s, x, y: {v: TrainConfig(algo=v).rule.update(m, s, x, y, opt, spec, inference)
                                             for v in VARIANTS})(m, state, x, y)
    l0 = float(pclab.loss(m, x, y, spec))
    for v, (new, _, info) in out.items():
        assert int(info.status) != int(pclab.Status.NONFINITE), v
        assert _rel(new, m) > 1e-6, v
        assert float(pclab.loss(new, x, y, spec)) <= l0 + 1e-6, v


# ----- refused combinations ---------------------------------------------------------------
def test_invalid_combinations_fail_when_the_run_is_built():
    for solver in ("exact", "newton"):
        with pytest.raises(ValueError, match=r"algo='ipc' .*Valid: solver='gd', 'momentum', 'adam', 'ode'"):
            TrainConfig(algo="ipc", solver=solver, act="linear")
    with pytest.raises(ValueError, match="algo='epc' needs mode='supervised'"):
        TrainConfig(algo="epc", mode="generative")
    with pytest.raises(ValueError, match="needs mode='supervised'"):
        TrainConfig(algo="nudge-cn", mode="generative")
    with pytest.raises(ValueError, match="beta=0 is not valid"):
        TrainConfig(algo="nudge-pn", algo_options={"beta": 0})
    with pytest.raises(ValueError, match="weight_step=-1 is not valid"):
        TrainConfig(algo="ipc", algo_options={"weight_step": -1})
    with pytest.raises(ValueError, match="valid options: beta"):
        TrainConfig(algo="nudge-nn", algo_options={"lr": 1})
    assert TrainConfig(algo="epc", solver="newton").rule == EPC()
    assert TrainConfig(algo="ipc", algo_options={"weight_step": 0.5}).rule == IPC(weight_step=0.5)


def test_epc_step_size_warning_follows_the_one_over_depth_rule():
    """`pclab train --algo epc` warns when η·L > 2 (η = 0.2 at L = 32 blew up the energy; 0.5/L trains)."""
    from pclab.experiments.runner import run_warning
    from pclab.learning.epc import step_size_warning

    net = pclab.resnet(jax.random.PRNGKey(0), 4, 4, 32, 2)
    message = step_size_warning(net, 0.2)
    assert "on 32 layer maps" in message and "--activity-lr 0.0156 (0.5/L)" in message
    assert step_size_warning(net, 0.5 / 32) is None and step_size_warning(net, 2 / 32) is None
    assert run_warning(TrainConfig(algo="epc", depth=32), net) == message
    assert run_warning(TrainConfig(algo="pc", depth=32), net) is None
    assert run_warning(TrainConfig(algo="epc", depth=32, solver="newton"), net) is None  # no step size
