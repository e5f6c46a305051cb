"""Tune's results become rows; rows become Parquet, written atomically per sweep.

Layout under the results folder (hive partitioning, read back by pandas/pyarrow as one
table with a ``sweep`` column)::

    trials.parquet/sweep=NAME/part-0.parquet       one row per trial
    history.parquet/sweep=NAME/part-0.parquet      one row per trial x epoch
    leaderboard.parquet/sweep=NAME/part-0.parquet  one row per configuration (config_id)
    cases.parquet/sweep=NAME/part-0.parquet        one row per tested trial x test case x class
    predictions/NAME/TRIAL_ID.png                  sample predictions of each trial

Every partition of a table is written with the table's one typed schema (``write_table``):
the table's base columns always, with their types even when every value is null (a sweep
whose trials all failed), plus every column another sweep's partition has (per-class
columns of datasets with other class counts), added as typed nulls. When a sweep brings a
column the others lack, their partitions are rewritten with it (null). So
``pd.read_parquet("results/trials.parquet")``, ``pyarrow.dataset`` and duckdb's
``read_parquet('results/trials.parquet/*/*.parquet')`` read every table whole.

Column names (this release): training metrics carry ``train_`` (``train_mean_iou``), the
per-trial means of per-case scores over the foreground are ``test_case_dice_fg`` (no
``_mean``, which the leaderboard's mean made ``_mean_mean``), times are UTC timestamps. ``upgrade_columns``
renames the older names on read (``RENAMED``), for one release.

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
import re
import shutil
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import cells
from bench.common.errors import UsageError, error_line
from bench.common.tune_result import unpack
from bench.common.names import (
    CASE_COLUMNS,
    CASE_METRICS,
    CASES_FILE,
    CHECKPOINT_STATE,
    COST_COLUMNS,
    END_COMPLETED,
    END_ERROR,
    END_NAN,
    PREDICTIONS_PNG,
)
from bench.spec.configs import config_id
from bench.spec.model import SweepSpec

TERMINATED, ERROR, NAN, STOPPED = "TERMINATED", "ERROR", "NAN", "STOPPED"
FAILED_STATUSES = (ERROR, NAN)
UNFINISHED_REASONS = ("interrupted", "not_started")  # a rerun of the sweep continues them
TABLES = ("trials", "history", "leaderboard", "cases")
STAGE_FINAL = "final"  # a plain sweep's trials; a protocol's config says ``stage`` itself
# Per-trial means of the per-case test scores over the foreground classes
# (``bench.run.trial.cases.case_means``; NaN without cases, e.g. next-frame tasks). Tables
# of earlier releases hold the mean over every class, background included, as
# ``test_case_<metric>_mean``, read back as ``test_case_<metric>`` (``RENAMED``).
CASE_MEAN_COLUMNS = tuple(f"test_case_{metric}_fg" for metric in CASE_METRICS)
# A trial's last attempt's set-up: worker process start -> data start (process start,
# imports, MLflow run), data, model build, compile (model built -> first step).
SETUP_COLUMNS = ("setup_process_s", "setup_data_s", "setup_model_s", "setup_compile_s")
_KEY_COLUMNS = ("trial_id", "model", "loss", "dataset", "seed")
# What ``cases.parquet`` adds to the key columns: the trial's configuration and stage.
_CASE_KEY_COLUMNS = (*_KEY_COLUMNS, "config_id", "stage")
CONTRACT_METRICS = ("val_loss", "val_mean_iou", "val_dice_coef", "val_pixel_accuracy")

# Always strings, even when every value of a sweep is null (keeps sweeps' schemas equal).
_STRING_COLUMNS = (
    "trial_id", "model", "loss", "dataset", "status", "error", "end_reason", "params",
    "node", "node_ip", "node_id", "mlflow_run_id", "mlflow_experiment_id", "spec", "versions",
    "metric", "mode", "predictions_png", "trial_name", "stage", "class_name", "config_id",
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
        attempts: the trial's own starts: 1 + the times its worker or node was lost
            while it trained (``bench.run.attempts``).
        machinery_retries: the other failures Tune retried it after (a worker that failed
            to start or restore), which spend none of the spec's ``max_failures``.
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
    machinery_retries: int = 0


def outcome_from_result(result: Any, scratch: Path, *, unfinished: bool = False,
                        attempts: int = 1, machinery_retries: int = 0) -> TrialOutcome:
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
    metrics = unpack(result.metrics)  # the numbers Tune was not given back in place
    if isinstance(metrics.get("mlflow_outbox"), str):  # an error result's (newer) outbox
        outbox = json.loads(metrics.pop("mlflow_outbox"))
    return TrialOutcome(trial_id, dict(result.config or {}), metrics, history, result.error,
                        png, cases=cases, unfinished=unfinished, outbox=outbox,
                        attempts=attempts, machinery_retries=machinery_retries)


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


def trial_config_id(outcome: TrialOutcome, spec: SweepSpec) -> str:
    """The trial's configuration (``bench.spec.plan.config_id``): its cell and the values of
    the spec's hyperparameters in its config; the seeds of one configuration share it."""
    keys = trial_keys(outcome, spec)
    config = outcome.config
    return config_id(keys["dataset"], str(keys["model"]), str(keys["loss"]),
                     {name: config.get(name) for name in spec.params})


