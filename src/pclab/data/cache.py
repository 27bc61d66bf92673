"""A verified on-disk cache of named numpy arrays (one ``.npz`` file per data set).

Where: the ``cache_dir`` argument, else the environment variable ``PCLAB_DATA_DIR``,
else ``~/.cache/pclab/data``.

What: ``<cache_dir>/<name>.npz``, uncompressed (MNIST loads in well under a second), with
an extra member ``__manifest__`` holding JSON: a format number, the *source* the arrays
were built from, each array's dtype and shape, and a SHA-256 over the arrays' names,
dtypes, shapes and bytes. On load the digest is recomputed; a file that cannot be read,
fails zip's CRC, lacks the manifest or has a different digest is reported with a
`CacheWarning`, deleted and rebuilt from the source. It is never returned.

Writes are atomic: the file is written to a temporary file in the same directory,
flushed and fsync'ed, then moved into place with `os.replace`, so a reader sees either
the old file, the new one, or none; concurrent builders cannot mix their outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

CACHE_FORMAT = 1
MANIFEST_KEY = "__manifest__"
ENV_CACHE_DIR = "PCLAB_DATA_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ARRAY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CacheWarning(UserWarning):
    """A cache file was corrupt (and has been deleted) or could not be written."""


class CacheCorrupt(Exception):
    """Raised by `load_arrays` when a cache file fails any check."""


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$PCLAB_DATA_DIR``, else ``~/.cache/pclab/data``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "pclab" / "data"


def content_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) over the sorted names, dtypes, shapes and C-order bytes of ``arrays``."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *, source: str) -> None:
    """Atomically write ``arrays`` plus a manifest (digest, ``source``) to the npz ``path``."""
    path = Path(path)
    for key, a in arrays.items():
        if not _ARRAY_NAME.match(key) or key in ("file", "allow_pickle") or key == MANIFEST_KEY:
            raise ValueError(f"arrays: invalid array name {key!r}")
        if np.asarray(a).dtype == object:
            raise ValueError(f"arrays: {key!r} has object dtype, which the cache refuses")
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    manifest = {
        "format": CACHE_FORMAT,
        "source": source,
        "sha256": content_digest(arrays),
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
    }
    blob = np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode follows the umask
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{MANIFEST_KEY: blob})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_arrays(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a cache file written by `save_arrays`.

    Returns:
        ``(arrays, manifest)``.

    Raises:
        FileNotFoundError: no file.
        CacheCorrupt: unreadable, truncated, no manifest, or digest/dtype/shape mismatch.
    """
    data = Path(path).read_bytes()  # one read: what we verify is what we return
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        manifest = json.loads(arrays.pop(MANIFEST_KEY).tobytes().decode())
    except KeyError as err:
        raise CacheCorrupt(f"{path}: no manifest") from err
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, UnicodeDecodeError) as err:
        raise CacheCorrupt(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise CacheCorrupt(f"{path}: unknown cache format")
    described = manifest.get("arrays", {})
    if set(described) != set(arrays):
        raise CacheCorrupt(f"{path}: arrays {sorted(arrays)} differ from manifest {sorted(described)}")
    for k, a in arrays.items():
        if described[k] != {"dtype": a.dtype.str, "shape": list(a.shape)}:
            raise CacheCorrupt(f"{path}: array {k!r} does not match its manifest entry")
    if content_digest(arrays) != manifest.get("sha256"):
        raise CacheCorrupt(f"{path}: SHA-256 of the contents does not match the manifest")
    return arrays, manifest


def cached_arrays(
    name: str,
    build: Callable[[], Mapping[str, np.ndarray]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    source: str = "",
    require_source: bool = False,
) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``name``, building and caching them if needed.

    Args:
        name: file stem of the cache entry (letters, digits, ``._-``).
        build: called with no arguments when there is no valid cache entry; returns the
            arrays to cache (and to return).
        cache_dir: see `resolve_cache_dir`.
        source: a description of where the arrays come from, stored in the manifest.
        require_source: if true, an entry built from a different ``source`` is rebuilt.

    A corrupt entry triggers a `CacheWarning`, is deleted and rebuilt. If the cache
    cannot be written the arrays are still returned, with a `CacheWarning`.
    """
    if not _NAME.match(name):
        raise ValueError(f"name: expected letters, digits and '._-', got {name!r}")
    path = resolve_cache_dir(cache_dir) / f"{name}.npz"
    if path.exists():
        try:
            arrays, manifest = load_arrays(path)
        except CacheCorrupt as err:
            warnings.warn(f"corrupt cache file deleted and rebuilt: {err}", CacheWarning, stacklevel=2)
            path.unlink(missing_ok=True)
        else:
            if not require_source or manifest.get("source") == source:
                return arrays
    arrays = {k: np.asarray(v) for k, v in build().items()}
    try:
        save_arrays(path, arrays, source=source)
    except OSError as err:
        warnings.warn(f"could not write cache file {path}: {err}", CacheWarning, stacklevel=2)
    return arrays
