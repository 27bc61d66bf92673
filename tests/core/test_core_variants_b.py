"""PC variants, part B: bidirectional PC (bpc), hybrid/amortised PC (hpc), augmented-Lagrangian
PC (alm) and the generative-mode library (evaluate_generative, sample, samples_figure).

Limits are checked in float64 with stated tolerances: each variant reduces to PC in its
limiting setting, inference descends its energy, ALM reaches the exact BP gradient at its KKT
point, and short training runs learn."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pclab
from pclab.data import load_dataset
from pclab.experiments.config import TrainConfig
from pclab.learning import (ALM, BPC, HPC, PC, AmortisedPCN, BidirectionalPCN, CopyAmortiser, InferenceConfig,
                            TransposedBidirectionalPCN, evaluate_generative, lagrangian, sample, samples_figure)
from pclab.learning.bpc import bpc_energy
from pclab.options import Mode
from pclab.theory.alignment import cosine_similarity as cos


def _flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))])


def _net(seed, d_in, width, depth, d_out, act="tanh", param="sp", skips=False, dtype=np.float64):
    """A dense PCN with weights drawn by NumPy (pclab.mlp/resnet draw them with jax.random, whose
    compilation costs seconds per shape on a loaded CPU; the tests need only some weights)."""
    rng = np.random.default_rng(seed)
    p = pclab.get_param(param)
    draw = lambda *shape: jnp.asarray(rng.normal(size=shape) / np.sqrt(shape[-1]), dtype)  # noqa: E731
    scale = 1.0 if param == "sp" else None
    w_in, w_h, w_out = draw(width, d_in), draw(depth - 2, width, width), draw(d_out, width)
    if scale is None:  # μPC and the like: N(0, 1) weights, the scale is in the multipliers
        w_in, w_h, w_out = w_in * np.sqrt(d_in), w_h * np.sqrt(width), w_out * np.sqrt(width)
    return pclab.PCN(w_in=w_in, w_hidden=w_h, w_out=w_out, b_in=None, b_hidden=None, b_out=None,
                     act=pclab.Activation(act), skips=skips, mult=p.multipliers(d_in, width, depth, skips))


def _batch(seed, n=6, d=5, o=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d)), dtype), jnp.asarray(rng.normal(size=(n, o)), dtype)


def _compiled(fn, *args):
    """Run ``fn`` as one compiled program (model building included) and return NumPy leaves:
    on a loaded CPU, compiling one program is far cheaper than dispatching dozens of eager ops."""
    out = eqx.filter_jit(fn)(*args)
    return jax.tree_util.tree_map(lambda a: np.asarray(a) if eqx.is_array(a) else a, out)


def _check_wrapper_interface(w, base):
    """A rule's wrapper model: param_info covers every array (so μPC's per-layer lr factors
    apply, the extra weights unscaled), and its L layers are the base network's."""
    tx = pclab.scale_updates(pclab.get_param("mupc"), w)
    ones = jax.tree_util.tree_map(np.ones_like, eqx.filter(w, eqx.is_array))
    scaled, _ = tx.update(ones, tx.init(ones))
    factors = pclab.scale_updates(pclab.get_param("mupc"), base).update(
        jax.tree_util.tree_map(np.ones_like, eqx.filter(base, eqx.is_array)), None)[0]
    assert np.allclose(_flat(scaled.base), _flat(factors))
    assert len(jax.tree_util.tree_leaves(scaled)) == len(jax.tree_util.tree_leaves(eqx.filter(w, eqx.is_array)))
    assert np.all(np.asarray(_flat(eqx.tree_at(lambda t: t.base, scaled, None))) == 1.0)
    assert len(w.layers(scaled)) == len(base.layers(factors)) == base.depth


GD = InferenceConfig(pclab.GradientDescent(0.1), max_steps=10)
SPEC = pclab.EnergySpec()


