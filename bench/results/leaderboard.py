"""Trials → leaderboard: statistics over seeds, ranked by the sweep's metric on the test split.

One row per configuration, ranked within each sweep x dataset: a sweep x dataset x model x
loss with one set of hyperparameter values (``config_id``, ``bench.spec.configs``; its
seeds share them). A cell searched with ``samples: N`` has N rows, each over its seeds.
Which trials count:

- **Finished** trials enter the statistics: status ``TERMINATED``, and ``STOPPED`` trials that
  ended by their own rule (``end_reason`` ``patience`` or ``time_budget``): stopping early
  is a normal end of training, and those trials were tested like the others.
- **Failed** trials (``ERROR``, ``NAN``) are counted in ``failed`` and weigh in the ranking
  (below); they never enter the mean, std or CI.
- Trials a **scheduler** stopped (ASHA, ``end_reason == "scheduler"``) were not selected and
  have no test numbers: counted in ``stopped_by_scheduler`` (and in ``unfinished``, with
  interrupted and not-started trials), never in the statistics.
- Under a ``protocol`` (a ``stage`` column) only ``stage == "final"`` trials are ranked;
  the search (``tune``) stage is left out.

What is ranked: the sweep's ``metric`` (``val_<x>``) is what selection used; by default,
when the trials have its test twin ``test_<x>`` with finite values, the leaderboard ranks and
reports ``test_<x>``, else (tables from before the test split) ``val_<x>``. ``metric=M``
ranks by the column M as named (``val_mean_iou`` ranks validation, even when it is the
sweep's metric): for a ``val_*`` metric other than the sweep's, with a history table that has
it, each trial's own best value of
M over its epochs (with M's mode), not M at the epoch another metric selected. A loss value
(``val_loss``, ``test_loss``) differs in scale from one loss function to another, so with
several loss functions the rows are ranked within each loss function.

**The ranking rule for failures.** Rows are ranked by ``score``: the mean over the row's
finished *and failed* trials, each failed trial scored as the metric's worst value (0 for
IoU, Dice, accuracy; for a metric without a bound, the worst value any finished trial of
the same dataset reached). Without failures ``score`` equals the mean. So a row whose
2 of 3 seeds diverged ranks below one that finished 3 of 3 at a slightly lower mean, and
the statistics below see the same scores per seed.

A row's best run (``{metric}_best``, ``best_trial_id``, ``best_mlflow_run_id``: what
``register_best`` registers) is chosen on validation, never on test: the finished trial
with the best value of the ranked metric when that is not a ``test_*`` column, else of the
sweep's own ``val_*`` metric; ``{metric}_best`` is that run's value of the ranked metric.

Per row (:mod:`bench.results.stats`): mean, sample std, and the 95% Student-t CI of the mean over
its finished trials, clipped to the metric's range (``ci_few`` True when n < 5: the
interval is wide); ``p_vs_best``: a paired test against the top row over the seeds they
share (Wilcoxon signed-rank where n allows it, else a paired t-test; ``test_vs_best``
says which), Holm-corrected across the rows of a ranking. "Allows": Wilcoxon's smallest
p, 2 / 2**n, must be below Holm's first threshold 0.05 / (rows - 1), so n >= 6 for two
rows, 7 for three, 11 for 35 (:func:`bench.results.stats.wilcoxon_min_n`); with fewer seeds it
could never reject and the paired t-test is used; ``tied_with_best``: ``p_vs_best >=
0.05`` (True for the top row, NA when there are fewer than 2 shared seeds); ``p_first``:
the share of 2,000 bootstrap resamples of the seeds in which the row ranks first;
``rank_low``/``rank_high``: its 95% bootstrap rank interval.

Two leaderboards are compared row by row with :func:`compare`: with at least two shared
seeds by the same paired test, else by whether the two 95% CIs overlap.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.results import stats

#: Columns that identify one leaderboard row's cell.
KEYS = ["sweep", "dataset", "model", "loss"]
#: What tells a cell's configurations apart (``bench.spec.configs.config_id``): a row per
#: configuration when the trials carry it.
CONFIG = "config_id"
#: The hyperparameter columns of ``trials.parquet`` a row reports (``hyperparameters``).
HYPERPARAMETERS = ("lr", "batch_size", "optimizer", "weight_decay", "augment")
#: Statuses of trials that ran to their end.
FINISHED = ("TERMINATED",)
#: ``end_reason`` of ``STOPPED`` trials that stopped by their own rule: finished too.
SELF_STOPPED = ("patience", "time_budget")
#: ``end_reason`` of trials a scheduler (ASHA) stopped: not selected, not counted.
SCHEDULER_STOPPED = ("scheduler",)
#: Statuses of trials that failed (an exception, or a loss that went NaN).
FAILED = ("ERROR", "NAN")
DEFAULT_METRIC = "val_mean_iou"
#: Cost columns averaged per row when the trials have them.
COSTS = ("samples_per_second", "train_seconds", "epochs_done", "flops", "latency_ms",
         "throughput", "peak_memory_mb")
#: Significance level of ``tied_with_best``.
ALPHA = 0.05
#: Bootstrap resamples of seeds for ``p_first`` and the rank interval; seed of their RNG.
RESAMPLES, BOOTSTRAP_SEED = 2000, 0


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile ``t_p`` with ``dof`` degrees of freedom (``dof >= 1``)."""
    if dof < 1:
        raise ValueError(f"t_quantile: dof must be >= 1, got {dof}")
    from scipy.stats import t  # scipy is a dependency of scikit-learn, always present

    return float(t.ppf(p, dof))


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval ``(low, high)`` of the mean of ``values`` (shape (n,)).

    NaN values are ignored; fewer than two values give ``(nan, nan)``. Not clipped: see
    :func:`bench.results.stats.mean_ci` for the interval clipped to a metric's range.
    """
    r = stats.mean_ci(values, level=level)
    return r.low, r.high


def default_mode(metric: str) -> str:
    """``"min"`` for losses, errors and distances (MAE included), ``"max"`` for the rest
    (IoU, dice, accuracy): one rule, ``stats.default_mode``."""
    return stats.default_mode(metric)


def metric_names(trials: pd.DataFrame) -> list[str]:
    """The metric columns a leaderboard can rank by: numeric ``val_*`` and ``test_*`` columns."""
    return [
        c for c in trials.columns
        if c.startswith(("val_", "test_")) and pd.api.types.is_numeric_dtype(trials[c])
    ]


def is_loss_value(metric: str) -> bool:
    """Whether ``metric`` is the value of the trial's own loss function (``val_loss``,
    ``test_loss``): not comparable between loss functions."""
    return metric == "loss" or metric.endswith("_loss")


def finished_mask(trials: pd.DataFrame) -> pd.Series:
    """Boolean Series (len(trials),): the trials that enter the statistics (see the module
    docstring). Without a ``status`` column (hand-made tables) every trial counts."""
    if "status" not in trials:
        return pd.Series(True, index=trials.index)
    status = trials["status"].astype(str)
    reason = _text(trials, "end_reason")
    return status.isin(FINISHED) | ((status == "STOPPED") & reason.isin(SELF_STOPPED))


def failed_mask(trials: pd.DataFrame) -> pd.Series:
    """Boolean Series (len(trials),): the trials that raised or diverged."""
    if "status" not in trials:
        return pd.Series(False, index=trials.index)
    return trials["status"].astype(str).isin(FAILED)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as strings, "" for nulls or a missing column."""
    if column not in frame:
        return pd.Series("", index=frame.index)
    return frame[column].astype(object).map(lambda v: "" if pd.isna(v) else str(v))


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


