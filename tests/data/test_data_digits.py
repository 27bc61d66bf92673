"""scikit-learn digits: shapes, value range, train-only standardisation, fixed stratified split."""

import numpy as np
import pytest

from pclab.data import load_dataset
from pclab.data.digits import stratified_every_kth


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_raw():
    return load_dataset("digits", normalise=False)


def test_shapes_and_types(digits):
    assert digits.image_shape == (8, 8) and digits.num_classes == 10
    assert digits.x_train.shape == (1442, 64) and digits.x_test.shape == (355, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.images("test").shape == (355, 8, 8)


def test_unnormalised_values_are_sixteenths(digits_raw):
    x = np.concatenate([digits_raw.x_train, digits_raw.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x * 16, np.rint(x * 16), atol=1e-5)


def test_standardised_with_train_statistics(digits, digits_raw):
    assert abs(float(digits.x_train.mean(dtype=np.float64))) < 1e-6
    assert float(digits.x_train.std(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
    train = digits_raw.x_train.astype(np.float64)
    assert float(digits.mean) == pytest.approx(train.mean(), abs=1e-7)
    assert float(digits.std) == pytest.approx(train.std(), abs=1e-7)
    # the test set uses the *train* statistics, so its mean is not forced to 0
    np.testing.assert_allclose(digits.x_test, (digits_raw.x_test - digits.mean) / digits.std, atol=1e-5)
    np.testing.assert_allclose(digits.unnormalise(digits.x_test), digits_raw.x_test, atol=1e-5)


def test_split_is_deterministic_stratified_and_complete(digits):
    again = load_dataset("digits")
    np.testing.assert_array_equal(digits.x_train, again.x_train)
    np.testing.assert_array_equal(digits.y_test, again.y_test)
    from sklearn.datasets import load_digits

    y = load_digits().target
    counts = np.bincount(y, minlength=10)
    np.testing.assert_array_equal(np.bincount(digits.y_test, minlength=10), counts // 5)
    np.testing.assert_array_equal(np.bincount(digits.y_train, minlength=10), counts - counts // 5)


def test_stratified_every_kth():
    labels = np.array([0, 1, 0, 0, 1, 1, 0, 2])
    np.testing.assert_array_equal(
        stratified_every_kth(labels, 2), [False, False, True, False, True, False, True, False]
    )
    with pytest.raises(ValueError, match="k"):
        stratified_every_kth(labels, 1)
