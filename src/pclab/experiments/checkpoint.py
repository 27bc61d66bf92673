"""Checkpoints that never execute code when loaded and are never half-written.

A checkpoint is ``checkpoint-STEP.eqx`` (Equinox's leaf serialisation: raw NumPy arrays,
``allow_pickle=False``) plus ``checkpoint.json``, written last and atomically, which names
that file and its SHA-256 together with the loop position. Older ``.eqx`` files are removed
only after the new pointer is in place.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import equinox as eqx

from ..io import atomic_write_bytes, atomic_write_json

POINTER = "checkpoint.json"


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or does not match the run's configuration."""


def save_checkpoint(run_dir: Path, state: Any, meta: dict[str, Any]) -> None:
    """Write ``state`` (a pytree of arrays) and ``meta`` (JSON-able; must hold ``step``)."""
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    data = buf.getvalue()
    name = f"checkpoint-{int(meta['step'])}.eqx"
    atomic_write_bytes(run_dir / name, data)
    atomic_write_json(run_dir / POINTER, {**meta, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
    for old in run_dir.glob("checkpoint-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(run_dir: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Load the latest checkpoint into the structure of ``template``; verify its hash."""
    pointer = run_dir / POINTER
    if not pointer.exists():
        raise CheckpointError(f"{str(run_dir)!r} has no checkpoint ({POINTER} is missing)")
    try:
        meta = json.loads(pointer.read_text())
        data = (run_dir / meta["file"]).read_bytes()
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint in {str(run_dir)!r} is unreadable: {e}") from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise CheckpointError(f"checkpoint {meta['file']!r} is corrupt (SHA-256 mismatch)")
    try:
        state = eqx.tree_deserialise_leaves(io.BytesIO(data), template)
    except Exception as e:  # shape/structure mismatch
        raise CheckpointError(f"checkpoint {meta['file']!r} does not match the run's model: {e}") from None
    return state, meta
