"""The registry of report sections: a new section is one module plus its registration.

A section module defines one function turning a :class:`~bench.report.context.ReportContext`
into an HTML fragment, and registers it::

    @register_section("heatmap", title="Architecture x loss")
    def render(ctx: ReportContext) -> str: ...

and ``bench/report/sections/__init__.py`` imports the module. Sections appear in the
report in registration (import) order.

Not ``zoo.registry.Registry``: importing anything of ``zoo`` imports the ``zoo`` package,
and with it TensorFlow (seconds), for a command that only draws tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report.context import ReportContext

Render = Callable[["ReportContext"], str]


@dataclass(frozen=True)
class SectionEntry:
    """A registered section: its anchor ``name``, its ``render`` function (``obj``) and
    ``meta`` (``title``: its heading)."""

    name: str
    obj: Render
    meta: dict[str, Any] = field(default_factory=dict)


class SectionRegistry:
    """Section name -> entry, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, SectionEntry] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Render], Render]:
        """Decorator registering ``render`` under ``name`` (once) with ``meta``."""

        def decorator(render: Render) -> Render:
            if name in self._entries:
                raise ValueError(f"report section {name!r} is already registered")
            self._entries[name] = SectionEntry(name, render, dict(meta))
            return render

        return decorator

    def names(self) -> list[str]:
        """Registered section names, in page order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[SectionEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


#: Report sections by name; each entry's ``meta["title"]`` is its heading.
SECTIONS = SectionRegistry()


def register_section(name: str, *, title: str) -> Callable[[Render], Render]:
    """Decorator registering ``render(ctx) -> html`` as the section ``name`` headed ``title``.

    The section's summary (the first line of the function's docstring) is shown under
    the heading as its caption.
    """
    return SECTIONS.register(name, title=title)
