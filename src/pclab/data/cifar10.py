"""CIFAR-10 from the standard "python version" folder ``cifar-10-batches-py``.

The folder (from ``cifar-10-python.tar.gz`` on the CIFAR-10 page) holds the pickles
``data_batch_1`` ... ``data_batch_5`` (training, 10000 images each) and ``test_batch``.
Each is a Python 2 pickle of a dict with (byte-string) keys ``data``: a uint8 array
``(10000, 3072)`` with rows laid out as 1024 red, 1024 green, 1024 blue values of a
32x32 image in row-major order, and ``labels``: a list of ints in ``[0, 10)``.

No package ships CIFAR-10, so no known checksum can be verified offline. The pickles are
read with `pclab.data.safe_pickle.safe_loads`, which refuses every global except numpy's
array rebuilders: a tampered file raises instead of running code. Images are returned
channels-last, ``(n, 32, 32, 3)`` uint8, and cached by `pclab.data.cache`.

Where the folder is looked for: the ``path`` argument, else ``PCLAB_CIFAR10_DIR``. A path
to the folder that *contains* ``cifar-10-batches-py`` works too. Once cached, no path
is needed.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from pclab.data.cache import cached_arrays
from pclab.data.errors import DatasetUnavailable
from pclab.data.safe_pickle import safe_loads

ENV_CIFAR10_DIR = "PCLAB_CIFAR10_DIR"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_HOW = (
    "Download cifar-10-python.tar.gz (the CIFAR-10 python version) from the CIFAR-10 page, "
    f"extract it, and pass load_dataset('cifar10', path='.../{CIFAR10_FOLDER}') or set "
    f"{ENV_CIFAR10_DIR}. Expected files in that folder: "
    + ", ".join(CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES)
    + "."
)


def read_cifar_batch(file: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch pickle with the restricted unpickler.

    Returns:
        ``(images (n, 32, 32, 3) uint8, labels (n,) uint8)``.

    Raises:
        pickle.UnpicklingError: the pickle names a global other than numpy's array helpers
            (refused, never called) or is no pickle; the message names the file.
        ValueError: the content is not a CIFAR-10 batch.
    """
    try:
        obj = safe_loads(Path(file).read_bytes(), encoding="bytes")
    except pickle.UnpicklingError as e:  # a refused global, or bytes that are no pickle
        raise pickle.UnpicklingError(f"{file}: {e}; expected a CIFAR-10 batch of cifar-10-batches-py") from None
    except Exception as e:  # random bytes raise anything from EOFError to UnicodeDecodeError
        raise ValueError(f"{file}: not a readable CIFAR-10 batch pickle ({type(e).__name__}: {e}); "
                         "expected the files of the python version, cifar-10-batches-py") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{file}: expected a dict, got {type(obj).__name__}")
    batch = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{file}: expected keys 'data' and 'labels', got {sorted(map(str, batch))}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{file}: 'data' must be a uint8 array (n, 3072), got {type(data).__name__} {shape}")
    labels = np.asarray(batch["labels"])
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"{file}: 'labels' must be {data.shape[0]} integers, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{file}: labels must be in [0, 10)")
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.uint8)


def cifar10_dir(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``cifar-10-batches-py`` folder from ``path`` or ``$PCLAB_CIFAR10_DIR`` (None if neither)."""
    if path is None:
        path = os.environ.get(ENV_CIFAR10_DIR) or None
    if path is None:
        return None
    folder = Path(path).expanduser()
    if (folder / CIFAR10_FOLDER).is_dir():
        folder = folder / CIFAR10_FOLDER
    return folder


def read_cifar10_dir(folder: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Parse all six batches in ``folder``: ``x_train (50000, 32, 32, 3)`` uint8, etc.

    Raises:
        DatasetUnavailable: the folder or some of its files are missing (all are listed).
    """
    folder = Path(folder)
    names = CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetUnavailable(f"CIFAR-10: {folder} lacks {', '.join(missing)}. {_HOW}")
    train = [read_cifar_batch(folder / n) for n in CIFAR10_TRAIN_FILES]
    test = [read_cifar_batch(folder / n) for n in CIFAR10_TEST_FILES]
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": np.concatenate([x for x, _ in test]),
        "y_test": np.concatenate([y for _, y in test]),
    }


def load_cifar10_arrays(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """CIFAR-10 as uint8 arrays via the cache; a ``path`` different from the cached source rebuilds."""
    folder = cifar10_dir(path)

    def build() -> dict[str, np.ndarray]:
        if folder is None:
            raise DatasetUnavailable(f"CIFAR-10 is not cached yet and no folder was given. {_HOW}")
        return read_cifar10_dir(folder)

    return cached_arrays(
        "cifar10",
        build,
        cache_dir=cache_dir,
        source="" if folder is None else str(folder.resolve()),
        require_source=folder is not None,
    )
