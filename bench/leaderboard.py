"""Trials → leaderboard: statistics over seeds and samples, ranked by the sweep's metric.

One row per sweep x dataset x model x loss. Only finished trials (status ``TERMINATED``)
enter the statistics; failed ones (``ERROR``, ``NAN``) and unfinished ones (anything else,
e.g. ``STOPPED``) are counted in their own columns so a row never hides its losses.

The 95% confidence interval of the mean is Student's t over the finished trials of a row:
``mean ± t(0.975, n-1) * std / sqrt(n)`` with the sample standard deviation (ddof=1); it is
NaN when a row has fewer than two finished trials, because one value says nothing about
the spread.

Two leaderboards are compared row by row with :func:`compare`: a difference is called
*distinct* when the two 95% confidence intervals do not overlap, a conservative test (it
implies a Welch t-test at roughly p < 0.01) chosen because it is easy to read off a table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns that identify one leaderboard row.
KEYS = ["sweep", "dataset", "model", "loss"]
#: Statuses of trials that ran to their end; only these enter the statistics.
FINISHED = ("TERMINATED",)
#: Statuses of trials that failed (an exception, or a loss that went NaN).
FAILED = ("ERROR", "NAN")
DEFAULT_METRIC = "val_mean_iou"


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile ``t_p`` with ``dof`` degrees of freedom (``dof >= 1``)."""
    if dof < 1:
        raise ValueError(f"t_quantile: dof must be >= 1, got {dof}")
    from scipy.stats import t  # scipy is a dependency of scikit-learn, always present

    return float(t.ppf(p, dof))


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval ``(low, high)`` of the mean of ``values`` (shape (n,)).

    NaN values are ignored; fewer than two values give ``(nan, nan)``.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = v.size
    if n < 2:
        return math.nan, math.nan
    mean, std = float(v.mean()), float(v.std(ddof=1))
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def default_mode(metric: str) -> str:
    """``"min"`` for losses and errors, ``"max"`` for everything else (IoU, dice, accuracy)."""
    lowered = metric.lower()
    return "min" if ("loss" in lowered or "error" in lowered or "mse" in lowered) else "max"


def metric_names(trials: pd.DataFrame) -> list[str]:
    """The metric columns a leaderboard can rank by: numeric ``val_*`` columns of ``trials``."""
    return [
        c for c in trials.columns
        if c.startswith("val_") and pd.api.types.is_numeric_dtype(trials[c])
    ]


def _sweep_metric(trials: pd.DataFrame) -> tuple[str, str]:
    """The metric and mode the trials of one sweep were tuned for."""
    metric = first_value(trials, "metric") or DEFAULT_METRIC
    mode = first_value(trials, "mode") or default_mode(metric)
    return str(metric), str(mode)


def first_value(frame: pd.DataFrame, column: str) -> Any:
    """The first non-null value of ``frame[column]``, or None when absent or all null."""
    if column not in frame.columns:
        return None
    values = frame[column].dropna()
    return values.iloc[0] if len(values) else None


def _json_list(values: pd.Series) -> str:
    """A JSON list of the non-null values, numbers as numbers."""
    out = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            continue
        out.append(v.item() if isinstance(v, np.generic) else v)
    return json.dumps(out)


