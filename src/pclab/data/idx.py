"""Reader and writer for IDX files, the container of MNIST and Fashion-MNIST.

Layout (all big-endian): two zero bytes, a type code, the number of dimensions ``ndim``,
then ``ndim`` uint32 sizes, then the ``prod(sizes)`` values in C order. Files may be
gzip-compressed (detected from the content, not the file name).

`read_idx` checks every part of that layout: the zero bytes, a known type code, the
header length, and that the payload is *exactly* as long as the sizes say, so a
truncated or padded file raises `IDXFormatError` instead of returning garbage.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from pclab.data.errors import IDXFormatError

# type code -> big-endian numpy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse the (already decompressed) bytes of one IDX file.

    Returns:
        an array of shape ``sizes`` with the native-endian dtype of the type code
        (``uint8`` for MNIST images and labels).

    Raises:
        IDXFormatError: bad magic number, unknown type code, or a length that does not
            match the header.
    """
    if len(data) < 4:
        raise IDXFormatError(f"{source}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{source}: bad magic number {data[:4].hex()} (an IDX file starts with 0000)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise IDXFormatError(f"{source}: unknown IDX type code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(
            f"{source}: truncated header ({len(data)} bytes, need {header} for {ndim} dims)"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{source}: file {kind}: {len(data)} bytes but header shape {shape} "
            f"of {dtype.str[1:]} needs exactly {expected}"
        )
    out = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return out.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed. See `parse_idx` for the checks.

    Raises:
        IDXFormatError: malformed file, including a truncated gzip stream.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({err})") from err
    return parse_idx(data, source=str(path))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if ``compress``); for tests and tools."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"array: dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array: ndim must be in 1..255, got {array.ndim}")
    header = bytes([0, 0, codes[native], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[native]]).tobytes()
    Path(path).write_bytes(gzip.compress(payload) if compress else payload)
