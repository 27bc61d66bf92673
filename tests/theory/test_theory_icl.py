"""In-context learning as implicit updates (arXiv 2507.16003, 2512.11255), checked in float64:
the block with its context equals the context-free block with W_1 + ΔW_i, b_2 + Δb_i.

Random blocks here; the trained models (with and without LN) are checked to the same 1e-10 by
tests/experiments/test_exp_icl.py, which trains them once for the reproduction."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pclab
from pclab import theory as T
from pclab.nn.ops import layer_norm, linear
from pclab.theory import icl_task

F64 = jnp.float64
TOL = 1e-10


@functools.lru_cache
def _model(pre_norm=True):
    """A random μPC transformer (a_1 ≠ 1) whose every block parameter, biases and LN gains
    included, is perturbed (NumPy noise: no compilation per leaf)."""
    m = pclab.transformer(jax.random.PRNGKey(0), 7, d_model=8, heads=2, blocks=2, context=6,
                          pre_norm=pre_norm, param="mupc", dtype=F64)
    leaves, tdef = jax.tree_util.tree_flatten(m.blocks)
    rng = np.random.default_rng(0)
    noisy = [jnp.asarray(np.asarray(a) + 0.3 * rng.standard_normal(a.shape)) for a in leaves]
    return eqx.tree_at(lambda mm: mm.blocks, m, jax.tree_util.tree_unflatten(tdef, noisy))


def _tokens(t=6):
    return jnp.asarray(np.random.default_rng(3).integers(0, 7, (3, t)))


@functools.lru_cache
def _setup(pre_norm=True):
    """(model, token ids (3, 6), activities (3, 3, 6, 8)), computed once per process."""
    m, x = _model(pre_norm), _tokens()
    return m, x, m.activities(x)


@functools.lru_cache
def _bidirectional(pre_norm):
    """The model's attention sub-block without the causal mask (one function per model)."""
    m = _model(pre_norm)
    mult = dict(m.mult)

    def att(blk, h):
        b, t, d = h.shape
        hn = layer_norm(h, *blk.ln1) if m.pre_norm else h
        q, k, v = (mult["q"] * linear(hn, w).reshape(b, t, m.heads, d // m.heads) for w in (blk.wq, blk.wk, blk.wv))
        p = jax.nn.softmax(mult["logit"] * jnp.einsum("bthe,bshe->bhts", q, k), axis=-1)
        return mult["o"] * linear(jnp.einsum("bhts,bshe->bthe", p, v).reshape(b, t, d), blk.wo)

    return att


@pytest.mark.parametrize("pre_norm", [True, False])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("query", ["own", "embedding", "fixed"])
def test_identity_every_position_and_block(pre_norm, causal, query):
    m, x, z = _setup(pre_norm)
    att = None if causal else _bidirectional(pre_norm)
    q = {"own": None, "embedding": z[0], "fixed": z[0][0, 2]}[query]
    for k in range(m.n_blocks):
        blk = m.block_params(k)
        err = T.implicit_update_error(m, blk, z[k], query=q, attention=att)
        assert err.shape == (3, 6) and float(jnp.max(err)) < TOL
        if causal:  # against the model's own block output, not only our re-composition
            upd = T.implicit_updates(m, blk, z[k], query=q)
            xq = z[k] if q is None else jnp.broadcast_to(q, z[k].shape)
            np.testing.assert_allclose(T.context_free_block(m, blk, xq, upd), z[k + 1], rtol=TOL, atol=TOL)
        else:  # the unmasked block really is a different function of the context
            assert float(jnp.max(jnp.abs(T.block_with_context(m, blk, z[k], attention=att) - z[k + 1]))) > 1e-2


def test_without_update_the_context_free_block_is_wrong():
    m, x, z = _setup()
    gap = jnp.abs(T.context_free_block(m, m.block_params(0), z[0]) - z[1])
    assert float(jnp.max(gap[:, 0])) < TOL and float(jnp.min(jnp.max(gap[:, 1:], axis=-1))) > 1e-3


@pytest.mark.parametrize("pre_norm", [True, False])
def test_each_update_has_rank_one(pre_norm):
    m, x, z = _setup(pre_norm)
    for k in range(m.n_blocks):
        s = np.linalg.svd(np.asarray(T.implicit_updates(m, m.block_params(k), z[k]).dw), compute_uv=False)
        assert s.shape == (3, 6, 8)
        assert np.all(s[:, 1:, 0] > 1e-3)                        # position 0 has no context: ΔW_0 = 0
        assert np.all(s[:, 1:, 1] < 1e-12 * s[:, 1:, 0]) and np.all(s[:, 0, 0] < 1e-12)


@functools.lru_cache
def _sub_blocks(pre_norm):
    """The model's own attention and MLP sub-blocks, jitted once (references below are NumPy)."""
    m = _model(pre_norm)
    return jax.jit(lambda blk, h: m.attention(blk, h)), jax.jit(lambda blk, u: m.mlp(blk, u))


def _ln(x, gain, bias):
    x, gain, bias = (np.asarray(a) for a in (x, gain, bias))
    mu = x.mean(-1, keepdims=True)
    return gain * (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) + bias


@pytest.mark.parametrize("pre_norm", [True, False])
def test_dherin_formula_is_the_special_case(pre_norm):
    """No skip path, last position: ΔW = W ΔA A(x)ᵀ/‖A(x)‖² (LN₂(A) with pre-norm), Δb = 0."""
    m, x, z = _setup(pre_norm)
    att, mlp = _sub_blocks(pre_norm)
    blk, h = m.block_params(1), z[1]
    d = T.dherin_update(m, blk, h[:, :-1], h[:, -1])
    general = T.implicit_updates(m, blk, h, skip=False)
    np.testing.assert_allclose(general.dw[:, -1], d.dw, atol=1e-13)
    assert float(jnp.max(jnp.abs(general.bias))) == 0.0
    a, a_x = np.asarray(att(blk, h))[:, -1], np.asarray(att(blk, h[:, -1:]))[:, 0]   # A(C, x), A(x)
    if pre_norm:
        a, a_x = _ln(a, *blk.ln2), _ln(a_x, *blk.ln2)
    formula = np.einsum("bf,bd->bfd", (a - a_x) @ np.asarray(blk.w1).T, a_x) / (a_x**2).sum(-1)[:, None, None]
    np.testing.assert_allclose(d.dw, formula, atol=1e-13)
    # T_W(C, x) = T_{W+ΔW}(x) for T = MLP(A(C, x))
    np.testing.assert_allclose(T.context_free_block(m, blk, h[:, -1], d, skip=False),
                               mlp(blk, att(blk, h))[:, -1], rtol=TOL, atol=TOL)
    # with the residual stream the update differs: A(x) + x, not A(x), spans it
    assert float(jnp.max(jnp.abs(T.implicit_updates(m, blk, h).dw[:, -1] - d.dw))) > 1e-3
    np.testing.assert_allclose(T.dherin_update(m, blk, h[0, :-1], h[0, -1]).dw, d.dw[0], atol=1e-14)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_bias_update_alone_accounts_for_the_skip_path(pre_norm):
    m, x, z = _setup(pre_norm)
    att, _ = _sub_blocks(pre_norm)
    blk, h, q = m.block_params(1), z[1], z[0]          # query: the first block's input, so Δz ≠ 0
    upd = T.implicit_updates(m, blk, h, query=q)
    a_x = np.asarray(att(blk, q.reshape(-1, 1, 8))).reshape(q.shape)
    d_a, d_z = np.asarray(att(blk, h)) - a_x, np.asarray(h - q)
    np.testing.assert_allclose(upd.bias, d_a + d_z, atol=1e-13)              # Δb = ΔA + Δz
    w_only = eqx.tree_at(lambda u: u.bias, upd, jnp.zeros_like(upd.bias))
    np.testing.assert_allclose(T.context_free_block(m, blk, q, w_only) + upd.bias, z[2], rtol=TOL, atol=TOL)
    u_x, w1 = np.asarray(q) + a_x, np.asarray(blk.w1)
    if pre_norm:  # the normalised residual stream replaces A(x) + x
        n_x, n_c = _ln(u_x, *blk.ln2), _ln(np.asarray(h) + d_a + a_x, *blk.ln2)
        np.testing.assert_allclose(upd.left, (n_c - n_x) @ w1.T, atol=1e-12)
        np.testing.assert_allclose(upd.right, n_x / (n_x**2).sum(-1, keepdims=True), atol=1e-13)
    else:         # ΔW = W_1 (ΔA + Δz)(A(x) + x)ᵀ / ‖A(x) + x‖² (arXiv 2512.11255)
        np.testing.assert_allclose(upd.left, (d_a + d_z) @ w1.T, atol=1e-12)
        np.testing.assert_allclose(upd.right, u_x / (u_x**2).sum(-1, keepdims=True), atol=1e-13)
    assert dict(m.mult)["1"] != 1.0  # the multiplier a_1 is in play and cancels


def test_stack_updates_chain_to_the_output():
    m, x, z = _setup()
    upd, inputs = T.stack_implicit_updates(m, m.embedding(x))
    np.testing.assert_allclose(inputs, z[:-1], atol=1e-13)
    out = z[0]
    for k in range(2):
        one = T.implicit_updates(m, m.block_params(k), z[k])
        np.testing.assert_allclose(upd.dw[k], one.dw, atol=1e-13)
        out = T.context_free_block(m, m.block_params(k), out, jax.tree_util.tree_map(lambda a: a[k], upd))
    np.testing.assert_allclose(out, z[-1], rtol=TOL, atol=TOL)


def test_metrics_from_factors_match_dense():
    m, x, _ = _setup()
    upd, _ = T.stack_implicit_updates(m, m.embedding(x))               # leading (2, 3, 6)
    dw = np.asarray(upd.dw).reshape(2, 3, 6, -1)
    unit = dw / np.maximum(np.linalg.norm(dw, axis=-1, keepdims=True), 1e-300)
    cos_pos = np.asarray(T.update_cosines(upd, axis=-1))
    np.testing.assert_allclose(cos_pos[:, :, 1:, 1:], np.einsum("nbif,nbjf->nbij", unit, unit)[:, :, 1:, 1:],
                               atol=1e-12)
    assert np.all(np.isnan(cos_pos[:, :, 0]))                           # ΔW_0 = 0: no cosine
    cos_blk = np.asarray(T.update_cosines(upd, axis=0))
    np.testing.assert_allclose(cos_blk[:, 1:], np.einsum("kbif,lbif->bikl", unit, unit)[:, 1:], atol=1e-12)
    np.testing.assert_allclose(upd.norm, np.linalg.norm(dw, axis=-1), rtol=1e-12)
    a, b = (jax.tree_util.tree_map(lambda t, i=i: t[:, :, i], upd) for i in (2, 4))
    np.testing.assert_allclose(T.update_inner(a, b), np.sum(dw[:, :, 2] * dw[:, :, 4], -1), rtol=1e-10, atol=1e-14)
    s = np.asarray(T.summed_update_spectrum(upd, axis=-1))
    np.testing.assert_allclose(s, np.linalg.svd(np.asarray(upd.dw).sum(2), compute_uv=False), rtol=1e-10, atol=1e-13)
    assert np.all(np.asarray(T.numerical_rank(s)) <= 7)                 # LN centring: left factors ⊥ W_1 1
    assert int(T.numerical_rank(jnp.array([2.0, 1.0, 1e-12]))) == 2
    np.testing.assert_allclose(T.effective_rank(jnp.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])), [1.0, 3.0])


