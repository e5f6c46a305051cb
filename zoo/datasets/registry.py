"""The dataset registry: ``@register_dataset``, ``list_datasets``, ``describe_dataset``.

A dataset module defines a builder and registers it with its options and defaults::

    @register_dataset("shapes", kind="image", options={"height": 64, "width": 64})
    def build_shapes(*, seed: int, height: int, width: int) -> SplitArrays: ...

``zoo.datasets.load`` checks the option names against the registry, fills in the
defaults and calls the builder with every option as a keyword plus ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.datasets.arrays import SplitArrays
from zoo.registry import Registry

# Options every dataset takes, handled by ``load`` itself rather than by builders.
COMMON_OPTIONS: dict[str, Any] = {"labelled_fraction": 1.0, "labelled_per_batch": 0}

Builder = Callable[..., SplitArrays]


@dataclass(frozen=True)
class DatasetSpec:
    """What ``describe_dataset`` returns.

    Attributes:
        name: registry name.
        kind: ``image`` or ``sequence`` (``sequence`` datasets may depend on options).
        summary: one line saying what the data is.
        options: option name -> default, including the common ``labelled_fraction``
            and ``labelled_per_batch``.
    """

    name: str
    kind: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)


DATASETS: Registry[tuple[DatasetSpec, Builder]] = Registry("dataset")


def register_dataset(
    name: str, *, kind: str = "image", options: dict[str, Any] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator registering a dataset builder under ``name``.

    The builder is called as ``builder(seed=seed, **options)`` with every option
    of ``options`` filled in and must return a :class:`SplitArrays`.
    """

    def decorator(builder: Builder) -> Builder:
        doc = (builder.__doc__ or "").strip()
        spec = DatasetSpec(
            name=name,
            kind=kind,
            summary=doc.splitlines()[0] if doc else "",
            options={**dict(options or {}), **COMMON_OPTIONS},
        )
        DATASETS.add(name, (spec, builder), summary=spec.summary)
        return builder

    return decorator


def list_datasets(pattern: str | None = None) -> list[str]:
    """Names of the registered datasets, optionally filtered by a glob such as ``"*digits"``."""
    return DATASETS.names(pattern)


def describe_dataset(name: str) -> DatasetSpec:
    """Summary, kind and options (with defaults) of dataset ``name``."""
    return DATASETS.get(name)[0]
