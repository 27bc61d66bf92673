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
from dataclasses import dataclass, field
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


DEFAULT_PROTOCOL = "default"


@dataclass(frozen=True)
class Reproduction:
    name: str
    description: str
    run: Callable[[Path, bool], dict]
    pending: Callable[[Path, bool], list] | None = None  # the training runs still to do
    protocols: dict[str, "Reproduction"] = field(default_factory=dict)  # --protocol NAME (besides the default)

    def protocol(self, name: str | None) -> "Reproduction":
        """This reproduction run under ``--protocol name`` (None or 'default': itself)."""
        if name in (None, DEFAULT_PROTOCOL):
            return self
        if name not in self.protocols:
            valid = ", ".join([DEFAULT_PROTOCOL, *self.protocols])
            raise ValueError(f"--protocol {name!r} is not one of {self.name}'s protocols; expected one of: {valid}")
        return self.protocols[name]


_REGISTRY: dict[str, Reproduction] = {}


def register(name: str, description: str, pending: Callable[[Path, bool], list] | None = None,
             protocol: str = DEFAULT_PROTOCOL):
    """Decorator: register ``fn(out, quick) -> dict`` as ``pclab reproduce name`` (or, with
    ``protocol``, as ``pclab reproduce name --protocol protocol``, registered after the default);
    ``pending`` lists the training runs (``TrainConfig``) it still has to do, for the budget check."""

    def deco(fn):
        rep = Reproduction(name, description, fn, pending)
        if protocol == DEFAULT_PROTOCOL:
            _REGISTRY[name] = rep
        else:
            _REGISTRY[name].protocols[protocol] = rep
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