# ----- bPC -----------------------------------------------------------------------------------
def test_bpc_with_zero_alpha_is_pc():
    """α = 0: same energy, same inference, same bottom-up gradients as PC; top-down gradient 0."""

    def run(m, x, y, key):
        rule = BPC(alpha=0.0)
        w = rule.prepare(m, key)
        z = m.activities(x) + 0.3
        g, info = rule.grads(w, x, y, SPEC, GD)
        g_pc, info_pc = PC().grads(m, x, y, SPEC, GD)
        return dict(w=w, same=rule.prepare(w, key) is w, e_bpc=bpc_energy(w, z, x, y, alpha=0.0),
                    e_pc=pclab.energy(m, z, x, y), g=_flat(g.base), g_pc=_flat(g_pc),
                    top_down=_flat((g.v_in, g.v_hidden, g.v_out)), f=info.energy, f_pc=info_pc.energy)

    with jax.enable_x64(True):
        m = _net(0, 5, 8, 5, 3, param="mupc", skips=True)
        r = _compiled(run, m, *_batch(0), jax.random.PRNGKey(0))
    assert isinstance(r["w"], BidirectionalPCN) and r["same"]
    _check_wrapper_interface(r["w"], m)
    assert float(r["e_bpc"]) == pytest.approx(float(r["e_pc"]), rel=1e-14)
    assert np.allclose(r["g"], r["g_pc"], rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(r["top_down"])) == 0.0
    assert float(r["f"]) == pytest.approx(float(r["f_pc"]), rel=1e-12)


def test_bpc_energy_is_pc_plus_alpha_top_down_and_inference_descends_it():
    def run(m, x, y, noise, key):
        w = BPC().prepare(m, key)
        z = m.activities(x) + 0.1 * noise
        g0, g = w.top_down(z, y)
        # written out: g_0 = V_0 φ(z_1), g_l = V_l φ(z_{l+1}), g_{L−1} = V_{L−1} y
        by_hand = (jnp.tanh(z[0]) @ w.v_in.T, jnp.tanh(z[1]) @ w.v_hidden[0].T, y @ w.v_out.T)
        top = 0.5 * (jnp.sum((x - g0) ** 2) + jnp.sum((z - g) ** 2)) / 6
        energies = {a: (bpc_energy(w, z, x, y, alpha=a), pclab.energy(m, z, x, y) + a * top) for a in (0.5, 2.0)}
        *_, descent = BPC(alpha=1.0).infer(w, x, y, SPEC, InferenceConfig(pclab.GradientDescent(0.1), 40),
                                           record_energy=True)
        return dict(g=(g0, g[0], g[-1]), by_hand=by_hand, energies=energies, trace=descent.energies)

    with jax.enable_x64(True):
        noise = np.random.default_rng(1).normal(size=(3, 6, 8))
        r = _compiled(run, _net(1, 5, 8, 4, 3), *_batch(1), noise, jax.random.PRNGKey(1))
    for a, b in zip(r["g"], r["by_hand"]):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
    for a, (e, want) in r["energies"].items():
        assert float(e) == pytest.approx(float(want), rel=1e-12)
    trace = r["trace"]
    assert np.all(np.diff(trace) < 0) and trace[-1] < 0.7 * trace[0]


def _conv(seed, dtype=jnp.float64):
    """A small residual conv PCN (two stages, a downsampling conv, one block each) and a batch."""
    m = pclab.convnet(jax.random.PRNGKey(seed), (8, 8, 1), 3, channels=(3, 4), blocks=1, dtype=dtype, unroll=False)
    rng = np.random.default_rng(seed)
    return m, jnp.asarray(rng.normal(size=(4, 8, 8, 1)), dtype), jnp.asarray(np.eye(3)[[0, 1, 2, 0]], dtype)


