"""Open registries: named objects (learning rules, solvers, parameterisations, models) that
the runner, the sweep and the CLI look up instead of testing names in ``if`` chains.

A new entry plugs in with ``REGISTRY.register(name, obj)`` (or as a class decorator); an
unknown name fails with the list of valid ones, naming the argument.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object table for one kind of option (``argname`` is used in errors)."""

    def __init__(self, argname: str):
        self.argname = argname
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name`` (lower-case); without ``obj``, a decorator."""
        if obj is None:
            return lambda o: self.register(name, o)
        key = str(name).lower()
        if key in self._items and self._items[key] is not obj:
            raise ValueError(f"{self.argname} {key!r} is already registered")
        self._items[key] = obj
        return obj

    def get(self, name) -> T:
        """The object registered under ``name``; ``ValueError`` listing the valid names."""
        key = getattr(name, "value", name)
        try:
            return self._items[str(key).lower()]
        except KeyError:
            valid = ", ".join(repr(n) for n in self._items)
            raise ValueError(f"{self.argname}={name!r} is not valid; expected one of {valid}") from None

    def names(self) -> list[str]:
        """Registered names, in registration order (for CLI ``choices``)."""
        return list(self._items)

    def __contains__(self, name) -> bool:
        return str(getattr(name, "value", name)).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