def _aggregate_group(group: pd.DataFrame, metric: str, mode: str) -> dict[str, Any]:
    """Statistics of one sweep x dataset x model x loss group of trials."""
    # Without a status column (e.g. hand-made tables) every trial counts as finished.
    status = (group["status"].astype(str) if "status" in group
              else pd.Series(FINISHED[0], index=group.index))
    done = group[status.isin(FINISHED)]
    values = done[metric].astype("float64")  # nullable NA -> NaN
    finite = done[np.isfinite(values)]  # a finished trial may still lack the metric
    v = values[np.isfinite(values)]
    n = int(v.size)
    row: dict[str, Any] = {
        "metric": metric,
        "mode": mode,
        f"{metric}_mean": float(v.mean()) if n else math.nan,
        f"{metric}_std": float(v.std(ddof=1)) if n >= 2 else math.nan,
        "count": n,
        "failed": int(status.isin(FAILED).sum()),
        "unfinished": int((~status.isin(FINISHED + FAILED)).sum()),
    }
    low, high = confidence_interval(v.to_numpy())
    row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
    if n:
        best_pos = int(np.argmax(v.to_numpy()) if mode == "max" else np.argmin(v.to_numpy()))
        best = finite.iloc[best_pos]
        row[f"{metric}_best"] = float(v.iloc[best_pos])
        row["best_trial_id"] = str(best.get("trial_id", ""))
        row["best_mlflow_run_id"] = _str_or_none(best.get("mlflow_run_id"))
        row["best_seed"] = _int_or_none(best.get("seed"))
        row["best_predictions_png"] = _str_or_none(best.get("predictions_png"))
    else:
        row[f"{metric}_best"] = math.nan
        row["best_trial_id"] = row["best_mlflow_run_id"] = row["best_predictions_png"] = None
        row["best_seed"] = None
    # Cost: what a configuration takes to train, averaged over its finished trials.
    row["n_params"] = _int_or_none(done["n_params"].median()) if "n_params" in done and n else None
    for col in ("samples_per_second", "train_seconds", "epochs_done"):
        row[f"{col}_mean"] = (
            float(done[col].astype(float).mean()) if col in done and len(done) else math.nan
        )
    # Every other validation metric's mean, so reports can show e.g. per-class IoU.
    for col in metric_names(group):
        if col != metric:
            row[f"{col}_mean"] = float(done[col].astype(float).mean()) if len(done) else math.nan
    # What reproduces the row: its runs, seeds, trial ids, the spec and the versions.
    row["mlflow_run_ids"] = _json_list(finite["mlflow_run_id"]) if "mlflow_run_id" in finite \
        else "[]"
    row["seeds"] = _json_list(finite["seed"]) if "seed" in finite else "[]"
    row["trial_ids"] = _json_list(finite["trial_id"]) if "trial_id" in finite else "[]"
    row["spec"] = first_value(group, "spec")
    row["versions"] = first_value(group, "versions")
    return row


def _str_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def aggregate(
    trials: pd.DataFrame, metric: str | None = None, mode: str | None = None
) -> pd.DataFrame:
    """Aggregate trials (one row per trial) into a leaderboard.

    Args:
        trials: the trials table (schema of ``trials.parquet``); may hold several sweeps.
        metric: rank by this column instead of each sweep's own ``metric``.
        mode: ``"max"`` or ``"min"``; defaults to the sweep's mode for its own metric,
            else to :func:`default_mode`.

    Returns:
        One row per sweep x dataset x model x loss, sorted by sweep then ``rank`` (1 = best;
        rows without a finished trial rank last), with the columns of ``leaderboard.parquet``:
        ``{metric}_mean, _std, _ci_low, _ci_high, _best, count, failed, unfinished,
        best_trial_id, best_mlflow_run_id, n_params, samples_per_second_mean,
        train_seconds_mean, mlflow_run_ids, seeds, trial_ids, spec, versions`` and the mean
        of every other ``val_*`` column.
    """
    if mode is not None and mode not in ("max", "min"):
        raise ValueError(f"aggregate: mode must be 'max' or 'min', got {mode!r}")
    missing = [k for k in KEYS if k not in trials.columns]
    if missing:
        raise ValueError(f"aggregate: trials lack the columns {missing}; have {list(trials)}")
    if trials.empty:
        return pd.DataFrame(columns=[*KEYS, "metric", "mode", "rank", "count"])
    rows = []
    for sweep, sweep_trials in trials.groupby("sweep", sort=True, dropna=False):
        sweep_metric, sweep_mode = _sweep_metric(sweep_trials)
        m = metric or sweep_metric
        if m not in sweep_trials.columns:
            raise ValueError(
                f"aggregate: sweep {sweep!r} has no metric column {m!r}; "
                f"choose one of: {', '.join(metric_names(sweep_trials))}"
            )
        md = mode or (sweep_mode if m == sweep_metric else default_mode(m))
        group_rows = []
        for key, group in sweep_trials.groupby(KEYS, sort=True, dropna=False):
            stats = _aggregate_group(group, m, md)
            group_rows.append({**dict(zip(KEYS, key, strict=True)), **stats})
        board = pd.DataFrame(group_rows)
        # Best first; NaN (no finished trial) last whatever the mode.
        board["rank"] = (
            board[f"{m}_mean"].rank(ascending=(md == "min"), method="min", na_option="bottom")
            .astype(int)
        )
        rows.append(board.sort_values(["rank", "model", "loss"], kind="stable"))
    out = pd.concat(rows, ignore_index=True)
    front = [*KEYS, "rank", "metric", "mode"]
    return out[front + [c for c in out.columns if c not in front]]


