"""Fashion-MNIST from its original IDX files (raw or ``.gz``).

Where the files are looked for, first match wins:

1. the ``path`` argument (a folder),
2. the environment variable ``PCLAB_FASHION_MNIST_DIR``,
3. ``/usr/share/datasets/fashion-mnist``, where the Debian/Ubuntu package
   ``dataset-fashion-mnist`` installs them (``apt-get install dataset-fashion-mnist``).

Each of ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte`` may be present raw or with a ``.gz`` suffix. The files are
parsed by `pclab.data.idx.read_idx` (which checks magic numbers, sizes and lengths). A
full-size set (60,000 + 10,000 images) must then match `FASHION_SHA256`, the SHA-256 of the
published set's decoded arrays; smaller sets (subsets, test fixtures) are not checksummed.
The uint8 arrays are cached by `pclab.data.cache`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from pclab.data.cache import cached_arrays
from pclab.data.errors import ChecksumMismatch, DatasetUnavailable
from pclab.data.idx import read_idx

ENV_FASHION_DIR = "PCLAB_FASHION_MNIST_DIR"
SYSTEM_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_COMMAND = "apt-get install dataset-fashion-mnist"
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# SHA-256 of the decoded uint8 arrays (``arr.tobytes()``) of the full set. The decoded bytes,
# unlike the .gz containers, are the same in every distribution; pinned from the Debian
# package, whose pixel statistics match the published ones (``python -m pclab.data.sanity``).
FASHION_SHA256 = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
FASHION_FULL_SIZE = {"train": 60_000, "test": 10_000}
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def fashion_mnist_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder the IDX files are read from (see the module docstring for the order)."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_FASHION_DIR)
    return Path(env).expanduser() if env else SYSTEM_FASHION_DIR


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_fashion_mnist_dir(folder: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Parse the four IDX files in ``folder``.

    Returns:
        ``x_train (n, 28, 28) uint8``, ``y_train (n,) uint8``, ``x_test``, ``y_test``.

    Raises:
        DatasetUnavailable: a file is missing (the message says how to install them).
        IDXFormatError: a file is malformed or truncated.
        ValueError: shapes or labels inconsistent.
    """
    folder = Path(folder)
    files = {key: _find(folder, stem) for key, stem in FASHION_FILES.items()}
    missing = [FASHION_FILES[k] for k, f in files.items() if f is None]
    if missing:
        raise DatasetUnavailable(
            f"Fashion-MNIST: {', '.join(missing)} (raw or .gz) not found in {folder}. "
            f"Install it with `{APT_COMMAND}` (or point {ENV_FASHION_DIR} / a path= "
            "argument at a folder with the IDX files)."
        )
    arrays = {key: read_idx(f) for key, f in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{files[f'x_{split}']}: expected uint8 (n, 28, 28), got {x.dtype} {x.shape}")
        if y.dtype != np.uint8 or y.shape != (x.shape[0],):
            raise ValueError(f"{files[f'y_{split}']}: expected uint8 ({x.shape[0]},), got {y.dtype} {y.shape}")
        if y.size and y.max() > 9:
            raise ValueError(f"{files[f'y_{split}']}: labels must be in [0, 10), got max {y.max()}")
    verify_full_set(arrays, {k: str(f) for k, f in files.items()})
    return arrays


def verify_full_set(arrays: dict[str, np.ndarray], names: dict[str, str] | None = None) -> None:
    """Raise `ChecksumMismatch` if ``arrays`` has the full set's sizes but differs from it.

    ``arrays``: ``x_train (60000, 28, 28)``, ``y_train (60000,)``, ``x_test``, ``y_test``
    (uint8); ``names`` label each array in the message (default: its key).
    """
    if {s: arrays[f"y_{s}"].shape[0] for s in FASHION_FULL_SIZE} != FASHION_FULL_SIZE:
        return
    for key, expected in FASHION_SHA256.items():
        actual = hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest()
        if actual != expected:
            raise ChecksumMismatch(
                f"Fashion-MNIST {(names or {}).get(key, key)}: the decoded data's SHA-256 {actual} does not "
                f"match the published set's {expected}; the file is corrupt or not Fashion-MNIST. "
                f"Reinstall it with `{APT_COMMAND} --reinstall`."
            )


def load_fashion_mnist_arrays(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """Fashion-MNIST as uint8 arrays via the cache (built from the IDX files if needed).

    An explicit ``path`` (or ``PCLAB_FASHION_MNIST_DIR``) different from the folder the
    cache was built from causes a rebuild.
    """
    folder = fashion_mnist_dir(path)
    explicit = path is not None or bool(os.environ.get(ENV_FASHION_DIR))
    return cached_arrays(
        "fashion-mnist",
        lambda: read_fashion_mnist_dir(folder),
        cache_dir=cache_dir,
        source=str(folder.resolve()),
        require_source=explicit,
    )