def test_icl_task_baselines():
    b = icl_task.regression_prompts(jax.random.PRNGKey(0), 64, 8, 3, dtype=F64)
    assert b.tokens.shape == (64, 9, 4) and np.all(np.asarray(b.tokens[:, -1, -1]) == 0)
    np.testing.assert_allclose(b.target, jnp.einsum("bd,bd->b", b.tokens[:, -1, :3], b.w) / np.sqrt(3), atol=1e-13)
    pred = icl_task.baseline_predictions(b)
    np.testing.assert_allclose(pred["least squares"], b.target, atol=1e-9)   # noise-free, 8 > 3 pairs
    sw = icl_task.context_sweep(b)
    assert sw.tokens.shape == (64 * 8, 9, 4) and np.all(np.asarray(sw.tokens[:, :, -1])[np.arange(512),
                                                                                      np.asarray(sw.query_pos)] == 0)
    r = icl_task.regression_prompts(jax.random.PRNGKey(0), 64, 8, 3, min_context=2, dtype=F64)
    assert int(r.query_pos.min()) >= 2 and len(set(np.asarray(r.query_pos).tolist())) > 3


# ----- bad input -------------------------------------------------------------------------------
def test_tokens_whose_width_does_not_match_the_block():
    m = _model()
    with pytest.raises(ValueError, match=r"h has token width 9 but the block has width d = 8"):
        T.implicit_updates(m, m.block_params(0), jnp.ones((2, 4, 9)))
    with pytest.raises(ValueError, match=r"h0 has token width 5"):
        T.stack_implicit_updates(m, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"context has token width 3"):
        T.dherin_update(m, m.block_params(0), jnp.ones((4, 3)), jnp.ones(3))
    with pytest.raises(ValueError, match=r"query has shape \(7,\)"):
        T.implicit_updates(m, m.block_params(0), jnp.ones((4, 8)), query=jnp.ones(7))
    with pytest.raises(ValueError, match=r"h must be \(T, d\) or \(B, T, d\)"):
        T.implicit_updates(m, m.block_params(0), jnp.ones(8))


