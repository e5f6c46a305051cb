"""YAML in, a validated and immutable sweep spec out, and the plan Tune runs from it.

Modules: ``model`` (``SweepSpec``, ``load_spec``, the typed ``SpecKeys``), ``parts`` (spaces,
components, schedulers, and the typed keys' base),
``protocol`` and ``stages`` (tune-then-test), ``plan`` (spec to Tune's objects), ``plugins``
(the user's modules), ``guards`` (checks on folders and reruns before any trial)."""

from __future__ import annotations

from bench.common.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
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
})
