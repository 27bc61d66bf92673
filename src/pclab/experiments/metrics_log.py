"""``metrics.jsonl``: one JSON object per evaluation. Every write replaces the whole file
atomically (temporary file, fsync, rename), so the file always holds complete rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..io import atomic_write_text


def _clean(v: Any) -> Any:
    """NaN/inf are not JSON: store them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_clean(u) for u in v]
    return v


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a metrics file (a torn last line is ignored)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in rows))


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Add one row: the file with the row appended replaces the old one atomically (a run has
    tens of evaluations, so rewriting is cheap)."""
    _write(path, read_metrics(path) + [row])


def reset_metrics(path: Path) -> None:
    """An empty metrics file, written atomically."""
    atomic_write_text(path, "")


def truncate_metrics(path: Path, last_step: int) -> list[dict[str, Any]]:
    """Keep only rows with ``step <= last_step`` (used when resuming); rewrite atomically."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    _write(path, rows)
    return rows
