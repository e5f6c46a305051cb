"""bench.results.leaderboard's aggregation where the other leaderboard tests do not look:
missing seeds and run ids, a failed trial's score on unbounded metrics, which columns
count as metrics, the latest sweep across time zones, and more. Each test was written
against surviving mutants of ``tests/mutation/run.py --groups leaderboard`` (named in
docs/mutation.md) and asserts values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.results import leaderboard as lb


def _trials(values: list[float], **columns) -> pd.DataFrame:
    """One finished trial per value of ``val_mean_iou``: one model x loss on one dataset,
    seeds 0, 1, ... unless ``columns`` say otherwise."""
    n = len(values)
    base = {"sweep": ["s"] * n, "dataset": ["d"] * n, "model": ["m"] * n,
            "loss": ["dice"] * n, "trial_id": [f"t{i}" for i in range(n)],
            "seed": list(range(n)), "status": ["TERMINATED"] * n, "val_mean_iou": values,
            "metric": ["val_mean_iou"] * n, "mode": ["max"] * n}
    base.update(columns)
    return pd.DataFrame(base)


def test_metric_names_are_the_numeric_val_and_test_columns():
    frame = pd.DataFrame({"val_mean_iou": [0.5], "test_mean_iou": [0.4], "test_note": ["x"],
                          "train_loss": [0.1], "val_loss": [1], "seed": [0]})
    assert lb.metric_names(frame) == ["val_mean_iou", "test_mean_iou", "val_loss"]


def test_a_failed_trials_score_is_the_metrics_worst_value():
    # Bounded metrics: the bound on the losing side, whatever was observed.
    assert lb.worst_value("val_mean_iou", "max", np.array([0.3, 0.9])) == 0.0
    assert lb.worst_value("val_mean_iou", "min", np.array([0.3, 0.9])) == 1.0
    # HD95 is bounded below only: minimising it, the worst is the largest value seen.
    assert lb.worst_value("test_hd95", "min", np.array([1.0, 5.0, 3.0])) == 5.0
    assert lb.worst_value("test_hd95", "max", np.array([1.0, 5.0, 3.0])) == 0.0
    # Unbounded (a loss): the worst seen in either direction; None and NaN are no values.
    assert lb.worst_value("val_loss", "max", [0.2, None, 0.5, -0.1]) == -0.1
    assert lb.worst_value("val_loss", "min", [0.2, None, 0.5, math.nan, -0.1]) == 0.5
    assert math.isnan(lb.worst_value("val_loss", "min", [None, math.nan]))


def test_seeds_that_are_missing_or_stored_as_floats_key_the_per_seed_scores():
    # A column with a missing seed is stored as floats: 0.0 and 1.0 are seeds "0" and "1",
    # the missing one is "" (never "nan", and no error).
    board = lb.aggregate(_trials([0.5, 0.7, 0.9], seed=[0.0, 1.0, math.nan]))
    assert json.loads(board.loc[0, "seed_values"]) == {"0": 0.5, "1": 0.7, "": 0.9}
    assert json.loads(board.loc[0, "seeds"]) == [0.0, 1.0]
    # An object column holding None, and a nullable Int64 column holding NA: the same.
    none = lb.aggregate(_trials([0.5, 0.9], seed=pd.Series([3, None], dtype=object)))
    assert json.loads(none.loc[0, "seed_values"]) == {"3": 0.5, "": 0.9}
    na = lb.aggregate(_trials([0.5, 0.9], seed=pd.array([4, None], dtype="Int64")))
    assert json.loads(na.loc[0, "seed_values"]) == {"4": 0.5, "": 0.9}
    # Without a seed column every trial is seed 0.
    plain = lb.aggregate(_trials([0.5, 0.9]).drop(columns="seed"))
    assert json.loads(plain.loc[0, "seed_values"]) == {"0": 0.7}
    assert plain.loc[0, "seeds"] == "[]"


def test_a_best_run_without_a_run_id_seed_or_picture_reports_none():
    # The best trial (0.9) has a NaN run id (Parquet's missing string), a missing seed and
    # no picture; the row says None for each, never "nan" or "None".
    trials = _trials([0.5, 0.9], seed=[0.0, math.nan],
                     mlflow_run_id=pd.Series(["r0", math.nan], dtype=object),
                     predictions_png=pd.Series([None, None], dtype=object),
                     n_params=[math.nan, math.nan])
    row = lb.aggregate(trials).iloc[0]
    assert row["best_trial_id"] == "t1"
    assert row["best_mlflow_run_id"] is None
    assert row["best_seed"] is None
    assert row["best_predictions_png"] is None
    assert row["n_params"] is pd.NA
    assert json.loads(row["mlflow_run_ids"]) == ["r0"]  # the NaN id is left out


def test_latest_sweep_compares_end_times_across_time_zones():
    # Sweep "a" ended at 10:00+02:00 (08:00 UTC), sweep "b" at 09:00 UTC: "b" is the later
    # one although its clock time is earlier; a time that cannot be read is skipped.
    trials = pd.DataFrame({"sweep": ["a", "b", "b"],
                           "ended_at": ["2026-01-01T10:00+02:00", "2026-01-01T09:00+00:00",
                                        "unknown"]})
    assert lb.latest_sweep(trials) == "b"
    with pytest.raises(ValueError, match=r"^latest_sweep: no trials$"):
        lb.latest_sweep(trials.iloc[:0])
