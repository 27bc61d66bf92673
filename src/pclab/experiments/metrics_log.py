"""``metrics.jsonl``: one JSON object per evaluation, appended and fsynced line by line."""

from __future__ import annotations

import json
import math
import os
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


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(path: Path, last_step: int) -> list[dict[str, Any]]:
    """Keep only rows with ``step <= last_step`` (used when resuming); rewrite atomically."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows
