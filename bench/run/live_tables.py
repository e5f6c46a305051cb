"""Tables written as trials finish: a Tune callback writing one part file per ended trial.

When a trial ends (``on_trial_complete``, ``on_trial_error``) its row of ``trials`` and its
epochs of ``history`` become that trial's own part file (``records.write_part``), from what
Tune's driver holds: the trial's last result and its latest checkpoint's history. Nothing
else is read or written then, so a trial's end costs the driver the same at trial 10,000
as at trial 10. At the first trial end, and then at most every ``BOARD_EVERY_S`` seconds
(checked at each of Tune's steps, not only at trial ends), the
trials still training are written too (status ``RUNNING``, their epochs so far) and the
``leaderboard`` is rewritten from the rows held in memory (when a refresh takes more than a
tenth of that interval, the next one waits ten times as long as it took, so refreshes never
take more than a tenth of the driver's time), and once as many trials as a tenth of its rows
have ended since the last (``BOARD_ENDS_SHARE``: a refresh costs O(trials), so one per
n/10 trial ends keeps its cost per trial end flat). Trials not started yet do not appear.
Readers see a partition's parts as one table with each trial once (see
``bench.results.records``). So a crash or kill of the driver at hour 10 loses nothing that
had finished, and ``zoobench leaderboard`` and ``report`` work on a running sweep. The
tables written at the end of the sweep replace the parts (``records.compact``), with
predictions pictures, cases and the final statuses.

Cost: ``python tests/perf/live_tables.py`` prints a trial end's cost at 100, 1,000 and
10,000 ended trials.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable
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
# The leaderboard aggregates every trial of the sweep (O(trials)): rewritten at most this
# often, not at each trial end, and spaced so that it takes at most 1/BOARD_SHARE_INVERSE
# of the driver's time however large the sweep grows.
BOARD_EVERY_S = 30.0
BOARD_SHARE_INVERSE = 10
# ... and only once the trials ended since the last one are at least this share of the rows
# it had: one refresh per ~n/10 trial ends, so its cost per trial end stays flat as n grows.
BOARD_ENDS_SHARE = 0.1


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
    """Write each ended trial's part of the sweep's tables (see the module docstring).

    What it pickles is only what a resumed sweep also has (Tune pickles its callbacks with
    the experiment): the results folder, the spec, the stage, the MLflow experiment id and
    ``board_every_s``. The rows it holds for the leaderboard are left out of the pickle and
    rebuilt on resume: the ended trials' rows from the partition on disk, read once at the
    run's first leaderboard (which also brings a ``protocol``'s other stage). A write that
    fails (a full disk) prints one line and the sweep goes on: the previous version of every
    file stays, and the end of the sweep tries again.
    """

    _KEPT = ("results", "spec", "stage", "experiment_id", "versions", "board_every_s")

    def __init__(self, results: Path, spec: SweepSpec, stage: str, experiment_id: str,
                 versions: dict[str, str], board_every_s: float = BOARD_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.results, self.spec, self.stage = Path(results), spec, stage
        self.experiment_id, self.versions = experiment_id, versions
        self.board_every_s = board_every_s
        self.clock = clock  # seconds, monotonic (tests pass their own; not pickled)
        self._fresh()

    def _fresh(self) -> None:
        """The in-memory state of one driver run (not pickled)."""
        self._ended = pd.DataFrame()  # trials rows of the trials ended in this run
        self._pending: list[pd.DataFrame] = []  # ended since the last leaderboard
        self._running: dict[str, tuple[int, pd.DataFrame]] = {}  # id -> (iteration, row)
        self._on_disk: pd.DataFrame | None = None  # rows written before this run
        self._compacted: set[str] | None = None  # trial ids in part-0 at this run's start
        self._board_at = -math.inf
        self._board_seconds = 0.0  # what the last refresh took
        self._dirty = False  # a trial ended since the last leaderboard
        self._ends_since = 0  # trials ended since the last leaderboard
        self._board_rows = 0  # rows the last leaderboard was made from

    def __getstate__(self) -> dict[str, Any]:
        return {key: self.__dict__[key] for key in self._KEPT}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("board_every_s", BOARD_EVERY_S)
        self.clock = time.monotonic
        self._fresh()

    # -- Tune's hooks ---------------------------------------------------------------------

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self.trial_ended(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self.trial_ended(trials, trial, "ERROR")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.refresh(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.refresh(trials, force=self._dirty)

    # -- what they do ---------------------------------------------------------------------

    def trial_ended(self, trials: list[Any], trial: Any, status: str) -> None:
        """Write ``trial``'s part (``status``: ``TERMINATED`` or ``ERROR``), then
        ``refresh``. ``trials``: all of Tune's trials (read only when refreshing)."""
        rows = self._rows(trial, status)
        if rows is not None:
            row, history = rows
            self._running.pop(trial.trial_id, None)
            self._pending.append(row)
            self._dirty, self._ends_since = True, self._ends_since + 1
            self._write(row, history)
        self.refresh(trials, skip=trial.trial_id)

    def refresh(self, trials: list[Any], force: bool = False, skip: str | None = None) -> None:
        """When a trial ended since the last leaderboard and ``board_every_s`` have passed
        (or always with ``force``): write the running trials' parts (but ``skip``'s, which
        is ending) and the leaderboard."""
        wait = max(self.board_every_s, BOARD_SHARE_INVERSE * self._board_seconds)
        few = self._ends_since < BOARD_ENDS_SHARE * self._board_rows
        if not force and (not self._dirty or few or self.clock() - self._board_at < wait):
            return
        self._board_at, self._dirty, self._ends_since = self.clock(), False, 0
        for trial in trials:
            if trial.status not in (RUNNING, "PAUSED") or trial.trial_id == skip:
                continue
            iteration = int((trial.last_result or {}).get("training_iteration") or 0)
            known = self._running.get(trial.trial_id)
            if known is not None and known[0] == iteration:
                continue  # nothing new since its part was written
            rows = self._rows(trial, trial.status)
            if rows is not None:
                self._running[trial.trial_id] = (iteration, rows[0])
                self._write(*rows)
        try:
            self._write_board()
        except UsageError as error:
            print(f"zoobench: {error}", file=sys.stderr, flush=True)
        self._board_seconds = self.clock() - self._board_at

    def _rows(self, trial: Any, status: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """``(trials row, history rows)`` of one trial (status RUNNING unless ended)."""
        with tempfile.TemporaryDirectory(prefix="zoobench-live-") as scratch:
            outcomes, running = live_outcomes([trial], Path(scratch), {trial.trial_id: status})
        if not outcomes:
            return None
        row, history = records.trial_rows(
            outcomes, self.spec, versions=self.versions, run_ids={},
            experiment_id=self.experiment_id, png_paths={})
        if running:
            row["status"], row["end_reason"] = RUNNING, "running"
            row["status"] = row["status"].astype("string")
            row["end_reason"] = row["end_reason"].astype("string")
        return row, history

    def _write(self, row: pd.DataFrame, history: pd.DataFrame) -> None:
        """Write one trial's parts of ``trials`` and ``history``."""
        trial_id = str(row["trial_id"].iloc[0])
        try:
            if trial_id in self._compacted_ids():  # a resumed trial ending again
                self._drop_compacted(trial_id)
            records.write_part(self.results, "trials", self.spec.name, trial_id, row)
            records.write_part(self.results, "history", self.spec.name, trial_id, history)
        except UsageError as error:  # a full disk: said at each trial end, not fatal
            print(f"zoobench: {error}", file=sys.stderr, flush=True)

    def _compacted_ids(self) -> set[str]:
        """Trial ids in the compacted ``part-0`` of ``trials`` (read once per run)."""
        if self._compacted is None:
            path = records.table_path(self.results, "trials", self.spec.name)
            self._compacted = (set(pd.read_parquet(path, columns=["trial_id"])["trial_id"]
                                   .astype(str)) if path.exists() else set())
        return self._compacted

    def _drop_compacted(self, trial_id: str) -> None:
        """Take ``trial_id``'s rows out of the compacted ``part-0`` files (its own part comes
        next): a resumed trial is then read once. Only resumed trials pay this."""
        for table in ("trials", "history"):
            path = records.table_path(self.results, table, self.spec.name)
            if path.exists():
                frame = pd.read_parquet(path)
                records.write_table(self.results, table, self.spec.name,
                                    frame[frame["trial_id"].astype(str) != trial_id])
        self._compacted.discard(trial_id)

    def _write_board(self) -> None:
        """The leaderboard of every row: on disk before this run, ended and running now."""
        from bench.results.leaderboard import aggregate

        if self._pending:
            frames = [f for f in (self._ended, *self._pending) if len(f)]
            self._ended = pd.concat(frames, ignore_index=True)
            self._ended = self._ended.drop_duplicates("trial_id", keep="last")
            self._pending = []
        frames = [f for f in (self._ended, *(row for _, row in self._running.values()))
                  if len(f)]
        mine = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {"trial_id": pd.Series(dtype="string")})
        disk = self._disk_rows()
        if len(disk):
            mine = pd.concat([disk[~disk["trial_id"].isin(mine["trial_id"])], mine],
                             ignore_index=True)
        self._board_rows = len(mine)
        if len(mine):
            records.write_table(self.results, "leaderboard", self.spec.name,
                                aggregate(mine.assign(sweep=self.spec.name)))

    def _disk_rows(self) -> pd.DataFrame:
        """The ``trials`` rows on disk at this run's first leaderboard (a protocol's other
        stage, an earlier run of a resumed sweep); read once."""
        if self._on_disk is None:
            folder = records.table_path(self.results, "trials", self.spec.name).parent
            try:
                frame = pd.read_parquet(folder) if folder.is_dir() else pd.DataFrame()
            except (OSError, ValueError):  # unreadable: the leaderboard shows this run's
                frame = pd.DataFrame()
            self._on_disk = frame.drop(columns=["sweep"], errors="ignore")
        return self._on_disk
