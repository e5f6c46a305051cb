"""Tune's results become rows; rows become Parquet, written atomically per sweep.

Layout under the results folder (hive partitioning, read back by pandas/pyarrow as one
table with a ``sweep`` column)::

    trials.parquet/sweep=NAME/part-0.parquet       one row per trial
    history.parquet/sweep=NAME/part-0.parquet      one row per trial x epoch
    leaderboard.parquet/sweep=NAME/part-0.parquet  one row per dataset x model x loss
    cases.parquet/sweep=NAME/part-0.parquet        one row per trial x test case x class
    predictions/NAME/TRIAL_ID.png                  sample predictions of each trial

Read them back with ``bench.results.leaderboard.load_results``, which unifies the schemas of
sweeps whose columns differ (e.g. datasets with other class counts).
While a sweep runs, ``trials`` and ``history`` also hold one ``part-<trial id>.parquet`` per
trial ended so far (``write_part``: a trial's end costs the same at trial 10,000 as at
trial 10), compacted into ``part-0`` at the sweep's end (``compact``).
A sweep's files are rewritten whole (a resumed sweep replaces its own rows, other
sweeps are untouched); each goes to a hidden temporary file first and is moved into
place with ``os.replace``, so a reader never sees half a file. Everything comes from
Tune's results and checkpoints, not from a folder the trials share, so it works the
same when trials run on other machines.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import cells
from bench.common.errors import UsageError, error_line
from bench.spec.model import SweepSpec
from bench.common.names import (
    CASE_COLUMNS,
    CASE_METRICS,
    CASES_FILE,
    CHECKPOINT_STATE,
    END_COMPLETED,
    END_ERROR,
    END_NAN,
    PREDICTIONS_PNG,
)
from bench.common.names import COST_COLUMNS

TERMINATED, ERROR, NAN, STOPPED = "TERMINATED", "ERROR", "NAN", "STOPPED"
FAILED_STATUSES = (ERROR, NAN)
UNFINISHED_REASONS = ("interrupted", "not_started")  # a rerun of the sweep continues them
TABLES = ("trials", "history", "leaderboard", "cases")
STAGE_FINAL = "final"  # a plain sweep's trials; a protocol's config says ``stage`` itself
# Per-trial means of the per-case test scores (NaN without cases, e.g. next-frame tasks).
CASE_MEAN_COLUMNS = tuple(f"test_case_{metric}_mean" for metric in CASE_METRICS)
# A trial's last attempt's set-up: worker process start -> data start (process start,
# imports, MLflow run), data, model build, compile (model built -> first step).
SETUP_COLUMNS = ("setup_process_s", "setup_data_s", "setup_model_s", "setup_compile_s")
_KEY_COLUMNS = ("trial_id", "model", "loss", "dataset", "seed")
CONTRACT_METRICS = ("val_loss", "val_mean_iou", "val_dice_coef", "val_pixel_accuracy")

# Always strings, even when every value of a sweep is null (keeps sweeps' schemas equal).
_STRING_COLUMNS = (
    "trial_id", "model", "loss", "dataset", "status", "error", "end_reason", "params",
    "node", "node_ip", "node_id", "mlflow_run_id", "mlflow_experiment_id", "spec", "versions",
    "metric", "mode", "predictions_png", "trial_name", "stage", "class_name",
)


@dataclass(frozen=True)
class TrialOutcome:
    """What the driver knows of one trial after ``Tuner.fit``.

    Attributes:
        trial_id: Tune's trial id.
        config: the trial's hyperparameters (``model``, ``loss``, ``seed``, ``lr``, ...).
        metrics: the trial's last reported result ({} if it never reported).
        history: one dict per epoch, from the trial's last checkpoint.
        error: Tune's error for a trial that raised, else None.
        png: the predictions PNG from the last checkpoint, if any (a temporary path).
        cases: the per test case x class scores of a tested trial (``CASE_COLUMNS``),
            from its final checkpoint; None when it was not tested.
        unfinished: the sweep was interrupted before this trial ended (a rerun continues
            it); see ``bench.run.interrupted``.
        outbox: what the trial's MLflow run may still lack (``bench.tracking.outbox``, as a dict),
            from its last checkpoint or its error result; None without either.
        attempts: how many times the trial started: 1 + the failures (lost process or
            node) Tune retried it after.
    """

    trial_id: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    error: BaseException | None
    png: Path | None
    cases: pd.DataFrame | None = None
    unfinished: bool = False
    outbox: dict[str, Any] | None = None
    attempts: int = 1


def outcome_from_result(result: Any, scratch: Path, *, unfinished: bool = False,
                        attempts: int = 1) -> TrialOutcome:
    """Read one ``ray.tune.Result``: its last metrics, its checkpoint's history, PNG, cases.

    ``scratch`` is a folder where the PNG is copied out of the checkpoint; ``unfinished``
    says the sweep's interruption left this trial unfinished.
    """
    trial_id = Path(result.path).name  # plan.trial_dirname names the folder by trial id
    history: list[dict[str, Any]] = []
    png = cases = outbox = None
    if result.checkpoint is not None:
        with result.checkpoint.as_directory() as folder:
            state_path = Path(folder) / CHECKPOINT_STATE
            if state_path.exists():
                state = json.loads(state_path.read_text())
                history, outbox = state["history"], state.get("mlflow_outbox")
            if (Path(folder) / PREDICTIONS_PNG).exists():
                png = scratch / f"{trial_id}.png"
                shutil.copyfile(Path(folder) / PREDICTIONS_PNG, png)
            if (Path(folder) / CASES_FILE).exists():
                cases = pd.read_parquet(Path(folder) / CASES_FILE)
    metrics = dict(result.metrics or {})
    if isinstance(metrics.get("mlflow_outbox"), str):  # an error result's (newer) outbox
        outbox = json.loads(metrics.pop("mlflow_outbox"))
    return TrialOutcome(trial_id, dict(result.config or {}), metrics, history, result.error,
                        png, cases=cases, unfinished=unfinished, outbox=outbox,
                        attempts=attempts)


def _best_row(history: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    best, best_value = {}, None
    for row in history:
        value = row.get(metric)
        if value is None or not math.isfinite(value):
            continue
        if best_value is None or (value > best_value if mode == "max" else value < best_value):
            best, best_value = row, value
    return best


def _status(outcome: TrialOutcome) -> tuple[str, str, str | None]:
    """(status, end_reason, error message) of a trial."""
    if outcome.error is not None:  # raised in Tune: a process or node lost too often
        return ERROR, "error", error_line(outcome.error)
    reason = outcome.metrics.get("end_reason") or ""
    if reason == END_ERROR:  # the trial's own code raised: reported as its end, not retried
        lines = [line.strip() for line in str(outcome.metrics.get("error") or "").splitlines()
                 if line.strip()]
        return ERROR, reason, (lines[0] if lines else "error")[:500]
    if reason == END_NAN:
        epoch = outcome.metrics.get("epoch")
        return NAN, reason, f"loss became non-finite at epoch {epoch}"
    if reason == END_COMPLETED:
        return TERMINATED, reason, None
    if reason:  # patience, time budget: stopped by its own rule
        return STOPPED, reason, None
    if not outcome.metrics:
        return STOPPED, "not_started", None
    # Reported epochs but no end reason of its own: the sweep's interruption left it
    # unfinished, or (the sweep running on) the scheduler stopped it.
    return STOPPED, "interrupted" if outcome.unfinished else "scheduler", None


def trial_keys(outcome: TrialOutcome, spec: SweepSpec) -> dict[str, Any]:
    """A trial's key columns: ``trial_id, model, loss, dataset, seed``. ``dataset`` is the
    label of the trial's dataset (the sweep's only one when its config names none)."""
    config = cells.resolve(outcome.config)
    return {"trial_id": outcome.trial_id, "model": config.get("model"),
            "loss": config.get("loss"),
            "dataset": config.get("dataset") or spec.datasets[0].label,
            "seed": config.get("seed")}


def trial_rows(
    outcomes: Iterable[TrialOutcome],
    spec: SweepSpec,
    *,
    versions: Mapping[str, str],
    run_ids: Mapping[str, str],
    experiment_id: str,
    png_paths: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trials, history)`` tables of a sweep, without the ``sweep`` column (its partition).

    Metric values in ``trials`` are those of each trial's best epoch by the sweep's
    metric and mode; ``test_*`` and ``selected_epoch`` come from the trial's last result
    (NaN for a trial that was not tested: stopped by a scheduler, diverged, failed).
    ``run_ids`` maps trial id to MLflow run id for trials that failed before reporting;
    ``png_paths`` maps trial id to its PNG relative to the results.
    """
    trials, history = [], []
    for outcome in outcomes:
        config, metrics = outcome.config, outcome.metrics
        status, reason, error = _status(outcome)
        best = _best_row(outcome.history, spec.metric, spec.mode)
        # The first epoch pays for tracing: leave it out when there are others.
        per_epoch_speed = [r["samples_per_second"] for r in outcome.history[1:]
                           or outcome.history
                           if math.isfinite(r.get("samples_per_second", math.nan))]
        keys = trial_keys(outcome, spec)
        ended = metrics.get("timestamp")
        # Tune's time_total_s adds up every attempt of a resumed trial.
        started = ended - metrics.get("time_total_s", 0.0) if ended else None
        trials.append({
            **keys,
            "lr": config.get("lr"),
            "batch_size": config.get("batch_size"),
            "optimizer": config.get("optimizer"),
            "weight_decay": config.get("weight_decay"),
            "augment": config.get("augment"),
            "epochs": spec.epochs,
            "epochs_done": len(outcome.history),
            "attempts": outcome.attempts,
            "status": status,
            "end_reason": reason,
            "error": error,
            "params": json.dumps(config, sort_keys=True, default=str),
            **{k: v for k, v in best.items()
               if k not in ("epoch", "lr", "epoch_seconds", "cpu_seconds", "rss_mb",
                            "samples_per_second", "epoch_started_at")},
            "best_epoch": best.get("epoch"),
            "train_seconds": metrics.get("train_seconds"),
            "samples_per_second": statistics.median(per_epoch_speed) if per_epoch_speed
            else None,
            "n_params": metrics.get("n_params"),
            "trial_name": metrics.get("trial_name"),
            "node": metrics.get("node"),
            "node_ip": metrics.get("node_ip"),
            "node_id": metrics.get("node_id"),
            "worker_pid": metrics.get("worker_pid"),
            "worker_trial": metrics.get("worker_trial"),
            "mlflow_run_id": metrics.get("mlflow_run_id") or run_ids.get(outcome.trial_id),
            "mlflow_experiment_id": experiment_id,
            "spec": spec.source,
            "versions": json.dumps(dict(versions), sort_keys=True),
            "started_at": pd.Timestamp(started, unit="s", tz="UTC") if started else None,
            "ended_at": pd.Timestamp(ended, unit="s", tz="UTC") if ended else None,
            "first_step_at": (pd.Timestamp(metrics["first_step_at"], unit="s", tz="UTC")
                              if metrics.get("first_step_at") else None),
            "metric": spec.metric,
            "mode": spec.mode,
            "predictions_png": png_paths.get(outcome.trial_id),
            "stage": config.get("stage") or STAGE_FINAL,
            "selected_epoch": metrics.get("selected_epoch"),
            "final_seconds": metrics.get("final_seconds"),
            **{column: metrics.get(column) for column in COST_COLUMNS},
            **{k: metrics.get(k) for k in SETUP_COLUMNS},
            **{k: v for k, v in metrics.items() if k.startswith("test_")},
        })
        history.extend({**keys, **row} for row in outcome.history)
    trials_frame = pd.DataFrame(trials)
    # The contract's metric columns exist even when no trial reported an epoch.
    for column in dict.fromkeys((spec.metric, *CONTRACT_METRICS)):
        if column not in trials_frame.columns:
            trials_frame[column] = math.nan
    # Every validation metric has its test twin, NaN for the trials that were not tested.
    tested = [f"test_{c.removeprefix('val_')}" for c in trials_frame.columns
              if c.startswith("val_")]
    for column in dict.fromkeys((*tested, *CASE_MEAN_COLUMNS, "final_seconds",
                                 *COST_COLUMNS,
                                 *SETUP_COLUMNS)):
        if column not in trials_frame.columns:
            trials_frame[column] = math.nan
        trials_frame[column] = trials_frame[column].astype("float64")
    history_frame = pd.DataFrame(history, columns=None if history else [
        "trial_id", "model", "loss", "dataset", "seed", "epoch"])
    return _typed(trials_frame), _typed(history_frame)


