"""Orthogonal convolutions (arXiv 2108.05623): the matrix convention, the exact identity
‖𝒦𝒦ᵀ − I‖²_F = (n/S)^d L_orth (and its column analogue), the spectral bound, exactly orthogonal
kernels, the existence rule against optimisation, boundaries, the layer and its penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab.nn.orthogonal_conv import OrthogonalConv, orth_layers, orth_penalty
from pclab.nn.orthogonal_net import certified_radius, margins, orth_convnet
from pclab.theory import orthogonal as O
from pclab.theory import orthogonal_fit as OF

ROW = [(3, 2, 3, 2), (2, 5, 5, 2), (1, 3, 3, 3)]  # (C, M, k, S) with M <= C S^2
COLUMN = [(2, 3, 3, 1), (1, 8, 3, 2), (2, 12, 3, 2)]


def _kernel(arch, seed=0, dim=2):
    C, M, k, _ = arch
    return jnp.asarray(np.random.default_rng(seed).standard_normal((M, C) + (k,) * dim) / np.sqrt(C * k**dim))


def _sizes(k, S):
    n = -(-(2 * k - 1) // S) * S  # the smallest admissible n >= 2k - 1, and a larger one
    return n, n + 3 * S


@pytest.mark.parametrize("arch", [(2, 3, 3, 1), (3, 2, 3, 2), (1, 4, 5, 3)])
def test_conv_matrix_matches_lax_conv_on_wrapped_input(arch):
    C, M, k, S = arch
    K, n, r = _kernel(arch), 6 * S, (k - 1) // 2
    x = jnp.asarray(np.random.default_rng(1).standard_normal((C, n, n)))
    wrapped = jnp.pad(x, [(0, 0), (r, r), (r, r)], mode="wrap")
    y = jax.lax.conv_general_dilated(wrapped[None], K, (S, S), "VALID", precision="highest")[0]
    A = O.conv_matrix(K, n, S)
    assert A.shape == (M * (n // S) ** 2, C * n**2)
    np.testing.assert_allclose(A @ x.ravel(), y.ravel(), atol=1e-12)
    np.testing.assert_allclose(O.circular_conv(x, K, S), y, atol=1e-12)


def test_kernel_gram_is_wangs_strided_self_convolution():
    for (C, M, k, S) in [(2, 3, 5, 1), (3, 2, 5, 2), (2, 4, 3, 3)]:
        K = _kernel((C, M, k, S))
        P = (k - 1) // S
        G = jax.lax.conv_general_dilated(K, K, (S, S), [(P * S, P * S)] * 2, precision="highest")
        np.testing.assert_allclose(O.kernel_gram(K, S), G, atol=1e-12)


@pytest.mark.parametrize("arch", ROW + COLUMN)
def test_frobenius_identity_exact(arch):
    C, M, k, S = arch
    K = _kernel(arch, seed=sum(arch))
    L = float(O.orth_regularizer(K, S))
    case = "row" if M <= C * S**2 else "column"
    for n in _sizes(k, S):
        A = np.asarray(O.conv_matrix(K, n, S))
        E = A @ A.T if case == "row" else A.T @ A
        lhs = float(np.sum((E - np.eye(E.shape[0])) ** 2))
        assert abs(lhs - (n / S) ** 2 * L) <= 1e-10 * max(1.0, lhs)
    assert O.orthogonality_case(C, M, S) == case


def test_identity_in_one_and_three_dimensions_and_by_fft_at_large_n():
    for dim, arch, n in [(1, (2, 5, 3, 2), 10), (3, (1, 3, 3, 2), 6)]:
        K = _kernel(arch, dim=dim)
        A = O.conv_matrix(K, n, arch[3])
        E = A @ A.T if arch[1] <= arch[0] * arch[3] ** dim else A.T @ A
        lhs = float(jnp.sum((E - jnp.eye(E.shape[0])) ** 2))
        np.testing.assert_allclose(lhs, (n / arch[3]) ** dim * float(O.orth_regularizer(K, arch[3])), rtol=1e-10)
    for arch in [(3, 2, 3, 2), (1, 8, 3, 2)]:
        K, S = _kernel(arch), arch[3]
        for n in (8, 12):  # FFT and matrix agree
            em, ef = O.orthogonality_errors(K, n, S, "matrix"), O.orthogonality_errors(K, n, S, "fft")
            np.testing.assert_allclose([ef.frobenius, ef.spectral], [em.frobenius, em.spectral], rtol=1e-10)
        big = O.orthogonality_errors(K, 64, S, "fft")  # 𝒦 would be 8192 x 12288 (row case)
        np.testing.assert_allclose(float(big.frobenius) ** 2, (64 / S) ** 2 * float(O.orth_regularizer(K, S)),
                                   rtol=1e-10)


@pytest.mark.parametrize("arch", ROW + COLUMN)
def test_spectral_bound_holds_on_random_kernels(arch):
    S, n = arch[3], _sizes(arch[2], arch[3])[1]
    for seed in range(3):
        K = _kernel(arch, seed=seed)
        assert 0 < float(O.orthogonality_errors(K, n, S, "fft").spectral) <= float(O.spectral_error_bound(K, S))


def test_identity_and_pixel_shuffle_kernels_are_exactly_orthogonal():
    cases = [(O.identity_kernel(3, 3), 1, 6), (O.pixel_shuffle_kernel(1, 2), 2, 8),
             (O.pixel_shuffle_kernel(2, 3), 3, 9), (O.pixel_shuffle_kernel(2, 2, dim=1), 2, 8)]
    for K, S, n in cases:
        assert float(O.orth_regularizer(K, S)) == 0.0
        err = O.orthogonality_errors(K, n, S)
        assert float(err.frobenius) < 1e-14 and float(err.spectral) < 1e-14
        A = O.conv_matrix(K, n, S)  # square: both row and column orthogonal
        if A.shape[0] == A.shape[1]:
            np.testing.assert_allclose(A.T @ A, np.eye(A.shape[0]), atol=1e-14)


def test_existence_rule_and_case_names():
    assert O.orthogonality_case(1, 4, 2) == "row" and O.orthogonality_case(1, 5, 2) == "column"
    assert O.orthogonality_case(1, 8, 2, dim=3) == "row"
    assert not O.orthogonal_conv_exists(1, 10, 3, 4) and not O.orthogonal_conv_exists(1, 20, 1, 2)
    assert O.orthogonal_conv_exists(1, 9, 3, 4) and O.orthogonal_conv_exists(1, 20, 3, 2)
    assert O.orthogonal_conv_exists(2, 8, 1, 2, dim=1) is False and O.orthogonal_conv_exists(2, 2, 1, 2, dim=1)
    for doc in (O.orthogonal_conv_exists.__doc__, OF.probe_boundary.__doc__):
        assert "not encoded" in doc


@pytest.mark.parametrize("C, Ms, k, S, feasible_Ms", [(1, (4, 9, 10), 3, 4, (4, 9)), (1, (1, 20), 1, 2, (1,)),
                                                       (1, (3, 8), 3, 2, (3, 8))])
def test_optimising_L_orth_reaches_zero_exactly_when_the_rule_allows(C, Ms, k, S, feasible_Ms):
    fit = OF.fit_orthogonal_kernels(jax.random.PRNGKey(0), C, Ms, k, S, steps=800)
    for i, M in enumerate(Ms):
        assert O.orthogonal_conv_exists(C, M, k, S) == (M in feasible_Ms)
        loss = float(fit.loss[i, 0])
        np.testing.assert_allclose(loss, float(O.orth_regularizer(fit.kernel[i, 0, :M], S)), atol=1e-12)
        if M in feasible_Ms:
            assert loss < 1e-8
        else:  # the minima: one missing row (1, 10, 3, 4) and 20 - 4 - 1 (1, 20, 1, 2)
            assert loss > {10: 0.99, 20: 2.99}[M]


def test_valid_and_same_boundaries_probed_numerically():
    key = jax.random.PRNGKey(0)
    same = OF.probe_boundary(key, 2, 3, 3, 1, 8, "same", steps=600)
    valid = OF.probe_boundary(key, 2, 3, 3, 1, 8, "valid", steps=600)
    assert float(same[0]) < 1e-8  # zero 'same' padding admits one here (a 1 x 1 kernel padded with zeros)
    assert float(valid[0]) > 0.3  # 'valid' column case: border pixels are read by fewer taps
    A = O.conv_matrix(_kernel((2, 3, 3, 1)), 8, 1, padding="valid")
    assert A.shape == (3 * 36, 2 * 64)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="odd"):
        O.orth_regularizer(jnp.ones((2, 2, 2, 2)), 1)
    with pytest.raises(ValueError, match="stride must divide"):
        O.conv_matrix(jnp.ones((2, 2, 3, 3)), 7, 2)
    with pytest.raises(ValueError, match="C=0"):
        O.orthogonal_conv_exists(0, 2, 3, 1)
    with pytest.raises(ValueError, match="M=0"):
        O.orthogonality_case(1, 0, 1)
    with pytest.raises(ValueError, match="padding"):
        O.conv_matrix(jnp.ones((2, 2, 3, 3)), 6, 1, padding="reflect")
    with pytest.raises(ValueError, match="method"):
        O.orthogonality_errors(jnp.ones((2, 2, 3, 3)), 6, 1, method="svd")
    with pytest.raises(ValueError, match="kernel_size"):
        OrthogonalConv(2, 2, 4, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="image size"):
        OrthogonalConv(1, 2, 3, 2, key=jax.random.PRNGKey(0))(jnp.ones((1, 7, 7)))


def test_layer_penalty_and_lipschitz_certificate():
    key = jax.random.PRNGKey(0)
    layer = OrthogonalConv(2, 3, 3, 2, key=key)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 2, 8, 8)))
    y = layer(x)
    ref = (O.conv_matrix(layer.weight, 8, 2) @ x.reshape(4, -1).T).T.reshape(4, 3, 4, 4)
    np.testing.assert_allclose(y, ref + layer.bias[:, None, None], atol=1e-12)
    assert layer.case == "row" and layer.orthogonal_exists
    net = orth_convnet(key, 1, 8, channels=(4, 8), strides=(1, 2))
    assert len(orth_layers(net)) == 2 and float(orth_penalty([])) == 0.0
    np.testing.assert_allclose(orth_penalty({"a": net, "b": layer}),
                               sum(float(c.regularizer()) for c in net.convs) + float(layer.regularizer()), rtol=1e-12)
    g = jax.grad(lambda m: orth_penalty(m))(net)
    assert float(jnp.sum(g.convs[0].weight ** 2)) > 0
    rng = np.random.default_rng(1)
    xs, dx = jnp.asarray(rng.standard_normal((64, 1, 8, 8))), jnp.asarray(1e-3 * rng.standard_normal((64, 1, 8, 8)))
    ratio = jnp.linalg.norm(net(xs + dx) - net(xs), axis=1) / jnp.linalg.norm(dx.reshape(64, -1), axis=1)
    assert float(ratio.max()) <= float(net.lipschitz_bound())
    logits, labels = jnp.array([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]), jnp.array([0, 0])
    np.testing.assert_allclose(margins(logits, labels), [1.0, -3.0])
    np.testing.assert_allclose(certified_radius(logits, labels, 2.0), np.array([1.0, -3.0]) / (2 * np.sqrt(2)))
