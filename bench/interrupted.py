"""What an interruption (Ctrl-C) left unfinished, told apart from what the scheduler stopped.

After Ctrl-C, ``Tuner.fit()`` returns normally, and in the ``ResultGrid`` Tune has marked
every trial it stopped on the way out ``TERMINATED``, exactly like a trial ASHA stopped.
The experiment state Tune saves just before stopping them (the state a rerun resumes
from) still tells them apart: an unfinished trial is saved ``PENDING`` (running or not
yet started) or ``PAUSED``; a trial the scheduler stopped is ``TERMINATED``.
"""

from __future__ import annotations

import logging
from typing import Any

UNFINISHED_STATUSES = ("PENDING", "PAUSED", "RUNNING")


def unfinished_trial_ids(result_grid: Any) -> set[str]:
    """Ids of the trials a rerun of the sweep would continue; empty when the sweep ended.

    ``result_grid`` is what ``Tuner.fit()`` returned; its experiment state is read again
    from Tune's storage (local or remote, through its own filesystem).
    """
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(result_grid.experiment_path,
                                  storage_filesystem=result_grid.filesystem)
    return {trial.trial_id for trial in analysis.trials if trial.status in UNFINISHED_STATUSES}


class _WithoutRestoreHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)": zoobench resumes by rerun."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


_FILTER = _WithoutRestoreHint()


def hide_tune_restore_hint() -> None:
    """Keep Tune's own resume hint out of the output (idempotent); zoobench prints its own."""
    logging.getLogger("ray.tune.tune").addFilter(_FILTER)