# ----------------------------------------------------------------------------------------
# Reading results folders


def _read_table(path: Path, sweep: str | None) -> pd.DataFrame:
    """Read a Parquet file or a hive-partitioned folder (``NAME/sweep=X/part-0.parquet``).

    The files of a folder may differ in columns (sweeps of datasets with different class
    counts have different ``val_iou_class_k``): their schemas are unified, a column absent
    from a file reads as null. A ``sweep`` column stored in the files and the ``sweep=X``
    folder name are the same field.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    plain = ds.dataset(str(path), format="parquet")
    schemas = [f.physical_schema for f in plain.get_fragments()]
    if not schemas:
        return pd.DataFrame()
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    if path.is_dir():
        field = schema.field("sweep") if "sweep" in schema.names else pa.field("sweep", pa.string())
        partitioning = ds.partitioning(pa.schema([field]), flavor="hive")
        if "sweep" not in schema.names:
            schema = schema.append(field)
        dataset = ds.dataset(str(path), format="parquet", partitioning=partitioning, schema=schema)
    else:
        dataset = plain
    table = dataset.to_table(filter=(ds.field("sweep") == sweep) if sweep else None)
    frame = table.to_pandas()
    # Hive partition keys may come back as dictionary (categorical) columns: make them plain.
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


def load_results(
    results_dir: str | Path, sweep: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``trials.parquet`` and ``history.parquet`` under ``results_dir``.

    Either may be a single file or a hive-partitioned folder. ``sweep`` keeps only that
    sweep's rows. A missing ``history.parquet`` gives an empty history.

    Raises:
        FileNotFoundError: no ``trials.parquet`` under ``results_dir``.
    """
    root = Path(results_dir)
    trials_path = root / "trials.parquet"
    if not trials_path.exists():
        raise FileNotFoundError(f"{root}: no trials.parquet (has a sweep been run here?)")
    trials = _read_table(trials_path, sweep)
    history_path = root / "history.parquet"
    history = _read_table(history_path, sweep) if history_path.exists() else pd.DataFrame()
    return trials, history


# ----------------------------------------------------------------------------------------
# Comparing two leaderboards