def trial_stage(outcome: TrialOutcome) -> str:
    """``tune`` or ``final`` (a plain sweep's trials are its final stage)."""
    return outcome.config.get("stage") or STAGE_FINAL


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
            "config_id": trial_config_id(outcome, spec),
            "lr": config.get("lr"),
            "batch_size": config.get("batch_size"),
            "optimizer": config.get("optimizer"),
            "weight_decay": config.get("weight_decay"),
            "augment": config.get("augment"),
            "epochs": spec.epochs,
            "epochs_done": len(outcome.history),
            "attempts": outcome.attempts,
            "machinery_retries": outcome.machinery_retries,
            "status": status,
            "end_reason": reason,
            "error": error,
            "params": json.dumps(config, sort_keys=True, default=str),
            **{renamed(k): v for k, v in best.items()
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
            "stage": trial_stage(outcome),
            "selected_epoch": metrics.get("selected_epoch"),
            "final_seconds": metrics.get("final_seconds"),
            **{column: metrics.get(column) for column in COST_COLUMNS},
            **{k: metrics.get(k) for k in SETUP_COLUMNS},
            **{renamed(k, "trials"): v for k, v in metrics.items() if k.startswith("test_")},
        })
        history.extend({**keys, **{renamed(k, "history"): v for k, v in row.items()}}
                       for row in outcome.history)
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
    case x class, keyed like ``trials`` (``trial_id, model, loss, dataset, seed``) with the
    trial's ``config_id`` and ``stage`` (only ``final`` trials are tested: ``docs/trust.md``)."""
    frames = []
    for outcome in outcomes:
        if outcome.cases is None or not len(outcome.cases):
            continue
        keys = {**trial_keys(outcome, spec), "config_id": trial_config_id(outcome, spec),
                "stage": trial_stage(outcome)}
        frame = outcome.cases.loc[:, list(CASE_COLUMNS)].copy()
        for position, (key, value) in enumerate(keys.items()):
            frame.insert(position, key, value)
        frames.append(frame)
    if not frames:
        frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in (*_CASE_KEY_COLUMNS,
                                                                       *CASE_COLUMNS)})
    else:
        frame = pd.concat(frames, ignore_index=True)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _STRING_COLUMNS:
            frame[column] = frame[column].astype("string")
    for column in ("started_at", "ended_at", "first_step_at", "epoch_started_at"):
        if column in frame.columns:
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values):  # seconds since the epoch
                values = pd.to_datetime(values, unit="s", utc=True)
            frame[column] = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
    for column in ("seed", "batch_size", "epochs", "epochs_done", "attempts",
                   "machinery_retries", "best_epoch",
                   "n_params", "worker_pid", "worker_trial",
                   "epoch", "selected_epoch", "case", "class_index"):
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    return frame


# ---- one schema per table

