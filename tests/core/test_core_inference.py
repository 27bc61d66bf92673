"""Inference: every solver reaches the exact equilibrium of a linear net; F* closed form."""

import jax
import jax.numpy as jnp
import optax
import pytest

import pclab
from pclab.options import Status


def _linear(kind="resnet", param="mupc", bias=False, depth=5, seed=0, dtype=None):
    dtype = jnp.float64 if dtype is None and jax.config.jax_enable_x64 else (dtype or jnp.float32)
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    build = pclab.resnet if kind == "resnet" else pclab.mlp
    m = build(k[0], 4, 6, depth, 3, act="linear", param=param, bias=bias, dtype=dtype)
    if bias:
        import equinox as eqx

        ks = jax.random.split(k[3], 3)
        m = eqx.tree_at(lambda m: (m.b_in, m.b_hidden, m.b_out), m,
                        tuple(jax.random.normal(kk, b.shape, dtype) for kk, b in zip(ks, (m.b_in, m.b_hidden, m.b_out))))
    x = jax.random.normal(k[1], (5, 4), dtype)
    y = jax.random.normal(k[2], (5, 3), dtype)
    return m, x, y


def _dense_equilibrium(m, x, y, precision):
    """Brute force: minimise the quadratic energy of the flattened activities by a dense solve."""
    z0 = m.activities(x)
    f = lambda v: jnp.sum(pclab.example_energies(m, v.reshape(z0.shape), x, y, pclab.EnergySpec("mse", precision)))  # noqa: E731
    v0 = z0.ravel()
    hess = jax.hessian(f)(v0)
    return (v0 - jnp.linalg.solve(hess, jax.grad(f)(v0))).reshape(z0.shape)


def _closed_form_energy(m, x, y, precision):
    """F* = 1/(2B) Σ rᵀ S⁻¹ r, S = I/λ + Σ_l J_l J_lᵀ (science.md §2)."""
    maps = pclab.layer_maps(m)
    s = jnp.eye(m.d_out) / precision
    j = maps[-1]
    for b in reversed(maps[1:-1]):
        s = s + j @ j.T
        j = j @ b
    s = s + j @ j.T  # J_1 = B_L…B_2
    r = y - m(x)
    return 0.5 * jnp.mean(jnp.sum(r * jnp.linalg.solve(s, r.T).T, axis=1))


@pytest.mark.parametrize("kind,param,bias", [("resnet", "mupc", False), ("mlp", "sp", False), ("mlp", "ntp", True), ("resnet", "sp", True)])
@pytest.mark.parametrize("precision", [1.0, 0.3])
def test_exact_solver_matches_dense_solve(kind, param, bias, precision):
    with jax.enable_x64(True):
        m, x, y = _linear(kind, param, bias)
        spec = pclab.EnergySpec("mse", precision)
        z_exact = pclab.infer(m, x, y, solver=pclab.ExactSolver(), spec=spec).z
        assert jnp.max(jnp.abs(z_exact - _dense_equilibrium(m, x, y, precision))) < 1e-10
        assert jnp.max(jnp.abs(pclab.activity_grad(m, z_exact, x, y, spec))) < 1e-10
        if not bias:
            assert pclab.energy(m, z_exact, x, y, spec) == pytest.approx(float(_closed_form_energy(m, x, y, precision)), rel=1e-10)


@pytest.mark.parametrize(
    "solver",
    [pclab.GradientDescent(0.3), pclab.OptaxSolver(optax.sgd(0.2, momentum=0.5)), pclab.heavy_ball(0.2),
     pclab.ODESolver(0.3)],
    ids=["gd", "optax-momentum", "heavy-ball", "ode-heun"],
)
def test_iterative_solvers_converge_to_exact(solver):
    with jax.enable_x64(True):
        m, x, y = _linear("resnet", "mupc", depth=4)
        z_exact = pclab.infer(m, x, y, solver=pclab.ExactSolver()).z
        sol = pclab.infer(m, x, y, solver=solver, max_steps=20000, atol=1e-13)
        assert int(sol.status) == Status.CONVERGED
        assert jnp.max(jnp.abs(sol.z - z_exact)) < 1e-9
        assert pclab.energy(m, sol.z, x, y) == pytest.approx(float(_closed_form_energy(m, x, y, 1.0)), rel=1e-9)


def test_step_cap_status_and_energy_trace_decreases():
    m, x, y = _linear("mlp", "sp")
    sol = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.1), max_steps=7, record_energy=True)
    assert int(sol.status) == Status.MAX_STEPS and int(sol.steps) == 7
    e = sol.energies
    assert e.shape == (7,) and bool(jnp.all(jnp.diff(e) <= 1e-12))
    assert e[-1] < e[0]


def test_rtol_stops_on_update_size():
    m, x, y = _linear("mlp", "sp")
    loose = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.1), max_steps=5000, rtol=1e-2)
    tight = pclab.infer(m, x, y, solver=pclab.GradientDescent(0.1), max_steps=5000, rtol=1e-6)
    assert int(loose.status) == int(tight.status) == Status.CONVERGED
    assert int(loose.steps) < int(tight.steps)


def test_divergence_raises_or_reports_status():
    m, x, y = _linear("resnet", "mupc", depth=6)
    # With a tolerance the loop stops at the first non-finite update ...
    sol = pclab.infer(m, x, y, solver=pclab.GradientDescent(5.0), max_steps=500, atol=1e-12, throw=False)
    assert int(sol.status) == Status.NONFINITE
    assert int(sol.steps) < 500
    # ... without one it runs all max_steps and still reports the non-finite result.
    fixed = pclab.infer(m, x, y, solver=pclab.GradientDescent(5.0), max_steps=500, throw=False)
    assert int(fixed.status) == Status.NONFINITE and int(fixed.steps) == 500
    with pytest.raises(Exception, match="inference diverged"):
        pclab.infer(m, x, y, solver=pclab.GradientDescent(5.0), max_steps=500).z.block_until_ready()