def _dot(a, b):
    return sum(jnp.vdot(u, v) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_bpc_on_a_conv_pcn_transposes_its_layer_maps():
    """The generic top-down maps of a conv PCN are the transposes of its linear twin: for
    activities with φ(z) = z (ReLU, z > 0), ⟨g(z, y), (v_x, v_z)⟩ = ⟨(z, y), F_V(v_x, v_z)⟩ with
    F_V = (predictions, output) of the twin with the top-down weights V, to 1e-12; with V = 0
    only the skips remain (g_{k−1} = z_k inside a stage, 0 across a transition); α = 0 gives
    PC's gradients exactly; inference descends the bPC energy."""

    def run(m, x, y, v, key):
        w = BPC().prepare(m, key)
        zp = jax.tree_util.tree_map(lambda t: jnp.abs(t) + 0.1, m.activities(x))
        vx, vz = v
        g0, g = w.top_down(zp, y, x)
        twin = eqx.combine(w.v, eqx.filter(m, eqx.is_inexact_array, inverse=True)).linear_twin()
        lhs, rhs = jnp.vdot(g0, vx) + _dot(g, vz), _dot(zp, twin.predictions(vz, vx)) + jnp.vdot(y, twin.output(vz))
        zero = eqx.tree_at(lambda t: t.v, w, jax.tree_util.tree_map(jnp.zeros_like, w.v))
        s0, s = zero.top_down(m.activities(x), y, x)
        rule = BPC(alpha=0.0)
        g_a0, info = rule.grads(w, x, y, SPEC, GD)
        g_pc, info_pc = PC().grads(m, x, y, SPEC, GD)
        *_, descent = BPC(alpha=0.5).infer(w, x, y, SPEC, InferenceConfig(pclab.GradientDescent(0.05), 30),
                                           record_energy=True)
        return dict(w=w, adj=(lhs, rhs), skips=(s0, s, m.activities(x)), g=(_flat(g_a0.base), _flat(g_pc)),
                    top=_flat(g_a0.v), f=(info.energy, info_pc.energy), trace=descent.energies)

    with jax.enable_x64(True):
        m, x, y = _conv(4)
        rng = np.random.default_rng(5)
        v = (jnp.asarray(rng.normal(size=x.shape)),
             jax.tree_util.tree_map(lambda t: jnp.asarray(rng.normal(size=t.shape)), m.activities(x)))
        r = _compiled(run, m, x, y, v, jax.random.PRNGKey(4))
    assert isinstance(r["w"], TransposedBidirectionalPCN)
    _check_wrapper_interface(r["w"], m)
    lhs, rhs = r["adj"]
    assert abs(lhs - rhs) < 1e-12 * max(1.0, abs(rhs)) and abs(rhs) > 1.0
    s0, s, z = r["skips"]
    assert np.all(s0 == 0) and np.all(s[1][-1] == 0)  # nothing maps back across the stem, nor from y
    for stage in range(2):
        assert np.array_equal(s[stage][:-1], z[stage][1:])  # block k's skip passes z_k down to k − 1
    assert np.all(s[0][-1] == 0)  # the downsampling transition has no skip
    assert np.allclose(*r["g"], rtol=1e-12, atol=1e-14) and np.max(np.abs(r["top"])) == 0.0
    assert float(r["f"][0]) == pytest.approx(float(r["f"][1]), rel=1e-12)
    trace = r["trace"]
    assert np.all(np.diff(trace) < 0) and trace[-1] < 0.9 * trace[0]


def test_hpc_copy_amortiser_is_pc_at_init_and_learns_on_conv_and_transformer():
    """Models other than the dense PCN get a copy amortiser (default), the PCN at weights W + Δ
    with Δ = 0 at initialisation: it proposes the feedforward pass, so the PCN's gradient is PC's
    exactly (float64, 1e-12), and the amortiser's gradient is ∇_Δ ½‖q(x) − z*‖²/B (checked
    against jax.grad of that, with W held fixed)."""

    def run(m, x, y, key):
        rule = HPC()
        a = rule.prepare(m, key)
        g, info = rule.grads(a, x, y, SPEC, GD)
        g_pc, info_pc = PC().grads(m, x, y, SPEC, GD)
        (_, z0), sol = rule.infer(a, x, y, SPEC, GD)
        z_star = jax.lax.stop_gradient(sol.z)
        pcn = eqx.filter(m, eqx.is_inexact_array)

        def regression(delta):  # ½‖q(x) − z*‖²/B with q = the PCN at weights W + Δ
            q = eqx.combine(jax.tree_util.tree_map(jnp.add, pcn, delta), eqx.filter(m, eqx.is_inexact_array, inverse=True))
            return 0.5 * _dot(*(2 * [jax.tree_util.tree_map(jnp.subtract, q.activities(x), z_star)])) / x.shape[0]

        by_hand = jax.grad(regression)(a.amortiser.weights)
        return dict(a=a, z0=(_flat(z0), _flat(m.activities(x))), g=(_flat(g.base), _flat(g_pc)),
                    amort=(_flat(g.amortiser), _flat(by_hand)), f=(info.energy, info_pc.energy))

    with jax.enable_x64(True):
        conv, x, y = _conv(5)
        tf = pclab.transformer(jax.random.PRNGKey(6), 5, d_model=8, heads=2, blocks=2, context=6, dtype=jnp.float64)
        tokens = jnp.asarray(np.random.default_rng(6).integers(0, 5, size=(3, 6)))
        targets = jax.nn.one_hot(jnp.roll(tokens, -1, axis=1), 5, dtype=jnp.float64)
        for m, xb, yb in ((conv, x, y), (tf, tokens, targets)):
            r = _compiled(run, m, xb, yb, jax.random.PRNGKey(7))
            assert isinstance(r["a"], AmortisedPCN) and isinstance(r["a"].amortiser, CopyAmortiser)
            assert np.array_equal(*r["z0"])  # the copy proposes the feedforward pass
            assert np.allclose(*r["g"], rtol=1e-12, atol=1e-14)
            assert float(r["f"][0]) == pytest.approx(float(r["f"][1]), rel=1e-12)
            assert np.linalg.norm(r["amort"][0]) > 0 and np.allclose(*r["amort"], rtol=1e-10, atol=1e-14)
    own = HPC(residual=False).prepare(conv, jax.random.PRNGKey(7))  # q with weights of its own, W at init
    assert np.array_equal(_flat(own.amortiser.weights), _flat(conv)) and not own.residual


# ----- hPC -----------------------------------------------------------------------------------
def _perfect_amortiser(model, amortised):
    """An amortiser whose linear skip maps [x, y] to z*(x, y) − z_ff(x) (a linear, bias-free
    PCN's equilibrium is linear in (x, y)), so that the proposal is the equilibrium."""
    d, o = model.d_in, model.d_out
    xs = jnp.concatenate([jnp.eye(d), jnp.zeros((o, d))]).astype(model.w_in.dtype)
    ys = jnp.concatenate([jnp.zeros((d, o)), jnp.eye(o)]).astype(model.w_in.dtype)
    cols = model.exact_activities(xs, ys, SPEC) - model.activities(xs)  # (L−1, D+O, N)
    skip = jnp.concatenate([jnp.zeros((d, d + o)), cols.transpose(1, 0, 2).reshape(d + o, -1).T])
    return eqx.tree_at(lambda t: t.amortiser.skip, amortised, skip)


def test_hpc_with_a_perfect_amortiser_starts_at_equilibrium():
    rule = HPC(width=16)

    def run(m, x, y, key):
        a = _perfect_amortiser(m, rule.prepare(m, key))
        (_, z0), sol = rule.infer(a, x, y, SPEC, GD)
        g, _ = rule.grads(a, x, y, SPEC, GD)
        return dict(z0=z0, z_star=m.exact_activities(x, y, SPEC), z=sol.z, grad_start=m.activity_grad(z0, x, y, SPEC),
                    grad_ff=m.activity_grad(m.activities(x), x, y, SPEC), g_amortiser=_flat(g.amortiser))

    with jax.enable_x64(True):
        r = _compiled(run, _net(2, 5, 8, 4, 3, act="linear"), *_batch(2), jax.random.PRNGKey(2))
    assert np.max(np.abs(r["z0"] - r["z_star"])) < 1e-12
    g_ff = np.max(np.abs(r["grad_ff"]))
    assert g_ff > 1e-2 and np.max(np.abs(r["grad_start"])) < 1e-12 * max(1.0, g_ff)  # zero gradient at the start
    assert np.max(np.abs(r["z"] - r["z0"])) < 1e-12  # inference does not move
    assert np.max(np.abs(r["g_amortiser"])) < 1e-12  # nothing left to learn


def test_hpc_with_a_zero_amortiser_is_pc():
    """At initialisation q ≡ 0: the residual proposal is the feedforward pass, so the PCN's
    gradient is PC's exactly, while the amortiser already learns from the equilibrium."""
    rule = HPC(width=16)

    def run(m, x, y, key):
        a = rule.prepare(m, key)
        g, info = rule.grads(a, x, y, SPEC, GD)
        g_pc, info_pc = PC().grads(m, x, y, SPEC, GD)
        return dict(a=a, out=(a(x), m(x)), g=_flat(g.base), g_pc=_flat(g_pc), g_amortiser=_flat(g.amortiser),
                    f=(info.energy, info_pc.energy))

    with jax.enable_x64(True):
        m = _net(3, 5, 8, 4, 3)
        r = _compiled(run, m, *_batch(3), jax.random.PRNGKey(3))
    assert isinstance(r["a"], AmortisedPCN) and np.allclose(*r["out"])
    _check_wrapper_interface(r["a"], m)
    assert np.allclose(r["g"], r["g_pc"], rtol=1e-12, atol=1e-14)
    assert float(r["f"][0]) == pytest.approx(float(r["f"][1]), rel=1e-12)
    assert np.linalg.norm(r["g_amortiser"]) > 0


# ----- ALM -----------------------------------------------------------------------------------
def test_alm_limits_are_pc():
    """ρ = 1, μ = 0: L is the PC energy, so one primal step is one PC step (any dual step).
    β = 0: μ stays 0 and L = ρ·F_{λ/ρ}, so T ALM steps of size γ are T PC steps of size ργ at
    precision λ/ρ, and ∇_θ L = ρ ∇_θ F_{λ/ρ} there."""
    rho, steps = 2.5, 7

    def run(m, x, y):
        one = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.1), max_steps=1).z
        _, z1, mu1, _ = ALM(rho=1.0).infer(m, x, y, SPEC, InferenceConfig(pclab.GradientDescent(0.1), 1))
        alm = ALM(rho=rho, dual_lr=0.0)
        inference = InferenceConfig(pclab.GradientDescent(0.1), steps)
        _, z, mu, _ = alm.infer(m, x, y, SPEC, inference)
        spec_pc = pclab.EnergySpec("mse", 1 / rho)
        z_pc = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.1 * rho), spec=spec_pc, max_steps=steps).z
        g, _ = alm.grads(m, x, y, SPEC, inference)
        return dict(one=(z1, one), mu1=(mu1, pclab.hidden_errors(m, z1, x)), z=(z, z_pc), mu=mu,
                    g=(_flat(g), rho * _flat(pclab.pc_weight_grad(m, z_pc, x, y, spec_pc))),
                    lag=(lagrangian(m, z, x, y, mu, rho, SPEC), rho * pclab.energy(m, z, x, y, spec_pc)))

    with jax.enable_x64(True):
        r = _compiled(run, _net(4, 5, 8, 4, 3), *_batch(4))
    assert np.max(np.abs(np.subtract(*r["one"]))) < 1e-14
    assert np.max(np.abs(np.subtract(*r["mu1"]))) < 1e-14  # μ ← 0 + β e with β = ρ = 1
    assert np.max(np.abs(np.subtract(*r["z"]))) < 1e-13 and np.max(np.abs(r["mu"])) == 0.0
    assert np.allclose(*r["g"], rtol=1e-11, atol=1e-14)
    assert float(r["lag"][0]) == pytest.approx(float(r["lag"][1]), rel=1e-12)