def final_stage(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials that are ranked: those of ``stage == "final"``, or without a stage (tables
    from before protocols); the search stage of a protocol (``tune``) is not ranked."""
    if "stage" not in trials:
        return trials
    stage = _text(trials, "stage")
    return trials[stage.isin(["final", ""])]


def ranked_metric(
    trials: pd.DataFrame, metric: str | None, mode: str | None
) -> tuple[str, str]:
    """``(column, mode)`` one sweep's trials are ranked by.

    Without ``metric``, the sweep's own metric becomes its ``test_`` twin when the finished
    trials have finite values of it. A ``metric`` that is named is ranked as named:
    ``val_mean_iou`` ranks validation, even when it is the sweep's metric. ``mode`` defaults
    to the sweep's mode for its metric and its twin, else :func:`default_mode`.
    """
    sweep_metric, sweep_mode = _sweep_metric(trials)
    m = metric or sweep_metric
    if m not in trials.columns:
        raise ValueError(
            f"aggregate: sweep {first_value(trials, 'sweep')!r} has no metric column {m!r}; "
            f"choose one of: {', '.join(metric_names(trials))}"
        )
    if metric is None and m.startswith("val_"):
        twin = "test_" + m[len("val_"):]
        if twin in trials.columns:
            done = trials.loc[finished_mask(trials), twin]
            if np.isfinite(pd.to_numeric(done, errors="coerce").astype(float)).any():
                m = twin
    own = m in (sweep_metric, "test_" + sweep_metric[len("val_"):])
    return m, mode or (sweep_mode if own else default_mode(m))


def trial_values(
    trials: pd.DataFrame, metric: str, mode: str, history: pd.DataFrame | None = None
) -> pd.Series:
    """The value of ``metric`` each trial is ranked by, a float Series indexed like ``trials``.

    For a ``val_*`` metric other than the sweep's own, with ``history`` holding it: each
    trial's best epoch value (max or min by ``mode``), since ``trials`` holds the values at
    the epoch the sweep's metric selected. Else the ``trials`` column. NaN where missing.
    """
    own = trials[metric].astype("float64") if metric in trials else \
        pd.Series(math.nan, index=trials.index)
    sweep_metric, _ = _sweep_metric(trials)
    if (history is None or history.empty or metric == sweep_metric
            or not metric.startswith("val_") or metric not in history
            or "trial_id" not in history or "trial_id" not in trials):
        return own
    per_epoch = history[["trial_id", metric]].copy()
    per_epoch[metric] = per_epoch[metric].astype("float64")
    grouped = per_epoch.groupby(per_epoch["trial_id"].astype(str))[metric]
    best = grouped.max() if mode == "max" else grouped.min()
    from_history = trials["trial_id"].astype(str).map(best).astype("float64")
    return from_history.where(from_history.notna(), own)


def worst_value(metric: str, mode: str, observed: np.ndarray) -> float:
    """The score of a failed trial: the metric's worst possible value by its range
    (:func:`bench.results.stats.metric_range`), else the worst finite value in ``observed``
    (shape (n,)), else NaN."""
    low, high = stats.metric_range(metric)
    bound = low if mode == "max" else high
    if math.isfinite(bound):
        return float(bound)
    v = np.asarray(observed, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return math.nan
    return float(v.min() if mode == "max" else v.max())


def _json_list(values: pd.Series) -> str:
    """A JSON list of the non-null values, numbers as numbers."""
    out = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            continue
        out.append(v.item() if isinstance(v, np.generic) else v)
    return json.dumps(out)


def _seed_key(value: Any) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float)
                                                     and math.isnan(value)) else str(int(value))


def _aggregate_group(
    group: pd.DataFrame, values: pd.Series, metric: str, mode: str, worst: float,
    finished: pd.Series, failed: pd.Series,
) -> dict[str, Any]:
    """Statistics of one configuration's trials (a sweep x dataset x model x loss group, or
    one ``config_id`` of it).

    ``values``, ``finished``, ``failed``: aligned with ``group``'s index. The row's best run
    (``{metric}_best``, ``best_*``) is chosen on validation (:func:`selection_values`).
    """
    reason = _text(group, "end_reason")
    done = group[finished]
    v_done = values[finished]
    ok = np.isfinite(v_done)
    finite, v = done[ok], v_done[ok]  # a finished trial may still lack the metric
    r = stats.mean_ci(v.to_numpy(), bounds=stats.metric_range(metric))
    n = r.n
    # Failed trials at the worst value: the score ranked by, and the per-seed scores tested.
    scored = pd.concat([v, pd.Series(worst, index=group.index[failed])]).dropna()
    seeds = group["seed"] if "seed" in group else pd.Series(0, index=group.index)
    per_seed = scored.groupby(seeds[scored.index].map(_seed_key)).mean()
    row: dict[str, Any] = {
        "metric": metric,
        "mode": mode,
        f"{metric}_mean": r.mean,
        f"{metric}_std": r.std,
        f"{metric}_ci_low": r.low,
        f"{metric}_ci_high": r.high,
        "ci_few": r.few,
        "count": n,
        "failed": int(failed.sum()),
        "unfinished": int((~finished & ~failed).sum()),
        "stopped_by_scheduler": int((~finished & ~failed & reason.isin(SCHEDULER_STOPPED))
                                    .sum()),
        "score": float(scored.mean()) if len(scored) else math.nan,
        "seed_values": json.dumps({k: float(x) for k, x in per_seed.items()}),
    }
    chooser, chooser_mode = selection_values(finite, v, metric, mode)
    if n and np.isfinite(chooser.to_numpy()).any():
        # The first of ties; a trial without a finite validation value is never chosen.
        c = chooser.to_numpy()
        c = np.where(np.isfinite(c), c, -np.inf if chooser_mode == "max" else np.inf)
        best_pos = int(np.argmax(c) if chooser_mode == "max" else np.argmin(c))
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
    row["hyperparameters"] = _hyperparameters(group)
    # Cost: what a configuration takes to train, averaged over its finished trials.
    row["n_params"] = _int_or_none(done["n_params"].median()) if "n_params" in done and n else None
    # Costs, and every other metric's mean (val_*, test_*, test_case_*_mean, per-class IoU).
    always = ("samples_per_second", "train_seconds", "epochs_done")
    columns = [c for c in COSTS if c in done or c in always]
    columns += [c for c in metric_names(group) if c != metric]
    present = [c for c in columns if c in done]
    means = _means(done[present]) if len(done) else pd.Series(dtype="float64")
    for col in columns:
        row[f"{col}_mean"] = float(means.get(col, math.nan))
    # What reproduces the row: its runs, seeds, trial ids, the spec and the versions.
    row["mlflow_run_ids"] = _json_list(finite["mlflow_run_id"]) if "mlflow_run_id" in finite \
        else "[]"
    row["seeds"] = _json_list(finite["seed"]) if "seed" in finite else "[]"
    row["trial_ids"] = _json_list(finite["trial_id"]) if "trial_id" in finite else "[]"
    row["spec"] = first_value(group, "spec")
    row["versions"] = first_value(group, "versions")
    return row


def selection_values(trials: pd.DataFrame, values: pd.Series, metric: str,
                     mode: str) -> tuple[pd.Series, str]:
    """What a row's best run is chosen by, and its mode: validation, never test.

    ``values`` (the ranked metric's, aligned with ``trials``) when ``metric`` is not a
    ``test_*`` column (``val_mean_iou`` ranked: its best run is the best on it); for a
    ``test_*`` metric, the sweep's own metric (``val_*``, its ``metric`` column) with the
    sweep's mode. NaN (never chosen) where a trial lacks it; all NaN when the trials have
    no such column.
    """
    if not metric.startswith("test_"):
        return values.astype("float64"), mode
    sweep_metric, sweep_mode = _sweep_metric(trials) if len(trials) else (DEFAULT_METRIC,
                                                                           "max")
    if sweep_metric.startswith("test_") or sweep_metric not in trials:
        return pd.Series(math.nan, index=trials.index), sweep_mode
    return pd.to_numeric(trials[sweep_metric], errors="coerce").astype("float64"), sweep_mode


def _hyperparameters(group: pd.DataFrame) -> str:
    """The configuration's hyperparameter values as a JSON object (``HYPERPARAMETERS``
    present in ``group``, from its first trial that has each)."""
    values = {}
    for column in HYPERPARAMETERS:
        if column in group:
            value = first_value(group, column)
            if value is not None:
                values[column] = value.item() if isinstance(value, np.generic) else value
    return json.dumps(values, sort_keys=True, default=str)


def _means(frame: pd.DataFrame) -> pd.Series:
    """Per column, the mean of the finite values of ``frame`` (NaN where there are none)."""
    values = np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan) for c in frame.columns]) if frame.shape[1] \
        else np.empty((len(frame), 0))
    values = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
        return pd.Series(np.nanmean(values, axis=0), index=frame.columns)


def _str_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def rank_rows(board: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Rank the rows of one ranking (one sweep x dataset, or x loss for loss values).

    Args:
        board: rows from :func:`_aggregate_group` (``score``, ``seed_values``, model, loss).
        mode: ``"max"`` or ``"min"``.

    Returns:
        ``board`` sorted best first with ``rank`` (1 = best score; ties share a rank; rows
        without a score last), ``p_vs_best``, ``test_vs_best``, ``n_vs_best``,
        ``tied_with_best``, ``p_first``, ``rank_low``, ``rank_high`` (see the module
        docstring).
    """
    board = board.copy()
    board["rank"] = (board["score"].rank(ascending=(mode == "min"), method="min",
                                         na_option="bottom").astype(int))
    order = ["rank", "model", "loss", *([CONFIG] if CONFIG in board else [])]
    board = board.sort_values(order, kind="stable").reset_index(drop=True)
    per_row = [json.loads(s) for s in board["seed_values"]]
    seeds = sorted({k for d in per_row for k in d}, key=lambda k: (k == "", k.zfill(12)))
    scores = np.array([[d.get(k, math.nan) for k in seeds] for d in per_row], dtype=float)
    scores = scores.reshape(len(board), len(seeds))
    raw = np.full(len(board), math.nan)
    tests, pairs = [""] * len(board), [0] * len(board)
    has_best = len(board) and np.isfinite(board["score"].iloc[0])
    # Wilcoxon only from the n at which it can reject after Holm over these comparisons.
    min_n = stats.wilcoxon_min_n(len(board) - 1, ALPHA)
    for i in range(1, len(board) if has_best else 0):
        r = stats.paired_test(scores[0], scores[i], min_wilcoxon=min_n)
        raw[i], tests[i], pairs[i] = r.pvalue, r.test, r.n
    adjusted = stats.holm(raw)
    tied = pd.array([None if not np.isfinite(p) else bool(p >= ALPHA) for p in adjusted],
                    dtype="boolean")
    if has_best:
        tied[0] = True
    board["p_vs_best"], board["test_vs_best"], board["n_vs_best"] = adjusted, tests, pairs
    board["tied_with_best"] = tied
    if scores.size:
        ranks = stats.bootstrap_ranks(scores, mode, resamples=RESAMPLES, seed=BOOTSTRAP_SEED)
        board["p_first"] = stats.p_first(ranks)
        low, high = stats.rank_interval(ranks)
        board["rank_low"], board["rank_high"] = low, high
    else:
        board["p_first"], board["rank_low"], board["rank_high"] = math.nan, pd.NA, pd.NA
    for col in ("rank_low", "rank_high"):
        board[col] = board[col].astype("Int64")
    return board


