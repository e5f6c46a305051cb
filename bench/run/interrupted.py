"""What an interruption (Ctrl-C) left unfinished, told apart from what the scheduler stopped.

After Ctrl-C, ``Tuner.fit()`` returns normally, and in the ``ResultGrid`` Tune has marked
every trial it stopped on the way out ``TERMINATED``, exactly like a trial ASHA stopped.
The experiment state Tune saves just before stopping them (the state a rerun resumes
from) still tells them apart: an unfinished trial is saved ``PENDING`` (running or not
yet started) or ``PAUSED``; a trial the scheduler stopped is ``TERMINATED``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

UNFINISHED_STATUSES = ("PENDING", "PAUSED", "RUNNING")


def unfinished_trial_ids(result_grid: Any) -> set[str]:
    """Ids of the trials a rerun of the sweep would continue; empty when the sweep ended.

    ``result_grid`` is what ``Tuner.fit()`` returned; its experiment state is read again
    from Tune's storage (local or remote, through its own filesystem). Trial ids are the
    trial folders' names (``bench.spec.plan`` names each folder by its trial id).
    """
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(result_grid.experiment_path,
                                      storage_filesystem=result_grid.filesystem)
    except Exception as error:  # noqa: BLE001  (the tables must still be written)
        # Without the saved state, a trial with no end of its own counts as unfinished:
        # a rerun that finds nothing to do costs less than a sweep wrongly called finished.
        print(f"zoobench: cannot read Tune's experiment state ({type(error).__name__}: "
              f"{error}); trials without an end reason are counted as unfinished",
              file=sys.stderr)
        return {Path(result.path).name for result in result_grid
                if result.error is None and not (result.metrics or {}).get("end_reason")}
    return {trial.trial_id for trial in analysis.trials if trial.status in UNFINISHED_STATUSES}


class _WithoutRestoreHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)": zoobench resumes by rerun."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


_FILTER = _WithoutRestoreHint()


def hide_tune_restore_hint() -> None:
    """Keep Tune's own resume hint out of the output (idempotent); zoobench prints its own."""
    logging.getLogger("ray.tune.tune").addFilter(_FILTER)