def case_rows(outcomes: Iterable[TrialOutcome], spec: SweepSpec) -> pd.DataFrame:
    """The ``cases`` table of a sweep (without ``sweep``): one row per tested trial x test
    case x class, keyed like ``trials`` (``trial_id, model, loss, dataset, seed``)."""
    frames = []
    for outcome in outcomes:
        if outcome.cases is None or not len(outcome.cases):
            continue
        keys = trial_keys(outcome, spec)
        frame = outcome.cases.loc[:, list(CASE_COLUMNS)].copy()
        for position, (key, value) in enumerate(keys.items()):
            frame.insert(position, key, value)
        frames.append(frame)
    if not frames:
        frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in (*_KEY_COLUMNS,
                                                                       *CASE_COLUMNS)})
    else:
        frame = pd.concat(frames, ignore_index=True)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _STRING_COLUMNS:
            frame[column] = frame[column].astype("string")
    for column in ("started_at", "ended_at", "first_step_at"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("seed", "batch_size", "epochs", "epochs_done", "attempts", "best_epoch",
                   "n_params", "worker_pid", "worker_trial",
                   "epoch", "selected_epoch", "case", "class_index"):
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    return frame


def table_path(results: Path, table: str, sweep: str) -> Path:
    """``<results>/<table>.parquet/sweep=<sweep>/part-0.parquet``."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; allowed: {', '.join(TABLES)}")
    return Path(results) / f"{table}.parquet" / f"sweep={sweep}" / "part-0.parquet"


def write_table(results: Path, table: str, sweep: str, frame: pd.DataFrame) -> Path:
    """Replace ``sweep``'s partition of ``table`` with ``frame``, atomically.

    A ``sweep`` column in ``frame`` is dropped: the folder name carries it.
    """
    path = table_path(results, table, sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name: pyarrow's dataset discovery skips files starting with "." or "_".
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.drop(columns=["sweep"], errors="ignore").to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as error:  # a full disk, a quota: the previous version stays in place
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write ({error.strerror or error}); the previous "
                         f"version is kept") from None
    return path


# ----------------------------------------------------------------------------------------
# Live parts: one file per trial while a sweep runs, compacted into part-0 at its end

SCHEMA_PART = "part-0-schema.parquet"  # no rows: the union of the parts' columns (see below)


def part_path(results: Path, table: str, sweep: str, part: str) -> Path:
    """``<results>/<table>.parquet/sweep=<sweep>/part-<part>.parquet`` (``part``: a trial id)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in part)
    return table_path(results, table, sweep).with_name(f"part-{safe}.parquet")


