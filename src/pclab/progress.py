"""Progress bars for long library work (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(total: int, progress: bool | None, desc: str | None, unit: str = "it", **options):
    """A tqdm bar over ``total`` items, shown when ``progress`` is true or, for ``None``, when
    stderr is a terminal (so logs and tests stay clean). ``options`` go to tqdm (default
    ``leave=False``)."""
    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, disable=not show, desc=desc, unit=unit, **{"leave": False, **options})
