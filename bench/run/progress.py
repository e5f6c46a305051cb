"""A sweep's progress a person can read: one line per trial event and a periodic summary.

``ProgressView`` is a Tune ``Callback``. It writes::

    [  0:12] started   unet_shallow x dice seed 0 (a1b2c3d4)
    [  1:40] finished  unet_shallow x dice seed 0 (a1b2c3d4): val_mean_iou 0.7123
    [  1:41] failed    segnet x focal seed 1 (e5f6a7b8): ValueError: ...
    [  1:41] retrying  testnet x dice seed 3 (d4e5f6a7): ActorDiedError: ... (Tune's failure 1)
    [  1:41] stopped   testnet x dice seed 2 (c9d0e1f2): val_mean_iou 0.4410 (scheduler)
    [  2:00] 3/6 done, 2 running, 1 pending, 1 failed; best val_mean_iou 0.7123
             (unet_shallow x dice seed 0 (a1b2c3d4)); elapsed 2:00, ETA 2:10   <- one line

To a terminal the summary is one line rewritten in place (every second); to a pipe or a
log file it is a plain line every ``summary_every_s`` seconds and at the end. Tune's
own table and log lines go to the sweep's log file instead (``bench.run.sweep``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ray.tune import Callback, CLIReporter

from bench.common.environment import variable_set

_CLEAR = "\r\033[K"  # back to the line's start and clear it (the terminal's summary line)


def trial_label(trial: Any) -> str:
    """``model x loss seed N (trial_id)`` from a Tune trial's config (``model x loss on
    DATASET seed N ...`` in a sweep of several datasets)."""
    from bench.common.cells import resolve

    config = resolve(trial.config)
    on = f" on {config['dataset']}" if config.get("dataset") else ""
    return (f"{config.get('model')} x {config.get('loss')}{on} seed {config.get('seed')} "
            f"({trial.trial_id})")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _error_line(trial: Any) -> str:
    """The trial's error in one line (its exception type and message), or ``error``."""
    try:
        # The driver's copy first: a retried trial's error is not in its storage yet.
        local = getattr(trial, "pickled_error_file", None)
        if local and os.path.exists(local):
            from ray import cloudpickle

            with open(local, "rb") as handle:
                error = cloudpickle.load(handle)
        else:
            error = trial.get_pickled_error()
        if error is not None:
            cause = getattr(error, "__cause__", None) or error
            return f"{type(cause).__name__}: {cause}".splitlines()[0][:200]
        text = trial.get_error()
        if text:
            return str(text).strip().splitlines()[-1][:200]
    except Exception:  # noqa: BLE001  (a progress line never fails the sweep)
        pass
    return "error"


