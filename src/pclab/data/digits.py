"""scikit-learn's 8x8 handwritten digits (1797 images, pixel values 0..16), split in a fixed way.

The split needs no random numbers, so it is the same on every machine and version:
within each class, taken in the order `sklearn.datasets.load_digits` returns them, every
fifth example (within-class index 4, 9, 14, ...) goes to the test set, the rest to the
training set. That is a stratified 80/20 split: 1442 train, 355 test. Both splits keep the
original order.
"""

from __future__ import annotations

import numpy as np

DIGITS_MAX_VALUE = 16
DIGITS_TEST_EVERY = 5


def stratified_every_kth(labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean test mask: within each class (in order), every ``k``-th example from the ``k``-th on."""
    labels = np.asarray(labels)
    if k < 2:
        raise ValueError(f"k: expected an integer >= 2, got {k}")
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        mask[idx[k - 1 :: k]] = True
    return mask


def load_digits_arrays() -> dict[str, np.ndarray]:
    """Digits as ``x_train (1442, 8, 8) uint8`` in 0..16, ``y_train (1442,) uint8``, ``x_test``, ``y_test``."""
    from sklearn.datasets import load_digits  # local import: scikit-learn is slow to import

    bunch = load_digits()
    pixels = np.asarray(bunch.images)
    if not np.array_equal(pixels, np.rint(pixels)) or pixels.min() < 0 or pixels.max() > DIGITS_MAX_VALUE:
        raise ValueError("load_digits returned pixels outside the integers 0..16")
    x = pixels.astype(np.uint8)
    y = np.asarray(bunch.target).astype(np.uint8)
    test = stratified_every_kth(y, DIGITS_TEST_EVERY)
    return {"x_train": x[~test], "y_train": y[~test], "x_test": x[test], "y_test": y[test]}