NEEDS_SEEDS = "needs 2+ seeds"  # shown for P(first) and the rank interval with one seed


def ranking_rules(board: pd.DataFrame) -> pd.DataFrame:
    """What a ranking may claim, applied to one ranked board (``rank_rows``' output).

    - A row with no finished trial (``count == 0``) is not ranked: ``rank``, ``p_first``,
      ``rank_low``/``rank_high``, ``p_vs_best`` and ``tied_with_best`` are null, and it sorts
      last (listed apart as failed by ``summary``).
    - With fewer than 2 seeds among the ranked rows, the bootstrap over seeds has nothing to
      resample: ``p_first`` and the rank interval are null (``summary`` says
      ``needs 2+ seeds``).
    """
    board = board.copy()
    unranked = board["count"].fillna(0).astype(int) == 0
    board["rank"] = board["rank"].astype("Int64").mask(unranked)
    for column in ("p_first", "p_vs_best"):
        board[column] = board[column].astype("float64").mask(unranked)
    for column in ("rank_low", "rank_high"):
        board[column] = board[column].astype("Int64").mask(unranked)
    board["tied_with_best"] = board["tied_with_best"].astype("boolean").mask(unranked)
    seeds = {k for values in board.loc[~unranked, "seed_values"] for k in json.loads(values)}
    if len(seeds) < 2:
        board["p_first"] = math.nan
        board["rank_low"] = board["rank_high"] = pd.array([pd.NA] * len(board), "Int64")
    return pd.concat([board[~unranked], board[unranked]], ignore_index=True)