class ProgressView(Callback):
    """Tune callback writing trial events and summaries to ``out``.

    Args:
        total: trials the sweep runs (for pending and the ETA).
        metric, mode: the sweep's metric, ``max`` or ``min`` (best so far).
        out: where lines go (default stdout).
        summary_every_s: least seconds between summary lines when ``out`` is not a
            terminal (a quarter of the elapsed time once that is longer).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total: int, metric: str, mode: str, *, out: TextIO | None = None,
                 summary_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.metric, self.mode = total, metric, mode
        # stdout is looked up when writing: Tune pickles its callbacks with the experiment.
        self._out = out
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.every = 1.0 if self.tty else summary_every_s
        self.clock = clock
        self.start = clock()
        self.last_summary = self.start
        self.done: set[str] = set()
        self.failed: set[str] = set()
        # Trials a resumed sweep found already ended: counted, but not in the ETA's pace.
        self.restored: set[str] = set()
        self._synced = False
        self.running: set[str] = set()
        self.best_of: dict[str, float] = {}  # trial id -> its best metric value so far
        self.labels: dict[str, str] = {}
        self._pending_line = False  # a terminal summary line is shown and must be cleared

    @property
    def out(self) -> TextIO:
        """Where lines go: the stream given, else the current stdout."""
        return self._out if self._out is not None else sys.stdout

    def setup(self, **info: Any) -> None:
        """Tune starts (or resumes) the experiment: the clock starts here."""
        self.start = self.last_summary = self.clock()

    # ---- output
    def _write(self, text: str) -> None:
        if self.tty and self._pending_line:
            self.out.write(_CLEAR)
            self._pending_line = False
        self.out.write(f"[{_clock(self.clock() - self.start):>6}] {text}\n")
        self.out.flush()

    def _better(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        return best is None or (value > best if self.mode == "max" else value < best)

    def best(self) -> tuple[str, float] | None:
        """The best trial so far and its value (over every reported epoch)."""
        best: tuple[str, float] | None = None
        for trial_id, value in self.best_of.items():
            if self._better(value, best[1] if best else None):
                best = (trial_id, value)
        return best

    def summary(self) -> str:
        """``done/total done, N running, N pending, N failed; best ...; elapsed, ETA``.

        Trials a resumed sweep found ended count as done (or failed); the ETA is paced by
        the trials ended in this run only.
        """
        finished = len(self.done) + len(self.failed)
        pending = max(self.total - finished - len(self.running), 0)
        elapsed = self.clock() - self.start
        parts = [f"{len(self.done)}/{self.total} done, {len(self.running)} running, "
                 f"{pending} pending, {len(self.failed)} failed"]
        best = self.best()
        if best is not None:
            parts.append(f"best {self.metric} {best[1]:.4f} ({self.labels.get(best[0], '')})")
        ended_here = finished - len(self.restored)
        eta = f"ETA {_clock(elapsed / ended_here * (self.total - finished))}" if ended_here \
            else "ETA -"
        parts.append(f"elapsed {_clock(elapsed)}, {eta}")
        return "; ".join(parts)

    def _summary(self, force: bool = False) -> None:
        now = self.clock()
        # Off a terminal the gap grows with the elapsed time (a quarter of it), so a long
        # sweep's log holds about a dozen summaries per doubling, not one per 30 s.
        gap = self.every if self.tty else max(self.every, 0.25 * (now - self.start))
        if not force and now - self.last_summary < gap:
            return
        self.last_summary = now
        if self.tty and not force:
            self.out.write(f"{_CLEAR}[{_clock(now - self.start):>6}] {self.summary()}")
            self._pending_line = True
            self.out.flush()
        else:
            self._write(self.summary())

    def _metric_text(self, trial_id: str) -> str:
        value = self.best_of.get(trial_id)
        return f"{self.metric} {value:.4f}" if value is not None else f"{self.metric} -"

    def _restore(self, trials: list) -> None:
        """Once, at the first hook that sees the trials: count those already ended (a
        resumed sweep's, restored by Tune without completion events) with their best."""
        if self._synced:
            return
        self._synced = True
        for trial in trials:
            status = getattr(trial, "status", None)
            if status not in ("TERMINATED", "ERROR") or trial.trial_id in self.running:
                continue
            (self.done if status == "TERMINATED" else self.failed).add(trial.trial_id)
            self.restored.add(trial.trial_id)
            self.labels.setdefault(trial.trial_id, trial_label(trial))
            value = self._best_reported(trial)
            if value is not None:
                self.best_of[trial.trial_id] = value

    def _best_reported(self, trial: Any) -> float | None:
        """A restored trial's best value of the metric over its reports, if Tune has it."""
        try:
            analysis = trial.metric_analysis.get(self.metric, {})
            value = analysis.get(self.mode, (trial.last_result or {}).get(self.metric))
            return float(value) if value is not None and math.isfinite(value) else None
        except Exception:  # noqa: BLE001  (a progress line never fails the sweep)
            return None

    # ---- Tune's hooks
    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._restore(trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.labels[trial.trial_id] = trial_label(trial)
        self.running.add(trial.trial_id)
        self._write(f"started   {self.labels[trial.trial_id]}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and self._better(float(value),
                                                            self.best_of.get(trial.trial_id)):
            self.best_of[trial.trial_id] = float(value)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any,
                          **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self.done.add(trial.trial_id)
        label = self.labels.setdefault(trial.trial_id, trial_label(trial))
        # A trial ends itself with an end_reason; a scheduler's stop leaves it empty.
        reason = (trial.last_result or {}).get("end_reason", "")
        if reason:
            self._write(f"finished  {label}: {self._metric_text(trial.trial_id)}"
                        + ("" if reason == "completed" else f" ({reason})"))
        else:
            self._write(f"stopped   {label}: {self._metric_text(trial.trial_id)} (scheduler)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self.failed.add(trial.trial_id)
        label = self.labels.setdefault(trial.trial_id, trial_label(trial))
        self._write(f"failed    {label}: {_error_line(trial)}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any,
                         **info: Any) -> None:
        """Tune retries the trial after a lost worker, or a failure of the machinery
        before the trial's code ran (which spends none of ``max_failures``: the sweep's
        summary and ``machinery_retries`` say which, ``bench.run.attempts``)."""
        label = self.labels.setdefault(trial.trial_id, trial_label(trial))
        self._write(f"retrying  {label}: {_error_line(trial)} "
                    f"(Tune's failure {trial.num_failures})")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._restore(trials)
        self._summary()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._restore(trials)  # a stage restored finished runs no step
        self._summary(force=True)


# Ray's loggers whose lines go to the sweep's log file instead of the console.
_RAY_LOGGERS = ("ray.tune", "ray.train", "ray.air")


def log_path(results: Path, sweep: str) -> Path:
    """``<results>/logs/<sweep>.log``: Tune's table and log lines of a sweep (appended)."""
    return Path(results) / "logs" / f"{sweep}.log"


class _FileReporter(CLIReporter):
    """Tune's status table, appended to the sweep's log file instead of printed."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def _print(self, msg: str) -> None:
        with self.path.open("a") as handle:
            handle.write(msg + "\n")


def run_config_kwargs(trials: int, spec: Any, verbose: bool, results: Path) -> dict[str, Any]:
    """``RunConfig`` arguments for a stage of ``trials`` trials of ``spec``.

    Always a ``ProgressView`` on stdout; without ``verbose`` Tune prints nothing itself
    and its status table goes to ``log_path`` every 30 s (with ``tune_output``, which
    selects Tune's classic output engine: the new one ignores ``progress_reporter``).
    """
    view = ProgressView(trials, spec.metric, spec.mode)
    if verbose:
        return {"callbacks": [view]}
    # No metric/mode here: Tune gives the reporter the TuneConfig's (and refuses both).
    reporter = _FileReporter(log_path(results, spec.name), max_report_frequency=30)
    return {"callbacks": [view], "verbose": 1, "progress_reporter": reporter}


@contextlib.contextmanager
def tune_output(results: Path, sweep: str, verbose: bool) -> Iterator[None]:
    """While a sweep runs (not ``verbose``): Ray Tune's log lines go to ``log_path``.

    Ray's ``ray.tune``/``ray.train``/``ray.air`` loggers get a file handler and stop
    propagating to the console; ``RAY_AIR_NEW_OUTPUT=0`` lets Tune use the
    ``progress_reporter`` of ``run_config_kwargs``. Both are put back afterwards.
    """
    if verbose:
        yield
        return
    path = log_path(results, sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = []
    for name in _RAY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        with variable_set("RAY_AIR_NEW_OUTPUT", "0"):
            yield
    finally:
        for logger, propagate, level in saved:
            logger.removeHandler(handler)
            logger.propagate, logger.level = propagate, level
        handler.close()
