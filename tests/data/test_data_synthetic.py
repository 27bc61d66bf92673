"""Synthetic teachers: determinism, shapes, class balance, and that labels are a function of x."""

import jax
import numpy as np
import pytest

from pclab.data import gaussian_blobs, load_dataset, teacher_classification, teacher_regression


def test_teacher_classification_shapes_and_determinism():
    a = teacher_classification(num_classes=4, dim=6, n_train=500, n_test=100, seed=3)
    b = teacher_classification(num_classes=4, dim=6, n_train=500, n_test=100, seed=3)
    c = teacher_classification(num_classes=4, dim=6, n_train=500, n_test=100, seed=4)
    assert a["x_train"].shape == (500, 6) and a["x_train"].dtype == np.float32
    assert a["y_test"].shape == (100,) and a["y_test"].dtype == np.int64
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["y_train"], c["y_train"])


def test_test_set_and_teacher_do_not_depend_on_n_train():
    a = teacher_classification(n_train=100, n_test=50, seed=0)
    b = teacher_classification(n_train=300, n_test=50, seed=0)
    np.testing.assert_array_equal(a["x_test"], b["x_test"])
    np.testing.assert_array_equal(a["y_test"], b["y_test"])


@pytest.mark.parametrize("k,dim", [(2, 3), (5, 10), (10, 20)])
def test_classes_are_balanced(k, dim):
    y = teacher_classification(num_classes=k, dim=dim, n_train=5000, n_test=0, seed=1)["y_train"]
    freq = np.bincount(y, minlength=k) / len(y)
    assert freq.min() > 0.7 / k and freq.max() < 1.3 / k


def test_labels_are_a_function_of_inputs():
    # 1-nearest-neighbour far above chance shows the labels come from x, not noise.
    d = teacher_classification(num_classes=3, dim=4, n_train=2000, n_test=300, seed=2)
    dist = ((d["x_test"][:, None, :] - d["x_train"][None, :, :]) ** 2).sum(-1)
    acc = np.mean(d["y_train"][dist.argmin(1)] == d["y_test"])
    assert acc > 0.75


def test_load_dataset_synthetic_and_blobs():
    ds = load_dataset("synthetic", num_classes=3, dim=5, n_train=64, n_test=16, seed=0)
    assert ds.num_classes == 3 and ds.image_shape == (5,) and ds.x_train.shape == (64, 5)
    assert ds.one_hot("test").shape == (16, 3)
    blobs = load_dataset("blobs", num_classes=4, n_train=40, n_test=8)
    np.testing.assert_array_equal(np.bincount(blobs.y_train), [10, 10, 10, 10])


def test_blobs_are_separable_when_far_apart():
    d = gaussian_blobs(num_classes=3, dim=2, n_train=300, n_test=0, separation=20.0, seed=0)
    means = np.stack([d["x_train"][d["y_train"] == c].mean(0) for c in range(3)])
    pred = ((d["x_train"][:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(pred == d["y_train"]) > 0.95


@pytest.mark.parametrize(
    "kwargs,arg",
    [({"n_train": -1}, "n_train"), ({"n_test": -5}, "n_test"), ({"num_classes": 1}, "num_classes"), ({"dim": 0}, "dim")],
)
def test_bad_sizes_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=f"{arg}: expected an integer"):
        teacher_classification(**kwargs)


def test_teacher_regression_linear_is_exactly_linear():
    x, y = teacher_regression(0, 200, 5, 3, depth=3, activation="linear", dtype=np.float64)
    assert x.shape == (200, 5) and y.shape == (200, 3) and y.dtype == np.float64
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose(x @ w, y, atol=1e-10)
    _, y_tanh = teacher_regression(0, 200, 5, 3, depth=3, activation="tanh", dtype=np.float64)
    w, *_ = np.linalg.lstsq(x, y_tanh, rcond=None)
    assert np.abs(x @ w - y_tanh).max() > 1e-3  # a nonlinear teacher is not linear


def test_teacher_regression_seeds_and_keys():
    a = teacher_regression(jax.random.key(7), 10, 4, 2)
    b = teacher_regression(jax.random.PRNGKey(7), 10, 4, 2)
    c = teacher_regression(jax.random.key(8), 10, 4, 2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert a[0].dtype == np.float32
    noisy = teacher_regression(1, 10, 4, 2, noise_std=0.5)
    clean = teacher_regression(1, 10, 4, 2)
    np.testing.assert_array_equal(noisy[0], clean[0])
    assert not np.allclose(noisy[1], clean[1])
    with pytest.raises(ValueError, match="activation: expected one of"):
        teacher_regression(0, 10, 4, 2, activation="gelu")
    with pytest.raises(ValueError, match="n: expected"):
        teacher_regression(0, -1, 4, 2)
    with pytest.raises(ValueError, match="key_or_seed"):
        teacher_regression("seed", 1, 4, 2)
