"""Make the manifest of the ``python-stdlib`` text corpus (which files, their sizes and SHA-256).

The shipped manifest, ``pclab/data/manifests/python-stdlib-3.11.json``, was made with::

    python -m pclab.data.stdlib_manifest src/pclab/data/manifests/python-stdlib-3.11.json \\
        --same-as python3.11            # a second CPython 3.11 of another patch release

run by the CPython whose standard library it describes. The selection rule (`select_files`):
every ``*.py`` file of the standard library folder, outside the folders in `EXCLUDED_DIRS`
(test suites, GUI and demo code, code that Debian ships in separate packages, codec tables,
generated data) and outside any folder named ``test``, ``tests`` or ``__pycache__``, that is
byte-identical in the standard library of every ``--same-as`` interpreter. Files that are the
same in two patch releases rarely change in a third, so the corpus is the same on every
CPython 3.11.x we know of. A file whose bytes differ between the releases (bug fixes,
Debian patches) is left out rather than pinned to one release.

The manifest is JSON: ``name``, ``format``, ``python`` (the version it was made from),
``identical_in`` (every version checked), ``selection`` (this rule in words), ``total_bytes``
and ``files``: a list, sorted by path, of ``{"path": relative POSIX path, "size": bytes,
"sha256": hex digest of the file's bytes}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

MANIFEST_FORMAT = 1
EXCLUDED_DIRS = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "lib2to3", "distutils", "ensurepip", "venv",
    "pydoc_data", "encodings", "site-packages", "dist-packages", "__pycache__", "__phello__",
})  # fmt: skip
SELECTION = (
    "every *.py file of the CPython standard library outside the folders "
    f"{sorted(EXCLUDED_DIRS)} (and any folder named test, tests or __pycache__, or config-*), "
    "byte-identical in every version listed in identical_in"
)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def candidate_files(root: str | os.PathLike[str]) -> list[str]:
    """Relative POSIX paths of the ``*.py`` files under ``root`` that the rule considers, sorted."""
    root = Path(root)
    out = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        dirs = rel.parts[:-1]
        if dirs and (dirs[0] in EXCLUDED_DIRS or dirs[0].startswith("config-")):
            continue
        if any(d in ("test", "tests", "__pycache__") for d in dirs) or not p.is_file():
            continue
        out.append(rel.as_posix())
    return sorted(out)


def select_files(root: str | os.PathLike[str], same_as: list[str | os.PathLike[str]] = ()) -> list[str]:
    """`candidate_files` of ``root`` whose bytes are identical under every folder of ``same_as``."""
    root = Path(root)
    keep = []
    for rel in candidate_files(root):
        data = (root / rel).read_bytes()
        if all((Path(o) / rel).is_file() and (Path(o) / rel).read_bytes() == data for o in same_as):
            keep.append(rel)
    return keep


def make_manifest(root: str | os.PathLike[str], files: list[str], *, python: str,
                  identical_in: list[str] | None = None, selection: str = SELECTION,
                  name: str = "python-stdlib") -> dict:
    """The manifest (a JSON-ready dict) of ``files`` (relative paths) under ``root``."""
    root = Path(root)
    entries = []
    for rel in sorted(files):
        data = (root / rel).read_bytes()
        entries.append({"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return {
        "name": name,
        "format": MANIFEST_FORMAT,
        "python": python,
        "identical_in": identical_in or [python],
        "selection": selection,
        "total_bytes": sum(e["size"] for e in entries),
        "files": entries,
    }


def write_manifest(path: str | os.PathLike[str], manifest: dict) -> None:
    """Write ``manifest`` as indented JSON (one file entry per line, for readable diffs)."""
    head = {k: v for k, v in manifest.items() if k != "files"}
    lines = [json.dumps(e, sort_keys=True) for e in manifest["files"]]
    text = json.dumps(head, indent=1, sort_keys=True)[:-2]  # drop the closing "\n}"
    text += ',\n "files": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    json.loads(text)  # what we write must parse
    Path(path).write_text(text, encoding="utf-8")


def _interpreter(exe: str) -> tuple[str, str]:
    """(version, stdlib folder) of another Python interpreter."""
    code = "import platform, sysconfig; print(platform.python_version()); print(sysconfig.get_paths()['stdlib'])"
    out = subprocess.run([exe, "-c", code], check=True, capture_output=True, text=True).stdout.split("\n")
    return out[0].strip(), out[1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pclab.data.stdlib_manifest", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="where to write the manifest (JSON)")
    parser.add_argument("--same-as", action="append", default=[], metavar="PYTHON",
                        help="another interpreter whose standard library must hold identical files")
    args = parser.parse_args(argv)
    if platform.python_implementation() != "CPython":
        parser.error("run this with CPython")
    root = sysconfig.get_paths()["stdlib"]
    others = [_interpreter(exe) for exe in args.same_as]
    files = select_files(root, [stdlib for _, stdlib in others])
    version = platform.python_version()
    manifest = make_manifest(root, files, python=version, identical_in=[version, *(v for v, _ in others)])
    write_manifest(args.out, manifest)
    print(f"{args.out}: {len(files)} files, {manifest['total_bytes']} bytes, from CPython {version}"
          f"{' (identical in ' + ', '.join(v for v, _ in others) + ')' if others else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