def _replace_file(path: Path, table: Any) -> None:
    """Write the Arrow ``table`` to ``path`` through a hidden temporary file (UsageError when
    the disk refuses; the previous file stays)."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write ({error.strerror or error}); the previous "
                         f"version is kept") from None


def write_part(results: Path, table: str, sweep: str, part: str, frame: pd.DataFrame) -> Path:
    """Write (or replace) one part of ``sweep``'s partition of ``table``, atomically.

    Costs the same whatever the number of parts: one small file, and the zero-row
    ``part-0-schema.parquet`` rewritten only when ``frame`` brings a column or a type the
    partition's files lacked. That file sorts first, and pyarrow/pandas take a folder's
    schema from its first file: so every column of every part is read, and a column that
    is null in one part and typed in another reads as the type. DuckDB reads the parts with
    ``union_by_name=true``. A ``sweep`` column in ``frame`` is dropped.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = part_path(results, table, sweep, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(frame.drop(columns=["sweep"], errors="ignore"),
                                 preserve_index=False)
    anchor = path.with_name(SCHEMA_PART)
    compacted = table_path(results, table, sweep)
    known = [pq.read_schema(p) for p in (anchor if anchor.exists() else compacted,)
             if p.exists()]
    union = pa.unify_schemas([*known, arrow.schema], promote_options="permissive")
    if not known or not union.equals(known[0], check_metadata=False):
        _replace_file(anchor, union.empty_table())
    _replace_file(path, arrow)
    return path


def _swap_folders(new: Path, old: Path) -> None:
    """Put folder ``new`` in ``old``'s place; ``old``'s content ends up at ``new``.

    Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two in one step, so a reader lists
    either every old file or the new ones; elsewhere two renames leave ``old`` missing
    for an instant (a reader then sees no rows of the sweep, never a trial twice).
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        exchange = libc.renameat2
    except (OSError, AttributeError):
        exchange = None
    at_fdcwd, rename_exchange = -100, 2
    if exchange is not None and exchange(at_fdcwd, os.fsencode(new), at_fdcwd,
                                         os.fsencode(old), rename_exchange) == 0:
        return
    parked = new.with_name(new.name + ".old")
    os.rename(old, parked)
    os.rename(new, old)
    os.rename(parked, new)


def compact(results: Path, table: str, sweep: str, frame: pd.DataFrame) -> Path:
    """Replace ``sweep``'s whole partition of ``table`` (its ``part-0`` and every part
    ``write_part`` left) with ``frame`` as ``part-0``.

    Without other parts this is ``write_table``. With them, the new partition is written
    beside the results in a hidden folder and swapped in (``_swap_folders``), so a reader
    sees each trial once, then the old parts are removed. A full disk: UsageError, the
    previous partition stays.
    """
    path = table_path(results, table, sweep)
    if not path.parent.is_dir() or {p.name for p in path.parent.glob("*.parquet")} <= {
            path.name}:
        return write_table(results, table, sweep, frame)
    staging = Path(results) / f".{table}.{sweep}.{os.getpid()}.compact"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_table(staging, table, sweep, frame)
    except UsageError:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"{path.parent}: cannot write (the disk refused); the previous "
                         f"version is kept") from None
    new = table_path(staging, table, sweep).parent
    _swap_folders(new, path.parent)
    shutil.rmtree(staging, ignore_errors=True)
    return path
