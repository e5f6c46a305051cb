"""The registry of report sections: a new section is one module plus its registration.

A section module defines one function turning a :class:`~bench.report.context.ReportContext`
into an HTML fragment, and registers it::

    @register_section("heatmap", title="Architecture x loss")
    def render(ctx: ReportContext) -> str: ...

and ``bench/report/sections/__init__.py`` imports the module. Sections appear in the
report in registration (import) order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.registry import Registry

if TYPE_CHECKING:
    from bench.report.context import ReportContext

Render = Callable[["ReportContext"], str]

#: Report sections by name; each entry's ``meta["title"]`` is its heading.
SECTIONS: Registry[Render] = Registry("report section")


def register_section(name: str, *, title: str) -> Callable[[Render], Render]:
    """Decorator registering ``render(ctx) -> html`` as the section ``name`` headed ``title``.

    The section's summary (the first line of the function's docstring) is shown under
    the heading as its caption.
    """
    return SECTIONS.register(name, title=title)
