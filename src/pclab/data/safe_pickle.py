"""A restricted unpickler for the numpy pickles that data sets ship as.

CIFAR-10 (python version) and the classic ``mnist.pkl.gz`` are pickles. A pickle can
name any importable callable and call it while loading, so loading an untrusted pickle
with `pickle.load` executes arbitrary code. `safe_loads` instead resolves only the few
globals that numpy arrays need; every other global (``os.system``, ``builtins.eval``,
...) is refused with `pickle.UnpicklingError` *before* anything is called.

Allowed globals and why:

- ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype``: how `numpy.ndarray.__reduce__` rebuilds an array
  (the legacy module name is what Python 2 era files contain).
- ``numpy._core.numeric._frombuffer`` (and its legacy name): arrays pickled with protocol 5.
- ``numpy.core.multiarray.scalar`` (and new name): numpy scalars (e.g. an ``np.int64`` label).
- ``_codecs.encode``: Python 3 writes ``bytes`` as ``_codecs.encode(text, "latin1")`` in
  protocols 0-2; only the latin-1 codec is accepted.

Arrays with ``object`` dtype are rebuilt from a list that goes through this same
unpickler, so they cannot smuggle in other globals; callers still check dtypes.
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import Any

import numpy as np

_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's internal `_reconstruct`


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """Safe re-implementation of numpy's protocol-5 array rebuilder."""
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"unexpected array order {order!r}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _scalar(dtype: np.dtype, data: Any = None) -> Any:
    """Safe numpy-scalar rebuilder (only plain numeric dtypes)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biufc" or not isinstance(data, (bytes, str)):
        raise pickle.UnpicklingError(f"refusing numpy scalar of dtype {dtype}")
    if isinstance(data, str):
        data = data.encode("latin1")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _encode_latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` limited to latin-1 (how protocol <= 2 stores bytes)."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("_codecs", "encode"): _encode_latin1,
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only the numpy globals listed in this module."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy arrays, plain "
                "containers, numbers, strings and bytes are allowed in data pickles"
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise pickle.UnpicklingError("refused persistent id in data pickle")


def safe_loads(data: bytes, *, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` allowing only numpy arrays and plain Python values.

    Args:
        data: the pickle bytes.
        encoding: how Python 2 ``str`` objects are decoded: ``"bytes"`` keeps them as
            bytes (CIFAR-10's dict keys), ``"latin1"`` is what Python 2 numpy arrays need.

    Raises:
        pickle.UnpicklingError: the pickle names any other global.
    """
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