def test_an_empty_context():
    m = _model()
    with pytest.raises(ValueError, match=r"h has 0 tokens \(an empty context\)"):
        T.implicit_updates(m, m.block_params(0), jnp.ones((2, 0, 8)))
    with pytest.raises(ValueError, match=r"context has 0 tokens \(an empty context\)"):
        T.dherin_update(m, m.block_params(0), jnp.ones((0, 8)), jnp.ones(8))
    with pytest.raises(ValueError, match=r"n_context=0"):
        icl_task.regression_prompts(jax.random.PRNGKey(0), 4, 0, 2)


def test_a_block_without_an_mlp():
    m = _model()
    blk = m.block_params(0)
    no_mlp = eqx.tree_at(lambda b: (b.w1, b.b1, b.w2, b.b2), blk, (None,) * 4)
    with pytest.raises(ValueError, match=r"blk has no MLP"):
        T.implicit_updates(m, no_mlp, jnp.ones((4, 8)))
    empty = eqx.tree_at(lambda b: (b.w1, b.b1, b.w2), blk, (jnp.ones((0, 8)), jnp.ones(0), jnp.ones((8, 0))))
    with pytest.raises(ValueError, match=r"blk has no MLP: blk.w1 has shape \(0, 8\)"):
        T.implicit_update_error(m, empty, jnp.ones((4, 8)))
    with pytest.raises(ValueError, match=r"blk.w1 has shape \(2, 32, 8\); pass one block"):
        T.implicit_updates(m, m.blocks, jnp.ones((4, 8)))
    with pytest.raises(ValueError, match=r"model must be a TransformerPCN"):
        T.implicit_updates(pclab.mlp(jax.random.PRNGKey(0), 2, 4, 2, 1), blk, jnp.ones((4, 8)))