_STR, _F64, _I64, _BOOL = pa.large_string(), pa.float64(), pa.int64(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")  # every time column: one type, UTC, microseconds
_KEYS = {"trial_id": _STR, "model": _STR, "loss": _STR, "dataset": _STR, "seed": _I64}
_METRIC_TWINS = {c: _F64 for c in CONTRACT_METRICS} | {
    f"test_{c.removeprefix('val_')}": _F64 for c in CONTRACT_METRICS}
_HISTORY_EXTRAS = ("epoch", "epoch_seconds", "samples_per_second", "lr", "cpu_seconds",
                   "rss_mb", "epoch_started_at")
#: The columns every partition of a table has, typed, whatever its trials did.
BASE_SCHEMAS: dict[str, dict[str, pa.DataType]] = {
    "trials": {
        **_KEYS, "lr": _F64, "batch_size": _I64, "optimizer": _STR, "weight_decay": _F64,
        "augment": _BOOL, "epochs": _I64, "epochs_done": _I64, "attempts": _I64,
        "machinery_retries": _I64,
        "status": _STR, "end_reason": _STR, "error": _STR, "params": _STR,
        "train_loss": _F64, **_METRIC_TWINS, "best_epoch": _I64, "train_seconds": _F64,
        "samples_per_second": _F64, "n_params": _I64, "trial_name": _STR, "node": _STR,
        "node_ip": _STR, "node_id": _STR, "worker_pid": _I64, "worker_trial": _I64,
        "mlflow_run_id": _STR, "mlflow_experiment_id": _STR, "spec": _STR,
        "versions": _STR, "started_at": _TS, "ended_at": _TS, "first_step_at": _TS,
        "metric": _STR, "mode": _STR, "predictions_png": _STR, "stage": _STR,
        "selected_epoch": _I64, "final_seconds": _F64,
        **{c: _F64 for c in (*COST_COLUMNS, *SETUP_COLUMNS, *CASE_MEAN_COLUMNS)},
    },
    "history": {
        **_KEYS, "epoch": _I64, "train_loss": _F64,
        **{c: _F64 for c in CONTRACT_METRICS},
        "epoch_seconds": _F64, "samples_per_second": _F64, "lr": _F64,
        "cpu_seconds": _F64, "rss_mb": _F64, "epoch_started_at": _TS,
    },
    "cases": {**_KEYS, "case": _I64, "class_index": _I64, "class_name": _STR,
              **{c: _F64 for c in CASE_METRICS}},
    "leaderboard": {
        "dataset": _STR, "model": _STR, "loss": _STR, "rank": _I64, "metric": _STR,
        "mode": _STR, "ci_few": _BOOL, "count": _I64, "failed": _I64, "unfinished": _I64,
        "stopped_by_scheduler": _I64, "score": _F64, "seed_values": _STR,
        "best_trial_id": _STR, "best_mlflow_run_id": _STR, "best_seed": _I64,
        "best_predictions_png": _STR, "n_params": _I64, "mlflow_run_ids": _STR,
        "seeds": _STR, "trial_ids": _STR, "spec": _STR, "versions": _STR,
        "ranked_within_loss": _BOOL, "p_vs_best": _F64, "test_vs_best": _STR,
        "n_vs_best": _I64, "tied_with_best": _BOOL, "p_first": _F64, "rank_low": _I64,
        "rank_high": _I64,
    },
}
# Keras' training-metric names, as the history and trials of earlier releases stored them.
_TRAIN_METRIC = re.compile(r"(dice_coef|mean_iou|pixel_accuracy|iou_class_\d+|psnr|ssim"
                           r"|psnr_step_\d+)")
#: Old column name -> this release's, per table, applied on read (``upgrade_columns``).
RENAMED: dict[str, dict[str, str]] = {
    "trials": {f"test_case_{m}_mean": f"test_case_{m}" for m in CASE_METRICS},
    "leaderboard": {f"test_case_{m}_mean_mean": f"test_case_{m}_mean" for m in CASE_METRICS},
}


def renamed(column: str, table: str = "trials") -> str:
    """This release's name of ``table``'s ``column`` (``mean_iou`` -> ``train_mean_iou``)."""
    if table in ("trials", "history") and _TRAIN_METRIC.fullmatch(column):
        return f"train_{column}"
    return RENAMED.get(table, {}).get(column, column)


def upgrade_columns(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` (of ``table``, as an earlier release wrote it) with this release's column
    names and types: old names renamed (``renamed``; a new name already present wins),
    ``epoch_started_at`` seconds since the epoch become UTC timestamps."""
    mapping = {c: renamed(c, table) for c in frame.columns if renamed(c, table) != c
               and renamed(c, table) not in frame.columns}
    if mapping:
        frame = frame.rename(columns=mapping)
    for column in ("epoch_started_at", "attempt_started_at"):
        if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def _fallback_type(column: str) -> pa.DataType:
    """The type of a column no partition gives a value to: by its name."""
    if column in _STRING_COLUMNS or column.endswith(
            ("_id", "_ids", "_png", "_name", "seeds", "seed_values", "versions", "_vs_best")):
        return _STR
    if column.endswith("_at"):
        return _TS
    return _F64  # a metric of trials that never reported


def _pandas_typed(frame: pd.DataFrame, base: Mapping[str, pa.DataType]) -> pd.DataFrame:
    """``frame`` with every base column present and in its pandas twin of the Arrow type."""
    frame = frame.copy()
    for column, kind in base.items():
        values = frame[column] if column in frame.columns else pd.Series(
            [None] * len(frame), index=frame.index, dtype="object")
        if kind == _STR:
            values = values.astype("string")
        elif kind == _I64:
            values = pd.to_numeric(values, errors="coerce").round().astype("Int64")
        elif kind == _F64:
            values = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == _BOOL:
            values = values.astype("boolean")
        elif kind == _TS:
            if pd.api.types.is_numeric_dtype(values) and not values.isna().all():
                values = pd.to_datetime(values, unit="s", utc=True)
            values = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
        frame[column] = values
    return frame


def _target_schema(table: str, schemas: list[pa.Schema]) -> pa.Schema:
    """One schema over ``schemas``: the base columns first (their base types), then the
    others in order of appearance, each with the first non-null type any schema gives
    (numbers promoted to float when schemas disagree), else ``_fallback_type``."""
    base = BASE_SCHEMAS[table]
    names = list(dict.fromkeys([*base, *(n for s in schemas for n in s.names if n != "sweep")]))
    fields = []
    for name in names:
        if name in base:
            fields.append(pa.field(name, base[name]))
            continue
        kinds = [s.field(name).type for s in schemas if name in s.names
                 and not pa.types.is_null(s.field(name).type)]
        kind = kinds[0] if kinds else _fallback_type(name)
        if any(k != kind for k in kinds):
            numeric = all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds)
            kind = _F64 if numeric else _STR
        if pa.types.is_string(kind):
            kind = _STR
        if pa.types.is_timestamp(kind):
            kind = _TS
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with exactly ``schema``'s columns, in its order; absent ones typed nulls."""
    columns = []
    for target in schema:
        if target.name in data.column_names:
            column = data.column(target.name)
            if column.type != target.type:
                column = column.cast(target.type)
        else:
            column = pa.nulls(len(data), target.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _renamed_schema(schema: pa.Schema, table: str) -> pa.Schema:
    """``schema`` with this release's column names (``upgrade_columns``'s renames)."""
    names = [renamed(n, table) if renamed(n, table) not in schema.names else n
             for n in schema.names]
    return pa.schema([f.with_name(n) for f, n in zip(schema, names, strict=True)])


def _partitions(results: Path, table: str) -> list[Path]:
    folder = Path(results) / f"{table}.parquet"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("sweep=*/*.parquet") if not p.name.startswith((".", "_")))


def _replace(path: Path, data: pa.Table) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name: pyarrow's dataset discovery skips files starting with "." or "_".
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(data, tmp)
        os.replace(tmp, path)
    except OSError as error:  # a full disk, a quota: the previous version stays in place
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write ({error.strerror or error}); the previous "
                         f"version is kept") from None


def table_path(results: Path, table: str, sweep: str) -> Path:
    """``<results>/<table>.parquet/sweep=<sweep>/part-0.parquet``."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; allowed: {', '.join(TABLES)}")
    return Path(results) / f"{table}.parquet" / f"sweep={sweep}" / "part-0.parquet"


def write_table(results: Path, table: str, sweep: str, frame: pd.DataFrame) -> Path:
    """Replace ``sweep``'s partition of ``table`` with ``frame``, atomically, in the table's
    one typed schema (see the module docstring).

    A ``sweep`` column in ``frame`` is dropped: the folder name carries it. Other sweeps'
    partitions that lack a column of the new schema are rewritten with it (typed nulls);
    their values are untouched.
    """
    path = table_path(results, table, sweep)
    frame = upgrade_columns(frame.drop(columns=["sweep"], errors="ignore"), table)
    frame = _pandas_typed(frame, BASE_SCHEMAS[table])
    data = pa.Table.from_pandas(frame, preserve_index=False)
    others = {}
    for other in _partitions(results, table):
        if other == path:
            continue
        try:
            others[other] = pq.read_schema(other).remove_metadata()
        except (OSError, pa.ArrowInvalid):  # unreadable: left alone, not in the union
            continue
    schema = _target_schema(table, [data.schema, *(_renamed_schema(o, table) for o in others.values())])
    _replace(path, _conform(data, schema))
    for other, other_schema in others.items():
        if other_schema != schema:
            old = upgrade_columns(pq.ParquetFile(other).read().to_pandas(), table)
            old = _pandas_typed(old.drop(columns=["sweep"], errors="ignore"),
                                BASE_SCHEMAS[table])
            _replace(other, _conform(pa.Table.from_pandas(old, preserve_index=False), schema))
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
    # Columns chosen in the conversion: pandas' drop copied every block of the fragmented
    # one-row trial frame (a quarter of a trial end's table write, py-spy, many_trials.py).
    arrow = pa.Table.from_pandas(frame, preserve_index=False,
                                 columns=[c for c in frame.columns if c != "sweep"])
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
