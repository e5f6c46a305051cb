"""One small registry class shared by models, losses, metrics and datasets.

Each entry registers itself once, where it is defined; the CLI, the sweep spec
validation and the docs all read the same registry, so there is no if-chain to
keep in sync (the pattern of timm's ``register_model``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object plus the metadata the CLI and docs show."""

    name: str
    obj: T
    summary: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name → object map with wildcard listing and helpful unknown-name errors.

    Args:
        kind: what the registry holds ("model", "loss", ...), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, summary: str = "", **meta: Any
    ) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``.

        The summary defaults to the first line of the object's docstring.
        """

        def decorator(obj: T) -> T:
            self.add(name, obj, summary=summary, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, summary: str = "", **meta: Any) -> None:
        """Register ``obj`` under ``name``; a name can be registered once only."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not summary:
            doc = getattr(obj, "__doc__", None) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self._entries[name] = Entry(name=name, obj=obj, summary=summary, meta=meta)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; ``ValueError`` listing the known names if absent."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def entry_accepting(self, name: str, params: dict[str, Any]) -> Entry[T]:
        """The entry for ``name`` after checking ``params`` against its ``meta["params"]``.

        Raises ``ValueError`` naming the unknown parameters and the allowed ones.
        """
        entry = self.entry(name)
        allowed = entry.meta.get("params", {})
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            choices = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"{self.kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters: {choices}"
            )
        return entry

    def get(self, name: str) -> T:
        """The registered object for ``name``."""
        return self.entry(name).obj

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names in registration order, optionally filtered by a glob."""
        names = list(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
