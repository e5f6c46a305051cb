"""The small parts of a sweep spec: a search space, a model or loss, a scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Space:
    """A search space for one hyperparameter: ``kind`` in SPACE_KINDS, with its ``args``.

    ``choice`` args are the values; ``uniform``/``loguniform`` args are ``[low, high]``;
    ``randint`` args are ``[low, high)`` integers (as ``ray.tune.randint``).
    """

    kind: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Component:
    """A model or loss of the sweep: registry ``name`` with fixed ``options``.

    ``label`` is what the results call it: the name alone, or e.g. ``focal(gamma=2)``
    so that two settings of the same loss are two rows of the leaderboard.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Scheduler:
    """``fifo``, or ``asha`` with its grace period and reduction factor (in epochs)."""

    name: str = "fifo"
    grace_period: int = 1
    reduction_factor: float = 2.0