def compare(
    left: pd.DataFrame, right: pd.DataFrame, metric: str
) -> pd.DataFrame:
    """Row-by-row comparison of two leaderboards on ``metric``.

    Rows are matched on dataset x model x loss (not the sweep, which is what differs).

    Returns:
        One row per configuration present in either: ``dataset, model, loss, mean_a, std_a,
        count_a, mean_b, std_b, count_b, diff`` (b - a), ``better`` ("a", "b" or "" when
        equal or unknown, by the mode) and ``distinct``: True when the two 95% confidence
        intervals do not overlap, False when they do, None when either side has fewer
        than two finished trials (no spread to judge against).
    """
    cols = {
        f"{metric}_mean": "mean", f"{metric}_std": "std", "count": "count",
        f"{metric}_ci_low": "ci_low", f"{metric}_ci_high": "ci_high",
    }
    keys = ["dataset", "model", "loss"]
    for name, board in (("a", left), ("b", right)):
        absent = [c for c in cols if c not in board.columns]
        if absent:
            raise ValueError(f"compare: leaderboard {name} lacks {absent} (metric {metric!r})")
    a = left[keys + list(cols)].rename(columns={k: f"{v}_a" for k, v in cols.items()})
    b = right[keys + list(cols)].rename(columns={k: f"{v}_b" for k, v in cols.items()})
    both = a.merge(b, on=keys, how="outer", sort=True)
    mode = first_value(left, "mode") or default_mode(metric)
    both["diff"] = both["mean_b"] - both["mean_a"]

    def better(d: float) -> str:
        if not np.isfinite(d) or d == 0:
            return ""
        return "b" if (d > 0) == (mode == "max") else "a"

    def distinct(r: pd.Series) -> bool | None:
        bounds = [r["ci_low_a"], r["ci_high_a"], r["ci_low_b"], r["ci_high_b"]]
        if not all(np.isfinite(float(x)) for x in bounds):
            return None
        return bool(r["ci_high_a"] < r["ci_low_b"] or r["ci_high_b"] < r["ci_low_a"])

    both["better"] = both["diff"].map(better)
    both["distinct"] = both.apply(distinct, axis=1).astype(object)
    for c in ("count_a", "count_b"):
        both[c] = both[c].fillna(0).astype(int)
    return both


# ----------------------------------------------------------------------------------------
# Presentation shared by the CLI and the report


def latest_sweep(trials: pd.DataFrame) -> str:
    """The sweep of ``trials`` whose last trial ended last (alphabetical last without times)."""
    if trials.empty:
        raise ValueError("latest_sweep: no trials")
    sweeps = trials["sweep"].astype(str)
    if "ended_at" in trials.columns and trials["ended_at"].notna().any():
        ends = pd.to_datetime(trials["ended_at"], utc=True, errors="coerce")
        return str(ends.groupby(sweeps).max().idxmax())
    return str(sorted(sweeps.unique())[-1])


def _fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or an empty string for None / NaN."""
    if value is None or value is pd.NA:
        return ""
    try:
        if math.isnan(float(value)):
            return ""
    except (TypeError, ValueError):
        return str(value)
    return format(value, spec)


def summary(board: pd.DataFrame, *, digits: int = 4) -> pd.DataFrame:
    """The leaderboard as display strings, one column per thing a reader compares.

    Columns: rank, sweep, dataset, model, loss, ``{metric}`` (mean ± std), ``95% CI``,
    ``n`` (finished trials), ``failed``, ``best``, ``best run`` (MLflow run id, else trial
    id), ``params``, ``samples/s``, ``train s``.
    """
    if board.empty:
        return pd.DataFrame()
    metric = str(board["metric"].iloc[0])
    f = f".{digits}f"
    rows = []
    for _, r in board.iterrows():
        m = str(r["metric"])
        mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
        cell = _fmt(mean, f) + (f" ± {_fmt(std, f)}" if _fmt(std, f) else "")
        lo, hi = _fmt(r.get(f"{m}_ci_low"), f), _fmt(r.get(f"{m}_ci_high"), f)
        rows.append({
            "rank": str(r["rank"]),
            "sweep": str(r["sweep"]),
            "dataset": str(r["dataset"]),
            "model": str(r["model"]),
            "loss": str(r["loss"]),
            metric: cell,
            "95% CI": f"[{lo}, {hi}]" if lo else "",
            "n": str(r["count"]),
            "failed": str(r.get("failed", 0)),
            "best": _fmt(r.get(f"{m}_best"), f),
            "best run": str(r.get("best_mlflow_run_id") or r.get("best_trial_id") or ""),
            "params": _fmt(r.get("n_params"), ",d"),
            "samples/s": _fmt(r.get("samples_per_second_mean"), ".1f"),
            "train s": _fmt(r.get("train_seconds_mean"), ".1f"),
        })
    return pd.DataFrame(rows)