def test_alm_reaches_the_bp_gradient_at_its_kkt_point():
    """PC-ALM's fixed point has e = 0 and μ_l = −δ_l (the BP adjoints), so ∇_θ L = ∇_θ loss
    exactly. Measured on these tanh nets (5000 steps): relative error ≤ 1e-14 at ρ = 10
    (γ = 0.02, β = 2); at ρ = 1 (γ = 0.1, β = 0.5) two of the four did not converge (error 0.3
    and 1.0: the augmented Lagrangian needs a large enough ρ to be locally convex), while linear
    nets reach 1e-12 at ρ = 1."""
    alm = ALM(rho=10.0, dual_lr=2.0)
    inference = InferenceConfig(pclab.GradientDescent(0.02), max_steps=5000)
    run = eqx.filter_jit(lambda m, x, y: (_flat(alm.grads(m, x, y, SPEC, inference)[0]),
                                          _flat(pclab.bp_grad(m, x, y, SPEC))))
    with jax.enable_x64(True):
        for seed in (0, 1, 2, 5):
            g, g_bp = (np.asarray(a) for a in run(_net(seed, 4, 6, 5, 3), *_batch(seed, n=5, d=4)))
            assert np.linalg.norm(g - g_bp) / np.linalg.norm(g_bp) < 1e-10


