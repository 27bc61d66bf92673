"""The ``python-stdlib`` text corpus: CPython 3.11 standard library source files, verified.

Every machine that runs pclab has the source of its Python's standard library, so this
corpus needs no download. Which files, and their exact bytes, are fixed by the manifest
shipped with pclab, ``pclab/data/manifests/python-stdlib-3.11.json`` (272 files, 3.95 MB,
made from CPython 3.11.7; every file is byte-identical in 3.11.2, see
`pclab.data.stdlib_manifest` for the selection rule).

Where the files are read from, first match wins:

1. the ``root`` argument (a folder laid out like the standard library),
2. the environment variable ``PCLAB_STDLIB_DIR``,
3. the running interpreter's ``sysconfig.get_paths()["stdlib"]``.

When the corpus is built (no valid cache entry), every file is checked against the manifest:
a missing file raises `DatasetUnavailable`, a file of different size or SHA-256 raises
`ChecksumMismatch`; both name each file and what differs, the Python version the manifest
was made from, and how to provide matching files (run under a CPython 3.11, or point
``PCLAB_STDLIB_DIR`` at the standard library folder of one). Nothing else is accepted, so a
model trained on this corpus saw the same characters on every machine.

The files are decoded as UTF-8 and encoded with `pclab.data.char_vocab` (98 tokens); the
cache entry ``python-stdlib-3.11.npz`` (see `pclab.data.cache`) holds ``tokens (N,) uint8``,
all files concatenated in manifest order, and ``offsets (F + 1,) int64``, where file ``i``
is ``tokens[offsets[i]:offsets[i + 1]]``. The entry records the manifest's digest and the
vocabulary version, and is rebuilt when either changes.

Train/validation split (`is_validation_file`): by file, from a fixed hash of its path, so
it does not depend on the machine, the order files are listed in, or which other files
exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sysconfig
from importlib import resources
from pathlib import Path, PurePosixPath

import numpy as np

from pclab.data.cache import cached_arrays
from pclab.data.char_vocab import CHAR_VOCAB_VERSION, encode_chars
from pclab.data.errors import ChecksumMismatch, DatasetUnavailable

ENV_STDLIB_DIR = "PCLAB_STDLIB_DIR"
MANIFEST_NAME = "python-stdlib-3.11.json"
SPLIT_SALT = "pclab-python-stdlib-split-v1"
DEFAULT_VAL_FRACTION = 0.1
_MAX_LISTED = 4


def default_manifest() -> dict:
    """The manifest shipped with pclab (a dict, see `pclab.data.stdlib_manifest`)."""
    return json.loads(resources.files("pclab.data").joinpath("manifests", MANIFEST_NAME).read_text("utf-8"))


def read_manifest(manifest: dict | str | os.PathLike[str] | None = None) -> dict:
    """``manifest`` itself, or read from a JSON file, or the shipped one if ``None``; checked.

    Raises:
        ValueError: not a manifest, or a path that is absolute or leaves the root.
    """
    if manifest is None:
        m = default_manifest()
    elif isinstance(manifest, dict):
        m = manifest
    else:
        m = json.loads(Path(manifest).read_text("utf-8"))
    if not isinstance(m, dict) or not isinstance(m.get("files"), list) or not m["files"]:
        raise ValueError("manifest: expected a dict with a non-empty 'files' list")
    for e in m["files"]:
        path = e.get("path") if isinstance(e, dict) else None
        if not isinstance(path, str) or not isinstance(e.get("size"), int) or not isinstance(e.get("sha256"), str):
            raise ValueError(f"manifest: bad file entry {e!r}")
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts or "\\" in path or not path:
            raise ValueError(f"manifest: file path {path!r} must be relative and stay inside the root")
    paths = [e["path"] for e in m["files"]]
    if len(set(paths)) != len(paths):
        raise ValueError("manifest: duplicate file paths")
    return m


def manifest_digest(manifest: dict) -> str:
    """SHA-256 over the manifest's file list (paths, sizes, digests, in order)."""
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()


def stdlib_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder the corpus is read from (see the module docstring for the order)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_STDLIB_DIR)
    return Path(env).expanduser() if env else Path(sysconfig.get_paths()["stdlib"])


def _how_to_fix(manifest: dict, root: Path) -> str:
    made = manifest.get("python", "?")
    versions = ", ".join(manifest.get("identical_in", [made]))
    major_minor = ".".join(str(made).split(".")[:2])
    return (
        f"The manifest was made from CPython {made} (files identical in {versions}); the files were read "
        f"from {root} (this is {platform.python_implementation()} {platform.python_version()}). Run pclab "
        f"under a CPython {major_minor}, or point {ENV_STDLIB_DIR} (or root=) at the standard library folder "
        f"of one: `python{major_minor} -c \"import sysconfig; print(sysconfig.get_paths()['stdlib'])\"`."
    )


