"""The registry behind ``pclab reproduce NAME``.

Each reproduction is a function ``run(out: Path, quick: bool) -> dict`` that only calls the
library, writes its figures (PNG) and tables (CSV) under ``out`` and returns a small summary.
One that trains networks also registers ``pending(out, quick) -> list[TrainConfig]``, the
training runs it still has to do, so that ``pclab reproduce`` can check its time budget.
Modules register theirs with :func:`register`; :data:`MODULES` lists the modules imported on
demand so that the registry is complete without importing everything at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MODULES = (
    "pclab.experiments.theory_figures",
    "pclab.experiments.mupc",
    "pclab.experiments.icl_figures",
    "pclab.experiments.theory2_figures",
    "pclab.experiments.conv_theory_figures",
    "pclab.experiments.theory_training_figures",
    "pclab.experiments.arch_limits_figures",
    "pclab.experiments.variants",
)


@dataclass(frozen=True)
class Reproduction:
    name: str
    description: str
    run: Callable[[Path, bool], dict]
    pending: Callable[[Path, bool], list] | None = None  # the training runs still to do


_REGISTRY: dict[str, Reproduction] = {}


def register(name: str, description: str, pending: Callable[[Path, bool], list] | None = None):
    """Decorator: register ``fn(out, quick) -> dict`` as ``pclab reproduce name``; ``pending``
    lists the training runs (``TrainConfig``) it still has to do, for the budget check."""

    def deco(fn):
        _REGISTRY[name] = Reproduction(name, description, fn, pending)
        return fn

    return deco


def reproductions() -> dict[str, Reproduction]:
    """All registered reproductions, by name (imports the modules in :data:`MODULES`)."""
    for mod in MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return dict(sorted(_REGISTRY.items()))


def get_reproduction(name: str) -> Reproduction:
    table = reproductions()
    if name not in table:
        raise ValueError(f"unknown reproduction {name!r}; available: {', '.join(table) or '(none)'}")
    return table[name]
