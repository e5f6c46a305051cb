"""YAML in, a validated and immutable sweep spec out, and the plan Tune runs from it.

Modules: ``model`` (``SweepSpec``, ``load_spec``, the typed ``SpecKeys``), ``parts`` (spaces,
components, schedulers, and the typed keys' base),
``protocol`` and ``stages`` (tune-then-test), ``plan`` (spec to Tune's objects), ``plugins``
(the user's modules), ``guards`` (checks on folders and reruns before any trial)."""

from __future__ import annotations

import importlib
from typing import Any

# The room's public face, imported when first used (``bench.spec.NAME``), so that
# importing one module of the room does not import the others' heavy dependencies.
_EXPORTS = {
    "SweepSpec": ".model",
    "load_spec": ".model",
    "parse_spec": ".model",
    "DEFAULT_SPEC": ".model",
    "SpecError": ".model",
    "SpecKeys": ".model",
    "Space": ".parts",
    "Component": ".parts",
    "Scheduler": ".parts",
    "Protocol": ".protocol",
    "make_plan": ".plan",
    "Plan": ".plan",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