def test_alm_gradient_is_closer_to_bp_than_pc_at_equal_inference_steps():
    """A 16-layer μPC ReLU ResNet at init, 16 GD steps (γ = 0.2) from the feedforward pass:
    measured cosines to BP on seeds 0–5, PC 0.79–0.87, ALM (ρ = 1, β = 1) 0.85–0.91, ALM higher
    by ≥ 0.035 on every seed (and at T = 8 and 32 too); the test asks for 0.02."""
    inference = InferenceConfig(pclab.GradientDescent(0.2), max_steps=16)

    @eqx.filter_jit
    def cosines(m, x, y):
        g_bp = pclab.bp_grad(m, x, y, SPEC)
        return (cos(PC().grads(m, x, y, SPEC, inference)[0], g_bp),
                cos(ALM(rho=1.0, dual_lr=1.0).grads(m, x, y, SPEC, inference)[0], g_bp))

    for seed in range(3):
        rng = np.random.default_rng(seed)
        m = _net(seed, 20, 32, 16, 5, act="relu", param="mupc", skips=True, dtype=np.float32)
        x = rng.normal(size=(16, 20)).astype(np.float32)
        y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 16)]
        c_pc, c_alm = (float(c) for c in cosines(m, x, y))
        assert c_alm > c_pc + 0.02, (seed, c_pc, c_alm)


