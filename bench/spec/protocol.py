"""The ``protocol`` key: tune-then-test settings and what makes them meaningless.

The stages themselves (each stage's spec, the selection between them) are in
``bench.spec.stages``.
"""


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from bench.spec.parts import Int1, Keys, NoneIsEmpty, Scheduler, SchedulerKeys, Seeds, Space


@dataclass(frozen=True)
class Protocol:
    """The two stages' settings (see the module docstring)."""

    tune_samples: int
    tune_scheduler: Scheduler
    tune_seeds: tuple[int, ...]
    final_seeds: tuple[int, ...]


class _Tune(Keys):
    samples: Int1 = 1
    """draws of params per model x loss in the tuning stage"""
    scheduler: SchedulerKeys = Field("fifo", validate_default=True)
    """fifo, asha, or {asha: {grace_period: 1, reduction_factor: 2}}"""
    seeds: Seeds = (0,)
    """the tuning stage's seeds"""


class _Final(Keys):
    seeds: Seeds
    """the final stage's seeds: at least 2, for paired tests and intervals"""


class ProtocolKeys(Keys):
    """``protocol: {tune: {samples, scheduler, seeds}, final: {seeds}}``: tune on the
    validation split, then retrain the chosen setting on these seeds and test it."""

    tune: Annotated[_Tune, NoneIsEmpty] = _Tune()
    """the tuning stage (replaces the top-level samples, scheduler and seeds)"""
    final: _Final
    """the final stage"""

    def protocol(self) -> Protocol:
        """The validated ``Protocol`` these keys give."""
        return Protocol(self.tune.samples, self.tune.scheduler, self.tune.seeds,
                        self.final.seeds)


class ProtocolError(ValueError):
    """A bad ``protocol`` value: ``key`` is the path below ``protocol``, ``message`` why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def check_protocol(protocol: Protocol, params: Mapping[str, Any]) -> None:
    """ProtocolError when ``protocol`` cannot mean what it says with these ``params``.

    * ``tune.samples > 1`` with no search space in ``params`` would train the same
      setting several times and call it a search;
    * ``final.seeds`` needs at least 2 seeds: paired tests and intervals need repeats;
    * a final seed that is also a tune seed is allowed (nnU-Net style), but the test
      split is never seen by either stage.
    """
    searched = [key for key, value in params.items() if isinstance(value, Space)]
    if protocol.tune_samples > 1 and not searched:
        raise ProtocolError(
            "tune.samples",
            f"{protocol.tune_samples} samples but params has no search space: nothing to "
            "tune; give a param a space such as lr: {loguniform: [1.0e-4, 1.0e-2]}",
        )
    if len(protocol.final_seeds) < 2:
        raise ProtocolError(
            "final.seeds",
            f"needs at least 2 seeds for paired tests and intervals, got "
            f"{list(protocol.final_seeds)}",
        )