def test_generative_mode_frees_the_input():
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    m = pclab.mlp(k[0], 3, 16, 3, 8, act="tanh", param="sp")
    latent = jnp.zeros((4, 3))
    data = jax.random.normal(k[1], (4, 8))
    sol = pclab.infer(m, latent, data, mode="generative", solver=pclab.GradientDescent(0.2), max_steps=200, record_energy=True)
    assert sol.latent is not None and sol.latent.shape == (4, 3)
    assert float(jnp.abs(sol.latent).sum()) > 0  # the latent moved
    assert sol.energies[-1] < 0.8 * sol.energies[0]


def test_exact_solver_rejects_nonlinear_and_ce():
    k = jax.random.PRNGKey(0)
    m = pclab.mlp(k, 4, 6, 3, 3, act="tanh")
    x, y = jnp.ones((2, 4)), jnp.ones((2, 3))
    with pytest.raises(ValueError, match="linear model"):
        pclab.infer(m, x, y, solver=pclab.ExactSolver())
    lin = pclab.mlp(k, 4, 6, 3, 3, act="linear")
    with pytest.raises(ValueError, match="loss='mse'"):
        pclab.infer(lin, x, y, solver=pclab.ExactSolver(), spec=pclab.EnergySpec("ce"))


def test_bad_shapes_name_the_argument():
    m = pclab.mlp(jax.random.PRNGKey(0), 4, 6, 3, 3)
    with pytest.raises(ValueError, match="x has 5 features; the model's input dim d_in is 4"):
        pclab.infer(m, jnp.ones((2, 5)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="y has 2 features; the model's output dim d_out is 3"):
        pclab.infer(m, jnp.ones((2, 4)), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="different batch sizes"):
        pclab.infer(m, jnp.ones((2, 4)), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="x must be a 2-d array"):
        pclab.infer(m, jnp.ones((4,)), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="max_steps"):
        pclab.infer(m, jnp.ones((2, 4)), jnp.ones((2, 3)), max_steps=0)
    with pytest.raises(ValueError, match="lr"):
        pclab.GradientDescent(-1.0)
    for kw, msg in [(dict(width=0), "width=0"), (dict(depth=1), "depth=1"), (dict(d_in=-3), "d_in=-3")]:
        args = dict(d_in=4, width=6, depth=3, d_out=3) | kw
        with pytest.raises(ValueError, match=msg):
            pclab.mlp(jax.random.PRNGKey(0), **args)
    with pytest.raises(ValueError, match="act='sigmoidal' is not valid; expected one of 'linear', 'tanh', 'relu', 'gelu'"):
        pclab.mlp(jax.random.PRNGKey(0), 4, 6, 3, 3, act="sigmoidal")


def test_nan_input_is_refused():
    m = pclab.mlp(jax.random.PRNGKey(0), 4, 6, 3, 3)
    x = jnp.ones((2, 4)).at[0, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        pclab.infer(m, x, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="y contains NaN or inf"):
        pclab.infer(m, jnp.ones((2, 4)), jnp.full((2, 3), jnp.inf))


# ----- unrolled fixed-step loops -----------------------------------------------------------
def _loops(fn, *args):
    """The loop primitives (scan/while) at the top level of ``fn``'s jaxpr, with their lengths."""
    eqns = jax.make_jaxpr(fn)(*args).jaxpr.eqns
    return [(e.primitive.name, e.params.get("length")) for e in eqns if e.primitive.name in ("scan", "while")]


@pytest.mark.parametrize("length", [1, 2, 5])
def test_fixed_steps_unrolled_equals_scan_and_leaves_no_loop(length):
    """``fixed_steps(..., unroll=True)`` gives lax.scan's carry and stacked outputs exactly, and
    its program has no loop, also for one step (``lax.scan(unroll=True)`` keeps a one-trip
    ``while`` loop there, where XLA:CPU ran convolutions 11× slower)."""
    from pclab.inference.steps import fixed_steps

    def body(c, _):
        return 0.5 * c + jnp.sin(c), (c.sum(), None)

    c0 = jnp.linspace(-1.0, 1.0, 6)
    ref = jax.lax.scan(body, c0, None, length=length)
    got = fixed_steps(body, c0, length, unroll=True)
    assert jnp.array_equal(got[0], ref[0]) and jnp.array_equal(got[1][0], ref[1][0]) and got[1][1] is None
    assert got[1][0].shape == (length,)
    assert _loops(lambda c: fixed_steps(body, c, length, True), c0) == []
    assert _loops(lambda c: fixed_steps(body, c, length, False), c0) == [("scan", length)]


def test_one_inference_step_on_a_conv_pcn_runs_outside_any_loop():
    """A conv PCN asks for unrolled inference; with max_steps = 1 (one GD step, or a direct
    solver such as Newton) the inference must not sit in a loop: the only scans left are the
    conv net's own block scans (unrolled, length = blocks per stage)."""
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    m = pclab.convnet(k[0], (8, 8, 1), 3, channels=(2, 4), blocks=2, act="tanh")
    x, y = jax.random.normal(k[1], (2, 8, 8, 1)), jax.nn.one_hot(jnp.arange(2), 3)
    for solver in (pclab.GradientDescent(0.1), pclab.NewtonSolver()):
        loops = _loops(lambda m, x, y: pclab.infer(m, x, y, solver=solver, max_steps=1).z, m, x, y)
        assert all(name == "scan" and length == 2 for name, length in loops), (solver, loops)