def test_alm_lagrangian_decreases_without_dual_steps_and_stops_on_tolerance():
    def descend(m, x, y):
        inference = InferenceConfig(pclab.GradientDescent(0.1), max_steps=1000, atol=1e-6)
        return ALM(rho=2.0, dual_lr=0.0).infer(m, x, y, SPEC, inference, record_energy=True)[-1]

    with jax.enable_x64(True):
        run = _compiled(descend, _net(6, 5, 8, 4, 3), *_batch(6))
    trace = run.energies[: int(run.steps)]
    assert int(run.status) == int(pclab.Status.CONVERGED) and 1 < int(run.steps) < 1000
    assert np.all(np.diff(trace) <= 1e-15) and trace[-1] < trace[0]


# ----- every rule: training, vmap, validation -------------------------------------------------
RULES = {"bpc": BPC(alpha=0.5), "hpc": HPC(width=32), "alm": ALM(rho=1.0, dual_lr=0.5)}


@pytest.mark.parametrize("name", list(RULES))
def test_rule_trains_under_vmap_over_stacked_models(name):
    """Two seeds stacked on a leading axis, ``rule.update`` vmapped (as the lr grid does): the
    feedforward loss falls for both members."""
    assert type(pclab.get_rule(name)) is type(RULES[name])  # registered under its name
    rule = RULES[name]
    rng = np.random.default_rng(6)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[np.argmax(x @ rng.normal(size=(8, 4)), 1)]

    # prepared one by one (a vmapped RNG compiles several times slower), then stacked
    nets = [rule.prepare(_net(seed, 8, 32, 4, 4, dtype=np.float32), jax.random.PRNGKey(seed)) for seed in (7, 8)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.asarray(np.stack(a)), *nets)
    opt = optax.adam(1e-2)
    spec, inference = pclab.EnergySpec(), InferenceConfig(pclab.GradientDescent(0.2), max_steps=8)
    states = eqx.filter_jit(eqx.filter_vmap(lambda m: opt.init(eqx.filter(m, eqx.is_array))))(stacked)
    step = eqx.filter_jit(eqx.filter_vmap(lambda m, s, xb, yb: rule.update(m, s, xb, yb, opt, spec, inference),
                                          in_axes=(eqx.if_array(0), 0, None, None)))
    losses = []
    for epoch in range(6):
        for i in range(0, 256, 32):
            stacked, states, info = step(stacked, states, x[i:i + 32], y[i:i + 32])
            losses.append(np.asarray(info.loss))
    first, last = np.mean(losses[:4], axis=0), np.mean(losses[-4:], axis=0)
    assert first.shape == (2,) and np.all(np.isfinite(last)) and np.all(last < 0.75 * first)


