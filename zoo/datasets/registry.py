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

# One line per option name, shared by the datasets that take it; ``register_dataset``'s
# ``help`` adds or overrides lines for one dataset.
OPTION_HELP: dict[str, str] = {
    "height": "image height in pixels",
    "width": "image width in pixels",
    "channels": "channels of x (images are converted: 1 grey, 3 RGB)",
    "classes": "number of classes K (1: binary masks)",
    "train": "training samples",
    "val": "validation samples (model selection)",
    "test": "held-out test samples, never used in training or selection",
    "val_fraction": "share of the samples split off for validation, when there is no "
                    "fixed validation split",
    "test_fraction": "share of the samples held out for testing (drawn first, with split_seed), "
                     "when there is no fixed test split",
    "val_digits": "share of the source digits that only validation canvases use",
    "test_digits": "share of the source digits that only test canvases use (held out)",
    "path": "where the data is",
    "split_seed": "seed of the held-out test split, fixed whatever the trial's seed (which "
                  "still draws the training and validation data)",
    "labelled_fraction": "share of training samples that keep their labels (semi-supervised; "
                         "elements then carry a sample weight)",
    "labelled_per_batch": "labelled samples in every training batch (0: off; needs "
                          "labelled_fraction and a batch_size above it)",
}

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
        option_help: option name -> one line saying what it does (every option).
    """

    name: str
    kind: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)
    option_help: dict[str, str] = field(default_factory=dict)


DATASETS: Registry[tuple[DatasetSpec, Builder]] = Registry("dataset")


def register_dataset(
    name: str, *, kind: str = "image", options: dict[str, Any] | None = None,
    help: dict[str, str] | None = None,  # noqa: A002  (the word a user expects)
) -> Callable[[Builder], Builder]:
    """Decorator registering a dataset builder under ``name``.

    The builder is called as ``builder(seed=seed, **options)`` with every option
    of ``options`` filled in and must return a :class:`SplitArrays` (with test
    arrays, so that the protocol has a held-out split). ``help`` gives one line per
    option not in ``OPTION_HELP``, or a line to use instead of the shared one.
    """

    def decorator(builder: Builder) -> Builder:
        doc = (builder.__doc__ or "").strip()
        every = {**dict(options or {}), **COMMON_OPTIONS}
        lines = {**OPTION_HELP, **dict(help or {})}
        spec = DatasetSpec(
            name=name,
            kind=kind,
            summary=doc.splitlines()[0] if doc else "",
            options=every,
            option_help={option: lines.get(option, "") for option in every},
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