def read_verified_files(root: str | os.PathLike[str] | None = None,
                        manifest: dict | str | os.PathLike[str] | None = None) -> list[bytes]:
    """The bytes of every manifest file under ``root``, in manifest order, each checked.

    Raises:
        ChecksumMismatch: some file's size or SHA-256 differs (each is named, with both values).
        DatasetUnavailable: the folder or some file is missing (each is named).
    """
    m = read_manifest(manifest)
    folder = stdlib_root(root)
    if not folder.is_dir():
        raise DatasetUnavailable(f"python-stdlib: the folder {folder} does not exist. {_how_to_fix(m, folder)}")
    contents, missing, changed = [], [], []
    for e in m["files"]:
        path = folder / e["path"]
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            missing.append(f"{e['path']} (missing)")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != e["size"] or digest != e["sha256"]:
            changed.append(f"{e['path']} (size {len(data)} bytes, SHA-256 {digest[:16]}...; the manifest has "
                           f"{e['size']} bytes, SHA-256 {e['sha256'][:16]}...)")
        contents.append(data)
    if changed or missing:
        problems = changed + missing
        listed = "; ".join(problems[:_MAX_LISTED])
        if len(problems) > _MAX_LISTED:
            listed += f"; and {len(problems) - _MAX_LISTED} more"
        kind = ChecksumMismatch if changed else DatasetUnavailable
        raise kind(f"python-stdlib: {len(changed)} file(s) differ from the manifest and {len(missing)} are "
                   f"missing under {folder}: {listed}. {_how_to_fix(m, folder)}")
    return contents


def encode_files(contents: list[bytes], names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Decode each file as UTF-8 and encode it with `encode_chars`.

    Returns:
        ``tokens (N,) uint8`` (all files concatenated) and ``offsets (F + 1,) int64``.
    """
    parts = []
    for i, data in enumerate(contents):
        try:
            parts.append(encode_chars(data.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise ValueError(f"{names[i] if names else i}: not UTF-8 text ({err})") from err
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    tokens = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return {"tokens": tokens.astype(np.uint8), "offsets": offsets}


def load_stdlib_tokens(*, cache_dir: str | os.PathLike[str] | None = None,
                       root: str | os.PathLike[str] | None = None,
                       manifest: dict | str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """The encoded corpus via the cache (built from verified files when there is no valid entry).

    Returns:
        ``tokens (N,) uint8`` and ``offsets (F + 1,) int64`` (module docstring).
    """
    m = read_manifest(manifest)
    digest = manifest_digest(m)
    name = "python-stdlib-3.11" if manifest is None else f"python-stdlib-{digest[:16]}"
    return cached_arrays(
        name,
        lambda: encode_files(read_verified_files(root, m), [e["path"] for e in m["files"]]),
        cache_dir=cache_dir,
        source=f"manifest sha256 {digest}; vocabulary {CHAR_VOCAB_VERSION}",
        require_source=True,
    )


def is_validation_file(path: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> bool:
    """Whether the file ``path`` (manifest-relative) belongs to the validation split.

    ``u = int(SHA-256(SPLIT_SALT + "\\0" + path)[:8 bytes]) / 2**64`` is uniform in ``[0, 1)``
    and fixed per path; the file is a validation file iff ``u < val_fraction``.
    """
    h = hashlib.sha256(f"{SPLIT_SALT}\0{path}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64 < val_fraction


def split_tokens(arrays: dict[str, np.ndarray], paths: list[str],
                 val_fraction: float = DEFAULT_VAL_FRACTION) -> dict[str, np.ndarray]:
    """Train and validation token streams: each the concatenation of its files, in manifest order.

    Returns:
        ``train (N_train,) uint8`` and ``val (N_val,) uint8``.
    """
    offsets, tokens = arrays["offsets"], arrays["tokens"]
    if len(paths) != len(offsets) - 1:
        raise ValueError(f"paths: expected {len(offsets) - 1} file names, got {len(paths)}")
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    for i, path in enumerate(paths):
        parts["val" if is_validation_file(path, val_fraction) else "train"].append(tokens[offsets[i]:offsets[i + 1]])
    return {k: np.concatenate(v) if v else np.zeros(0, np.uint8) for k, v in parts.items()}