def test_invalid_combinations_fail_naming_the_valid_ones():
    for algo in ("bpc", "alm"):
        with pytest.raises(ValueError, match="Valid: solver='gd', 'momentum', 'adam', 'ode'"):
            TrainConfig(algo=algo, solver="newton")
    with pytest.raises(ValueError, match="Valid: solver='gd'"):
        TrainConfig(algo="alm", solver="exact", act="linear")
    TrainConfig(algo="hpc", solver="newton")  # hPC refines with any solver
    conv = eqx.filter_eval_shape(pclab.convnet, jax.random.PRNGKey(0), (8, 8, 1), 10, channels=(4,), blocks=0)
    tf = eqx.filter_eval_shape(pclab.transformer, jax.random.PRNGKey(0), 5, d_model=8, heads=2, blocks=1, context=4)
    valid_bpc = "valid: model='mlp', 'resnet', 'conv'"
    with pytest.raises(ValueError, match=f"algo='bpc': .*{valid_bpc}; got model='transformer'"):
        BPC().validate(model="transformer")
    with pytest.raises(ValueError, match=f"{valid_bpc}; got TransformerPCN"):
        BPC().prepare(tf, jax.random.PRNGKey(1))
    BPC().validate(model="conv")
    HPC().validate(model="transformer")  # the copy amortiser fits any model
    with pytest.raises(ValueError, match="amortiser='mlp' supports the dense models only: model='mlp', 'resnet'"):
        HPC(amortiser="mlp").validate(model="conv")
    with pytest.raises(ValueError, match="amortiser='copy' works with any model; got ConvPCN"):
        HPC(amortiser="mlp").prepare(conv, jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match="amortiser='bogus' is not valid; expected one of 'mlp', 'copy'"):
        pclab.get_rule("hpc").with_options(amortiser="bogus")
    ALM().validate(model=conv)  # ALM only uses the PCN interface
    with pytest.raises(ValueError, match="alpha=-1"):
        BPC(alpha=-1.0)
    with pytest.raises(ValueError, match="rho=0"):
        ALM(rho=0.0)
    with pytest.raises(ValueError, match="not an option of HPC; valid options: width, skip, residual, amortiser_w"):
        HPC().with_options(depth=3)


# ----- generative mode -------------------------------------------------------------------------
def test_generative_training_lowers_the_reconstruction_error(tmp_path):
    """A 10 → 64 → 64 → 64 generative MLP on digits (labels at the bottom, 8×8 images at the top):
    the held-out reconstruction error falls during training; samples and their figure."""
    ds = load_dataset("digits")
    labels, images = ds.one_hot("train").astype(np.float32), ds.x_train.astype(np.float32)
    test_labels, test_images = ds.one_hot("test")[:300].astype(np.float32), ds.x_test[:300].astype(np.float32)
    model = _net(9, 10, 64, 3, 64, dtype=np.float32)
    spec, inference = pclab.EnergySpec(), InferenceConfig(pclab.GradientDescent(0.1), max_steps=10)
    opt = optax.adam(3e-3)
    state = eqx.filter_jit(opt.init)(eqx.filter(model, eqx.is_array))
    step = pclab.make_train_step(opt, "pc", spec=spec, inference=inference, mode=Mode.GENERATIVE)
    before = evaluate_generative(model, test_labels, test_images, spec, inference, batch_size=150)
    rng = np.random.default_rng(0)
    for epoch in range(6):
        perm = rng.permutation(labels.shape[0])
        for i in range(0, labels.shape[0] - 63, 64):
            idx = perm[i:i + 64]
            model, state, _ = step(model, state, labels[idx], images[idx])
    after = evaluate_generative(model, test_labels, test_images, spec, inference, batch_size=150)
    assert set(after) == {"recon_mse", "test_accuracy", "test_loss"} and after["test_loss"] == after["recon_mse"]
    assert after["recon_mse"] < 0.75 * before["recon_mse"]
    assert after["test_accuracy"] > 0.3  # classification by generative inference; chance is 0.1
    whole = evaluate_generative(model, test_labels[:150], test_images[:150], spec, inference, batch_size=150)
    halves = evaluate_generative(model, test_labels[:150], test_images[:150], spec, inference, batch_size=75)
    assert whole["recon_mse"] == pytest.approx(halves["recon_mse"], rel=1e-5)
    imgs = np.asarray(sample(model, np.eye(10, dtype=np.float32)))
    assert imgs.shape == (10, 64) and np.allclose(imgs, np.asarray(model(np.eye(10, dtype=np.float32))), atol=1e-6)
    path = samples_figure(model, 10, tmp_path / "samples.png", image_shape=(8, 8))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="image_shape=\\(28, 28\\) has 784 pixels; the model generates 64"):
        samples_figure(model, 10, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="different numbers of rows"):
        evaluate_generative(model, test_labels[:3], test_images[:4], spec, inference)
