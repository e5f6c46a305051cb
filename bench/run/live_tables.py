"""Tables written as trials finish: a Tune callback rewriting the sweep's partitions.

After each trial ends (``on_trial_complete``, ``on_trial_error``) the sweep's ``trials``,
``history`` and ``leaderboard`` partitions are rewritten whole, atomically
(``records.write_table``), from what Tune's driver holds: each trial's last result and its
latest checkpoint's history. Trials still training appear with status ``RUNNING`` (their
epochs so far in the history); trials not started yet do not appear. So a crash or kill of
the driver at hour 10 loses nothing that had finished, and ``zoobench leaderboard`` and
``report`` work on a running sweep. The tables written at the end of the sweep replace
these (with predictions pictures, cases and the final statuses).

Cost: each rewrite reads every started trial's ``state.json`` and writes two small Parquet
files; ``python tests/perf/live_tables.py`` prints what it costs at 100 trials.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
from ray.tune import Callback

from bench.common.errors import UsageError
from bench.results import records
from bench.run.attempts import count
from bench.spec.model import SweepSpec

RUNNING = "RUNNING"
_STARTED = ("RUNNING", "PAUSED", "TERMINATED", "ERROR")


def live_outcomes(trials: list[Any], scratch: Path, ended: dict[str, str]
                  ) -> tuple[list[records.TrialOutcome], set[str]]:
    """Outcomes of Tune's started trials and the ids of those still running.

    ``trials`` are Tune's ``Trial`` objects (``.path``, ``.config``, ``.last_result``,
    ``.checkpoint``, ``.status``); ``ended`` maps the id of the trial whose end calls the
    callback to ``TERMINATED`` or ``ERROR`` (Tune still says ``RUNNING`` at that point).
    """
    outcomes, running = [], set()
    for trial in trials:
        status = ended.get(trial.trial_id, trial.status)
        if status not in _STARTED:
            continue
        error = None
        if status == "ERROR":
            error = RuntimeError(f"lost {trial.num_failures} times (see {trial.error_file})")
        reported = getattr(trial, "has_reported_at_least_once", True)
        result = SimpleNamespace(path=trial.path, config=trial.config, error=error,
                                 metrics=trial.last_result if reported else {},
                                 checkpoint=trial.checkpoint)
        counted = count(trial.last_result if reported else None, trial.num_failures)
        outcome = records.outcome_from_result(result, scratch, attempts=counted.attempts,
                                              machinery_retries=counted.machinery_retries)
        outcomes.append(outcome)
        if status in (RUNNING, "PAUSED"):
            running.add(outcome.trial_id)
    return outcomes, running


class LiveTables(Callback):
    """Rewrite the sweep's tables whenever a trial ends (see the module docstring).

    Holds only what a resumed sweep also has (Tune pickles its callbacks with the
    experiment): the results folder, the spec, the stage and the MLflow experiment id.
    Rows of the sweep's other stage (a ``protocol``'s) are kept from the partition on disk.
    A write that fails (a full disk) prints one line and the sweep goes on: the previous
    version of every table stays, and the end of the sweep tries again.
    """

    def __init__(self, results: Path, spec: SweepSpec, stage: str, experiment_id: str,
                 versions: dict[str, str]) -> None:
        self.results, self.spec, self.stage = Path(results), spec, stage
        self.experiment_id, self.versions = experiment_id, versions

    def refresh(self, trials: list[Any], ended: dict[str, str] | None = None) -> None:
        """Rewrite the tables from Tune's ``trials`` (``ended``: see ``live_outcomes``)."""
        with tempfile.TemporaryDirectory(prefix="zoobench-live-") as scratch:
            outcomes, running = live_outcomes(trials, Path(scratch), ended or {})
            if not outcomes:
                return
            try:
                self._write(outcomes, running)
            except UsageError as error:  # a full disk: said at each trial end, not fatal
                print(f"zoobench: {error}", file=sys.stderr, flush=True)

    def _write(self, outcomes: list[records.TrialOutcome], running: set[str]) -> None:
        from bench.results.leaderboard import aggregate

        trials, history = records.trial_rows(
            outcomes, self.spec, versions=self.versions, run_ids={},
            experiment_id=self.experiment_id, png_paths={})
        still = trials["trial_id"].isin(list(running))
        trials.loc[still, "status"] = RUNNING
        trials.loc[still, "end_reason"] = "running"
        trials, history = self._with_other_stage(trials, history)
        records.write_table(self.results, "trials", self.spec.name, trials)
        records.write_table(self.results, "history", self.spec.name, history)
        records.write_table(self.results, "leaderboard", self.spec.name, aggregate(
            trials.assign(sweep=self.spec.name)))

    def _with_other_stage(self, trials: pd.DataFrame,
                          history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Add the rows of the sweep's other stage from the tables on disk."""
        path = records.table_path(self.results, "trials", self.spec.name)
        if not path.exists():
            return trials, history
        kept = pd.read_parquet(path)
        kept = kept[(kept["stage"].astype(str) != self.stage)
                    & ~kept["trial_id"].isin(trials["trial_id"])]
        if not len(kept):
            return trials, history
        trials = pd.concat([kept, trials], ignore_index=True)
        history_path = records.table_path(self.results, "history", self.spec.name)
        if history_path.exists():
            old = pd.read_parquet(history_path)
            history = pd.concat([old[old["trial_id"].isin(kept["trial_id"])], history],
                                ignore_index=True)
        return trials, history

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self.refresh(trials, {trial.trial_id: "TERMINATED"})

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self.refresh(trials, {trial.trial_id: "ERROR"})