def aggregate(
    trials: pd.DataFrame, metric: str | None = None, mode: str | None = None,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Aggregate trials (one row per trial) into a leaderboard.

    Args:
        trials: the trials table (schema of ``trials.parquet``); may hold several sweeps.
        metric: rank by this column instead of each sweep's own metric (or its test twin).
        mode: ``"max"`` or ``"min"``; defaults to the sweep's mode for its own metric,
            else to :func:`default_mode`.
        history: the history table; with ``metric`` a ``val_*`` column other than the
            sweep's, each trial is ranked by its own best epoch value of it.

    Returns:
        One row per configuration: sweep x dataset x model x loss x ``config_id`` (x model x
        loss alone for tables without ``config_id``), sorted by sweep, dataset then ``rank``
        (1 = best; rows without a score last; ranked per sweep x dataset, and per loss for a
        loss value across several losses), with the columns of ``leaderboard.parquet``:
        ``metric, mode, {metric}_mean, _std, _ci_low, _ci_high, _best, ci_few, count,
        failed, unfinished, stopped_by_scheduler, score, p_vs_best, test_vs_best,
        n_vs_best, tied_with_best, p_first, rank_low, rank_high, seed_values,
        best_trial_id, best_mlflow_run_id`` (the run chosen on validation:
        :func:`selection_values`), ``hyperparameters``, ``n_params`` (Int64), the ``*_mean``
        of the cost
        columns present, ``mlflow_run_ids, seeds, trial_ids, spec, versions`` and the mean
        of every other ``val_*``/``test_*`` column.
    """
    if mode is not None and mode not in ("max", "min"):
        raise ValueError(f"aggregate: mode must be 'max' or 'min', got {mode!r}")
    missing = [k for k in KEYS if k not in trials.columns]
    if missing:
        raise ValueError(f"aggregate: trials lack the columns {missing}; have {list(trials)}")
    if trials.empty:
        return pd.DataFrame(columns=[*KEYS, "metric", "mode", "rank", "count"])
    boards = []
    for _, sweep_trials in trials.groupby("sweep", sort=True, dropna=False):
        st = final_stage(sweep_trials)
        # A row per configuration (its seeds share the hyperparameters); tables from before
        # config_id: a row per cell.
        row_keys = [*KEYS, CONFIG] if CONFIG in st and st[CONFIG].notna().any() else KEYS
        m, md = ranked_metric(st, metric, mode)
        values = trial_values(st, m, md, history)
        finished, failed = finished_mask(st), failed_mask(st)
        by_loss = is_loss_value(m) and st["loss"].astype(str).nunique() > 1
        rank_keys = ["dataset", "loss"] if by_loss else ["dataset"]
        for _, ranking in st.groupby(rank_keys, sort=True, dropna=False):
            worst = worst_value(m, md, values[ranking.index][finished[ranking.index]]
                                .to_numpy())
            rows = []
            for key, g in ranking.groupby(row_keys, sort=True, dropna=False):
                stats_row = _aggregate_group(g, values[g.index], m, md, worst,
                                             finished[g.index], failed[g.index])
                rows.append({**dict(zip(row_keys, key, strict=True)), **stats_row,
                             "ranked_within_loss": by_loss})
            boards.append(ranking_rules(rank_rows(pd.DataFrame(rows), md)))
    if not boards:  # only trials that are not ranked (a protocol's tune stage so far)
        return pd.DataFrame(columns=[*KEYS, "metric", "mode", "rank", "count"])
    out = pd.concat(boards, ignore_index=True)
    out["n_params"] = out["n_params"].astype("Int64")  # None where no trial finished
    out["tied_with_best"] = out["tied_with_best"].astype("boolean")
    front = [*KEYS, *([CONFIG] if CONFIG in out else []), "rank", "metric", "mode"]
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
    from bench.results.records import upgrade_columns

    # An earlier release's column names, for one release (``trials.parquet`` -> ``trials``).
    return upgrade_columns(frame, path.name.split(".")[0])


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

    Rows are matched on dataset x model x loss (not the sweep, which is what differs), and
    on ``config_id`` as well when a board has several configurations of a cell.

    Returns:
        One row per configuration present in either: ``dataset, model, loss, mean_a, std_a,
        count_a, mean_b, std_b, count_b, diff`` (b - a), ``better`` ("a", "b" or "" when
        equal or unknown, by the mode), ``n_pairs`` (seeds both rows have), ``test``,
        ``p`` and ``distinct``. With at least two shared seeds (both boards carry
        ``seed_values``), ``p`` is the paired test of :func:`bench.results.stats.paired_test`
        (Wilcoxon from 6 pairs, else paired t) and ``distinct`` is ``p < 0.05``. Otherwise
        ``test`` is ``"ci overlap"``, ``p`` NaN, and ``distinct`` True when the two 95%
        confidence intervals do not overlap, False when they do, None when either side
        has fewer than two finished trials (no spread to judge against).
    """
    cols = {
        f"{metric}_mean": "mean", f"{metric}_std": "std", "count": "count",
        f"{metric}_ci_low": "ci_low", f"{metric}_ci_high": "ci_high",
    }
    keys = ["dataset", "model", "loss"]
    # Several configurations of one cell are matched by their configuration.
    if all(CONFIG in board for board in (left, right)) and any(
            board.duplicated(keys).any() for board in (left, right)):
        keys = [*keys, CONFIG]
    for name, board in (("a", left), ("b", right)):
        absent = [c for c in cols if c not in board.columns]
        if absent:
            raise ValueError(f"compare: leaderboard {name} lacks {absent} (metric {metric!r})")
    if all("seed_values" in board.columns for board in (left, right)):
        cols["seed_values"] = "seed_values"  # per-seed scores: what the paired test needs
    a = left[keys + list(cols)].rename(columns={k: f"{v}_a" for k, v in cols.items()})
    b = right[keys + list(cols)].rename(columns={k: f"{v}_b" for k, v in cols.items()})
    both = a.merge(b, on=keys, how="outer", sort=True)
    mode = first_value(left, "mode") or default_mode(metric)
    both["diff"] = both["mean_b"] - both["mean_a"]

    def better(d: float) -> str:
        if not np.isfinite(d) or d == 0:
            return ""
        return "b" if (d > 0) == (mode == "max") else "a"

    def paired(r: pd.Series) -> stats.PairedResult:
        sa, sb = (_seed_dict(r.get(f"seed_values_{s}")) for s in ("a", "b"))
        shared = sorted(set(sa) & set(sb))
        return stats.paired_test(np.array([sb[k] for k in shared], dtype=float),
                                 np.array([sa[k] for k in shared], dtype=float))

    def distinct(r: pd.Series) -> bool | None:
        if r["test"] != "ci overlap":
            return bool(r["p"] < ALPHA)
        bounds = [r["ci_low_a"], r["ci_high_a"], r["ci_low_b"], r["ci_high_b"]]
        if not all(np.isfinite(float(x)) for x in bounds):
            return None
        return bool(r["ci_high_a"] < r["ci_low_b"] or r["ci_high_b"] < r["ci_low_a"])

    both["better"] = both["diff"].map(better)
    results = [paired(r) for _, r in both.iterrows()]
    both["n_pairs"] = [r.n for r in results]
    both["test"] = [r.test if r.n >= 2 else "ci overlap" for r in results]
    both["p"] = [r.pvalue if r.n >= 2 else math.nan for r in results]
    both["distinct"] = both.apply(distinct, axis=1).astype(object)
    both = both.drop(columns=[c for c in ("seed_values_a", "seed_values_b") if c in both])
    for c in ("count_a", "count_b"):
        both[c] = both[c].fillna(0).astype(int)
    return both


def _seed_dict(raw: Any) -> dict[str, float]:
    """A ``seed_values`` cell (JSON object seed -> score) as a dict; {} when null."""
    if not isinstance(raw, str) or not raw:
        return {}
    return {k: float(v) for k, v in json.loads(raw).items()}


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
    if spec.endswith("d"):  # integers stored as floats (a column with a null in it)
        value = int(value)
    return format(value, spec)


def _p(value: Any) -> str:
    """A p-value for display: 3 decimals, ``<0.001`` below that."""
    text = _fmt(value, ".3f")
    return "<0.001" if text and float(value) < 0.001 else text


def _yes_no(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "yes" if bool(value) else "no"


def config_texts(board: pd.DataFrame) -> list[str] | None:
    """Per row, the hyperparameters that differ between the configurations of its cell
    (``lr=0.000285, batch_size=8``), or None when no cell has several configurations."""
    cell = [c for c in KEYS if c in board]
    if "hyperparameters" not in board or not board.duplicated(cell).any():
        return None
    values = [json.loads(h) if isinstance(h, str) and h else {}
              for h in board["hyperparameters"]]
    keys = board[cell].astype(str).agg(" | ".join, axis=1).tolist()
    texts = []
    for i, own in enumerate(values):
        peers = [values[j] for j in range(len(values)) if keys[j] == keys[i]]
        differ = [k for k in own if any(p.get(k) != own[k] for p in peers)]
        texts.append(", ".join(f"{k}={_short(own[k])}" for k in differ))
    return texts


def configurations_as_models(board: pd.DataFrame) -> pd.DataFrame:
    """``board`` with each row's ``model`` naming its configuration, ``unet [lr=0.001]``,
    when a model x loss has several configurations (else ``board`` as it is).

    For tables keyed by model x loss (``bench.results.across``): sample k of a model x loss
    has the same hyperparameters on every dataset (``bench.spec.plan``), so its label is
    the same on each, and the configurations are compared as they are.
    """
    cell = [c for c in KEYS if c in board]
    if "hyperparameters" not in board or not board.duplicated(cell).any():
        return board
    values = [json.loads(h) if isinstance(h, str) and h else {}
              for h in board["hyperparameters"]]
    pair = board["model"].astype(str) + " | " + board["loss"].astype(str)
    labels = []
    for i, own in enumerate(values):
        peers = [values[j] for j in range(len(values)) if pair.iloc[j] == pair.iloc[i]]
        differ = [k for k in own if any(p.get(k) != own[k] for p in peers)]
        inner = ", ".join(f"{k}={_short(own[k])}" for k in differ)
        labels.append(f"{board['model'].iloc[i]} [{inner}]" if inner
                      else str(board["model"].iloc[i]))
    return board.assign(model=labels)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary(board: pd.DataFrame, *, digits: int = 4) -> pd.DataFrame:
    """The leaderboard as display strings, one column per thing a reader compares.

    Columns: rank, sweep, dataset, model, loss, ``config`` (only when a cell has several
    configurations: the hyperparameters that tell them apart), ``{metric}`` (mean ± std),
    ``95% CI``
    (followed by "n<5" when it rests on fewer than 5 trials), ``n`` (finished trials),
    ``failed``, ``p vs best`` (Holm-corrected paired test), ``tied`` (with the best),
    ``P(first)``, ``rank 95%`` (bootstrap rank interval), ``best``, ``best run`` (MLflow
    run id, else trial id), ``params``, ``samples/s``, ``train s``; for next frames
    ``test_ssim`` and ``gain vs persistence dB`` (baseline rows have rank ``-``).
    """
    if board.empty:
        return pd.DataFrame()
    metrics = board["metric"].astype(str).unique()
    # Boards of several sweeps may rank on different metrics: then one "score" column
    # and each row's metric beside it, never one metric's name over another's scores.
    metric = str(metrics[0]) if len(metrics) == 1 else "score"
    f = f".{digits}f"
    rows = []
    configs = config_texts(board)
    for i, (_, r) in enumerate(board.iterrows()):
        m = str(r["metric"])
        unranked = _fmt(r.get("count"), "d") in ("", "0")
        one_seed = not unranked and not _fmt(r.get("p_first"), ".2f") and _fmt(r["rank"], "d")
        mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
        cell = _fmt(mean, f) + (f" ± {_fmt(std, f)}" if _fmt(std, f) else "")
        lo, hi = _fmt(r.get(f"{m}_ci_low"), f), _fmt(r.get(f"{m}_ci_high"), f)
        rows.append({
            # Baselines are not ranked ("-"), nor rows without a finished trial ("failed").
            "rank": _fmt(r["rank"], "d") or ("failed" if unranked else "-"),
            "sweep": str(r["sweep"]),
            "dataset": str(r["dataset"]),
            "model": str(r["model"]),
            "loss": str(r["loss"]),
            **({"config": configs[i]} if configs is not None else {}),
            **({"metric": m} if len(metrics) > 1 else {}),
            metric: cell,
            "95% CI": (f"[{lo}, {hi}]" + (" n<5" if r.get("ci_few") is True else "")
                       if lo else ""),
            "n": str(r["count"]),
            "failed": str(r.get("failed", 0)),
            "p vs best": _p(r.get("p_vs_best")),
            "tied": _yes_no(r.get("tied_with_best")),
            "P(first)": NEEDS_SEEDS if one_seed else _fmt(r.get("p_first"), ".2f"),
            "rank 95%": NEEDS_SEEDS if one_seed else (
                f"{_fmt(r.get('rank_low'), 'd')}-{_fmt(r.get('rank_high'), 'd')}"
                if _fmt(r.get("rank_low"), "d") else ""),
            "best": _fmt(r.get(f"{m}_best"), f),
            "best run": str(r.get("best_mlflow_run_id") or r.get("best_trial_id") or ""),
            "params": _fmt(r.get("n_params"), ",d"),
            "samples/s": _fmt(r.get("samples_per_second_mean"), ".1f"),
            "train s": _fmt(r.get("train_seconds_mean"), ".1f"),
            # Next frames (bench.results.baselines): SSIM beside PSNR, and the gain over
            # persistence.
            **({"test_ssim": _fmt(r.get("test_ssim_mean"), f),
                "gain vs persistence dB": _fmt(r.get("gain_vs_persistence"), "+.2f")}
               if "gain_vs_persistence" in board else {}),
        })
    return pd.DataFrame(rows)
