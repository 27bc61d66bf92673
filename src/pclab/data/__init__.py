"""Data sets for pclab: real image sets, synthetic teachers, verified caching and batching.

Quick start::

    import jax
    from pclab.data import load_dataset, batches

    ds = load_dataset("digits")            # Dataset: x_train (1442, 64) float32, y_train int64
    for xb, yb in batches(ds.x_train, ds.one_hot(), 32, key=jax.random.key(0)):
        ...

Every loader returns a `Dataset` with inputs flattened to ``(n, d)`` float32 and labels
``(n,)`` int64. Sets that must be fetched or parsed (MNIST, Fashion-MNIST, CIFAR-10) are
cached as verified ``.npz`` files (see `pclab.data.cache`). When a set cannot be obtained,
`DatasetUnavailable` says which command or path provides it.

Token sequences for next-token prediction (a Python-source character corpus, a Dyck
grammar) load with `load_text_dataset` as a `TextDataset` of ``(n, T)`` int32 windows::

    from pclab.data import bits_per_char, load_text_dataset, one_hot_tokens

    ds = load_text_dataset("python-stdlib", 64)   # x_train, y_train (n, 64) int32, V = 98
"""

from pclab.data.batching import batches, num_batches, train_val_split
from pclab.data.cache import CacheWarning, cached_arrays, resolve_cache_dir
from pclab.data.cifar10 import CIFAR10_CLASSES, read_cifar_batch
from pclab.data.dataset import Dataset, one_hot
from pclab.data.errors import ChecksumMismatch, DatasetUnavailable, IDXFormatError
from pclab.data.fashion_mnist import FASHION_CLASSES
from pclab.data.idx import read_idx, write_idx
from pclab.data.mnist import MNIST_PKL_SHA256
from pclab.data.registry import DATASETS, dataset_image_shape, dataset_size, load_dataset
from pclab.data.safe_pickle import safe_loads
from pclab.data.synthetic import gaussian_blobs, teacher_classification, teacher_regression
from pclab.data.text import (
    TEXT_DATASETS,
    TextDataset,
    bits_per_char,
    load_text_dataset,
    next_token_windows,
    one_hot_tokens,
)

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_CLASSES",
    "MNIST_PKL_SHA256",
    "TEXT_DATASETS",
    "CacheWarning",
    "ChecksumMismatch",
    "Dataset",
    "DatasetUnavailable",
    "IDXFormatError",
    "TextDataset",
    "batches",
    "bits_per_char",
    "cached_arrays",
    "dataset_size",
    "dataset_image_shape",
    "gaussian_blobs",
    "load_dataset",
    "load_text_dataset",
    "next_token_windows",
    "num_batches",
    "one_hot",
    "one_hot_tokens",
    "read_cifar_batch",
    "read_idx",
    "resolve_cache_dir",
    "safe_loads",
    "teacher_classification",
    "teacher_regression",
    "train_val_split",
    "write_idx",
]
