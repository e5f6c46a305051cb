"""What counts as an attempt: the trial's own starts, apart from retries of the machinery.

Tune counts every failure of a trial in ``num_failures``: a worker lost while the trial
trained, but also an actor that failed to start, a restore that failed, a worker lost while
it imported TensorFlow, before the trial's own code ran. Only the first kind is the
trial's: ``attempts`` counts the trial's own starts, and the rest are
``machinery_retries`` (``docs/attempts.md``).

A start is counted by the trainable itself (``bench.run.trial.run``), once its worker is
up and it is about to restore the trial's progress: the count travels in each checkpoint's
``state.json`` and in a small file in the trial's working folder (``STARTS_FILE``, for a
trial lost before its first checkpoint), both stamped with the driver run's token (a
resumed sweep's first start continues the interrupted attempt: it is not a new one). Tune
gets ``max_failures + MACHINERY_ALLOWANCE`` retries; the trainable itself ends a trial
whose own starts exceed ``max_failures + 1`` (``TrialLostTooOftenError``), so the user's
``max_failures`` is spent on the trial's own losses only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Retries of the machinery Tune grants each trial on top of the spec's ``max_failures``.
#: The shipped reference run (interrupted and resumed twice) had up to 2 failures per trial
#: before any trial code ran; 3 covers that with one to spare, and a start that can never
#: succeed (a broken worker environment) still ends the trial after 3 more worker starts
#: (docs/attempts.md: how this was measured).
MACHINERY_ALLOWANCE = 3

#: The trial's own start count in its working folder (lost before its first checkpoint).
STARTS_FILE = "zoobench_starts.json"


class TrialLostTooOftenError(RuntimeError):
    """A trial's worker was lost more often than the spec's ``max_failures`` allows."""


@dataclass(frozen=True)
class Attempts:
    """One trial's starts: ``attempts`` its own, ``machinery_retries`` the other retries."""

    attempts: int = 1
    machinery_retries: int = 0


def this_start(checkpoint: dict[str, Any] | None, marker: dict[str, Any] | None,
               run_token: str) -> int:
    """The trial's own start number for the start now beginning (1 for its first).

    Args:
        checkpoint: the ``state.json`` of the checkpoint it restores (``starts``, ``run``);
            None without one.
        marker: ``STARTS_FILE`` of its working folder (``starts``, ``run``); None if absent.
        run_token: this driver run's token (``SweepContext.run_token``).

    A start of this driver run counted earlier (in either record) means Tune is retrying
    the trial: one more. A checkpoint of an earlier driver run only means a resumed
    sweep: the interrupted start goes on, with its number.
    """
    counted = [int(record.get("starts", 1)) for record in (checkpoint, marker)
               if record and record.get("run") == run_token]
    if counted:
        return max(counted) + 1
    if checkpoint is not None:
        return int(checkpoint.get("starts", 1))
    return 1


def read_marker(folder: Path) -> dict[str, Any] | None:
    """``STARTS_FILE`` of ``folder`` as a dict; None when absent or unreadable."""
    try:
        return json.loads((folder / STARTS_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_marker(folder: Path, starts: int, run_token: str) -> None:
    """Record the start now beginning in ``folder`` (the trial's working folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STARTS_FILE).write_text(json.dumps({"starts": starts, "run": run_token}))


def check_start(starts: int, max_failures: int) -> None:
    """Raise ``TrialLostTooOftenError`` when start ``starts`` is past ``max_failures`` retries."""
    if starts > max_failures + 1:
        lost = starts - 1
        raise TrialLostTooOftenError(f"the trial's worker was lost {lost} time{'s' * (lost > 1)} "
                                f"while it trained (max_failures {max_failures})")


def count(last_result: dict[str, Any] | None, num_failures: int) -> Attempts:
    """A trial's ``Attempts`` from its last result (``attempt``: the start it belongs to)
    and Tune's ``num_failures`` (every failure Tune retried or ended it after).

    >>> count({"attempt": 2}, 3)
    Attempts(attempts=2, machinery_retries=2)
    """
    attempts = max(1, int((last_result or {}).get("attempt") or 1))
    return Attempts(attempts, max(0, int(num_failures) - (attempts - 1)))


def trial_attempts(result_grid: Any) -> dict[str, Attempts]:
    """Trial id -> ``Attempts``, read from the experiment state Tune saved; {} when unreadable.

    ``result_grid`` is what ``Tuner.fit()`` returned; trial ids are the trial folders'
    names (``bench.spec.plan.trial_dirname``).
    """
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(result_grid.experiment_path,
                                      storage_filesystem=result_grid.filesystem)
    except Exception as error:  # noqa: BLE001  (the tables must still be written)
        print(f"zoobench: cannot read Tune's experiment state ({type(error).__name__}: "
              f"{error}); attempts are recorded as 1", file=sys.stderr)
        return {}
    return {trial.trial_id: count(trial.last_result, trial.num_failures)
            for trial in analysis.trials}
