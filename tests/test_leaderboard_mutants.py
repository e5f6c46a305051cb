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
from bench.results import stats


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


def test_a_best_run_without_a_run_id_seed_or_picture_says_none():
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


def test_ci_few_says_whether_the_interval_rests_on_fewer_than_five_trials():
    assert lb.aggregate(_trials([0.5, 0.6, 0.7, 0.8]))["ci_few"].tolist() == [True]
    assert lb.aggregate(_trials([0.5, 0.6, 0.7, 0.8, 0.9]))["ci_few"].tolist() == [False]


@pytest.mark.parametrize("sweep_metric, mode, val, test, best, best_value", [
    # Maximising: the trial without a validation value (first) is never the best run,
    # although its test value is the highest.
    ("val_mean_iou", "max", [math.nan, 0.5, 0.7], [0.9, 0.4, 0.6], "t2", 0.6),
    # Minimising: neither is it when its missing value would sort first the other way.
    ("val_loss", "min", [math.nan, 0.3, 0.2], [0.1, 0.5, 0.4], "t2", 0.4),
])
def test_the_best_run_skips_trials_without_a_validation_value_in_either_mode(
        sweep_metric, mode, val, test, best, best_value):
    test_metric = "test_" + sweep_metric[len("val_"):]
    trials = _trials(val, metric=[sweep_metric] * 3, mode=[mode] * 3,
                     predictions_png=["p0.png", "p1.png", "p2.png"])
    trials = trials.drop(columns="val_mean_iou").assign(**{sweep_metric: val,
                                                           test_metric: test})
    row = lb.aggregate(trials).iloc[0]
    assert row["metric"] == test_metric
    assert (row["best_trial_id"], row[f"{test_metric}_best"]) == (best, best_value)
    assert row["best_predictions_png"] == f"p{best[1]}.png"


def test_no_best_run_when_no_trial_has_the_sweeps_validation_metric():
    # Ranked on the test column named, the sweep's validation metric absent: the trials
    # have test values (count 2) but nothing to choose a best run by.
    trials = _trials([0.5, 0.9]).drop(columns="val_mean_iou").assign(
        test_mean_iou=[0.6, 0.8])
    row = lb.aggregate(trials, metric="test_mean_iou").iloc[0]
    assert row["count"] == 2 and row["test_mean_iou_mean"] == pytest.approx(0.7)
    assert row["best_trial_id"] is None and math.isnan(row["test_mean_iou_best"])
    assert row["best_mlflow_run_id"] is None and row["best_seed"] is None


def test_a_best_run_without_a_trial_id_column_has_an_empty_id():
    row = lb.aggregate(_trials([0.5, 0.9]).drop(columns="trial_id")).iloc[0]
    assert row["best_trial_id"] == "" and row["best_seed"] == 1
    assert row["trial_ids"] == "[]"


def _full_trials() -> pd.DataFrame:
    """One configuration's three trials with every column the engine writes: two finished
    (seeds 0 and 1), one failed (seed 2)."""
    return pd.DataFrame({
        "sweep": ["s"] * 3, "dataset": ["d"] * 3, "model": ["m"] * 3, "loss": ["dice"] * 3,
        "trial_id": ["t0", "t1", "t2"], "seed": [0, 1, 2],
        "status": ["TERMINATED", "TERMINATED", "ERROR"],
        "val_mean_iou": [0.6, 0.8, math.nan], "test_mean_iou": [0.5, 0.7, math.nan],
        "val_dice_coef": [0.7, 0.9, math.nan], "metric": ["val_mean_iou"] * 3,
        "mode": ["max"] * 3, "spec": ["name: s"] * 3, "versions": ['{"zoobench": "1"}'] * 3,
        "mlflow_run_id": ["r0", "r1", "r2"], "predictions_png": ["p0.png", "p1.png", None],
        "lr": np.full(3, 1e-3), "batch_size": [8] * 3, "optimizer": ["adam"] * 3,
        "samples_per_second": [10.0, 20.0, math.nan], "train_seconds": [1.0, 3.0, math.nan],
        # A nullable column with a missing value in a finished trial, as Parquet gives it.
        "epochs_done": pd.array([4, pd.NA, 2], dtype="Int64"),
        "flops": [5e6, 5e6, 5e6], "n_params": [100, 100, 100]})


def test_a_full_row_has_exactly_its_columns_and_values():
    board = lb.aggregate(_full_trials())
    assert list(board.columns) == [
        "sweep", "dataset", "model", "loss", "rank", "metric", "mode", "test_mean_iou_mean",
        "test_mean_iou_std", "test_mean_iou_ci_low", "test_mean_iou_ci_high", "ci_few",
        "count", "failed", "unfinished", "stopped_by_scheduler", "score", "seed_values",
        "test_mean_iou_best", "best_trial_id", "best_mlflow_run_id", "best_seed",
        "best_predictions_png", "hyperparameters", "n_params", "samples_per_second_mean",
        "train_seconds_mean", "epochs_done_mean", "flops_mean", "val_mean_iou_mean",
        "val_dice_coef_mean", "mlflow_run_ids", "seeds", "trial_ids", "spec", "versions",
        "ranked_within_loss", "p_vs_best", "test_vs_best", "n_vs_best", "tied_with_best",
        "p_first", "rank_low", "rank_high"]
    row = board.iloc[0].to_dict()
    # By hand: the test twin is ranked (0.5, 0.7: mean 0.6, std sqrt(0.02)); its 95% interval
    # 0.6 +- 12.71 * 0.1 is clipped to IoU's [0, 1]; the failed seed scores 0 (IoU's worst),
    # so the score is (0.5 + 0.7 + 0) / 3. The best run is chosen on validation (0.8: t1).
    expected = {
        "rank": 1, "metric": "test_mean_iou", "mode": "max", "test_mean_iou_mean": 0.6,
        "test_mean_iou_std": math.sqrt(0.02), "test_mean_iou_ci_low": 0.0,
        "test_mean_iou_ci_high": 1.0, "ci_few": True, "count": 2, "failed": 1,
        "unfinished": 0, "stopped_by_scheduler": 0, "score": 0.4,
        "test_mean_iou_best": 0.7, "best_trial_id": "t1", "best_mlflow_run_id": "r1",
        "best_seed": 1, "best_predictions_png": "p1.png", "n_params": 100,
        "samples_per_second_mean": 15.0, "train_seconds_mean": 2.0, "epochs_done_mean": 4.0,
        "flops_mean": 5e6, "val_mean_iou_mean": 0.7, "val_dice_coef_mean": 0.8,
        "spec": "name: s", "versions": '{"zoobench": "1"}', "ranked_within_loss": False,
        "tied_with_best": True, "p_first": 1.0, "rank_low": 1, "rank_high": 1,
        "test_vs_best": "", "n_vs_best": 0}
    assert {k: row[k] for k in expected} == pytest.approx(expected)
    assert json.loads(row["seed_values"]) == pytest.approx({"0": 0.5, "1": 0.7, "2": 0.0})
    # The hyperparameters with their keys sorted (not in HYPERPARAMETERS' order).
    assert row["hyperparameters"] == '{"batch_size": 8, "lr": 0.001, "optimizer": "adam"}'
    assert (row["mlflow_run_ids"], row["seeds"], row["trial_ids"]) == (
        '["r0", "r1"]', "[0, 1]", '["t0", "t1"]')


def test_a_row_without_a_finished_trial_has_the_same_columns_and_nothing_best():
    trials = _full_trials().assign(status="ERROR")
    board = lb.aggregate(trials)
    # No finished test value: validation is ranked. The best-run columns are there, empty.
    assert list(board.columns) == [
        "sweep", "dataset", "model", "loss", "rank", "metric", "mode", "val_mean_iou_mean",
        "val_mean_iou_std", "val_mean_iou_ci_low", "val_mean_iou_ci_high", "ci_few",
        "count", "failed", "unfinished", "stopped_by_scheduler", "score", "seed_values",
        "val_mean_iou_best", "best_trial_id", "best_mlflow_run_id", "best_predictions_png",
        "best_seed", "hyperparameters", "n_params", "samples_per_second_mean",
        "train_seconds_mean", "epochs_done_mean", "flops_mean", "test_mean_iou_mean",
        "val_dice_coef_mean", "mlflow_run_ids", "seeds", "trial_ids", "spec", "versions",
        "ranked_within_loss", "p_vs_best", "test_vs_best", "n_vs_best", "tied_with_best",
        "p_first", "rank_low", "rank_high"]
    row = board.iloc[0]
    assert (row["count"], row["failed"]) == (0, 3)
    for column in ("best_trial_id", "best_mlflow_run_id", "best_predictions_png", "best_seed"):
        assert row[column] is None, column
    assert math.isnan(row["val_mean_iou_best"]) and math.isnan(row["samples_per_second_mean"])
    assert row["n_params"] is pd.NA and row["score"] == 0.0
    assert (row["spec"], row["versions"]) == ("name: s", '{"zoobench": "1"}')
    assert (row["mlflow_run_ids"], row["seeds"], row["trial_ids"]) == ("[]", "[]", "[]")


def test_a_board_without_run_ids_lists_none():
    row = lb.aggregate(_full_trials().drop(columns="mlflow_run_id")).iloc[0]
    assert row["mlflow_run_ids"] == "[]" and row["best_mlflow_run_id"] is None


def test_a_sweep_tuned_on_a_test_column_has_no_best_run():
    # Selection never uses test numbers: a sweep whose own metric is a test column (an
    # error in its spec) gets statistics but no best run to register.
    trials = _trials([0.5, 0.9]).assign(test_mean_iou=[0.6, 0.8],
                                        metric=["test_mean_iou"] * 2)
    row = lb.aggregate(trials).iloc[0]
    assert row["metric"] == "test_mean_iou" and row["count"] == 2
    assert row["best_trial_id"] is None


# Two configurations on 12 seeds and a trial without a seed, close enough that the
# bootstrap's P(first) depends on which seed is which column.
CLOSE_A = [0.56, 0.534, 0.588, 0.621, 0.657, 0.605, 0.572, 0.561, 0.637, 0.682, 0.614, 0.538,
           0.552]
CLOSE_B = [0.68, 0.61, 0.513, 0.596, 0.542, 0.569, 0.576, 0.564, 0.628, 0.597, 0.571, 0.62,
           0.641]


def test_the_bootstrap_resamples_seeds_in_numeric_order_with_the_missing_seed_last():
    seeds = [float(s) for s in range(12)] + [math.nan]
    trials = pd.concat([_trials(CLOSE_A, seed=seeds, model=["a"] * 13),
                        _trials(CLOSE_B, seed=seeds, model=["b"] * 13)], ignore_index=True)
    board = lb.aggregate(trials).set_index("model")
    # Columns 0, 1, 2, ..., 11 (not "0", "1", "10", "11", "2", ...), then the seedless one.
    ranks = stats.bootstrap_ranks(np.array([CLOSE_A, CLOSE_B]), "max", resamples=2000, seed=0)
    expected = stats.p_first(ranks)
    assert board.loc[["a", "b"], "p_first"].tolist() == pytest.approx(expected.tolist())
    assert 0.4 < expected[0] < 0.6  # close: a different column order would move it


def test_rank_rows_of_rows_without_any_score_claims_nothing():
    board = pd.DataFrame({"model": ["a", "b"], "loss": ["dice", "dice"],
                          "score": [math.nan, math.nan], "count": [0, 0],
                          "seed_values": ['{"0": 0.5}', '{"0": 0.4}']})
    ranked = lb.rank_rows(board, "max")
    assert ranked["rank"].tolist() == [1, 1]  # both last, tied
    assert ranked["test_vs_best"].tolist() == ["", ""]
    assert ranked["n_vs_best"].tolist() == [0, 0]
    assert ranked["tied_with_best"].isna().all() and ranked["p_vs_best"].isna().all()


def test_a_configuration_whose_trials_never_ended_ranks_last_without_a_score():
    trials = pd.concat([_trials([0.5, 0.7]),
                        _trials([math.nan], model=["z"], status=["RUNNING"])],
                       ignore_index=True)
    board = lb.aggregate(trials)
    assert board["model"].tolist() == ["m", "z"]
    assert board["rank"].tolist()[0] == 1 and board["rank"].isna().tolist() == [False, True]
    assert math.isnan(board.loc[1, "score"]) and board.loc[1, "unfinished"] == 1


def test_rank_rows_without_any_seed_gives_empty_bootstrap_columns():
    board = pd.DataFrame({"model": ["a", "b"], "loss": ["dice", "dice"],
                          "score": [math.nan, math.nan], "count": [0, 0],
                          "seed_values": ["{}", "{}"]})
    ranked = lb.rank_rows(board, "max")
    assert ranked["p_first"].isna().all()
    for column in ("rank_low", "rank_high"):
        assert str(ranked[column].dtype) == "Int64" and ranked[column].isna().all(), column


def test_rank_rows_gives_integer_rank_intervals():
    board = pd.DataFrame({"model": ["a", "b"], "loss": ["dice", "dice"],
                          "score": [0.6, 0.5], "count": [2, 2],
                          "seed_values": ['{"0": 0.7, "1": 0.5}', '{"0": 0.4, "1": 0.6}']})
    ranked = lb.rank_rows(board, "max")
    assert str(ranked["rank_low"].dtype) == str(ranked["rank_high"].dtype) == "Int64"
    assert ranked["rank_low"].tolist() == [1, 1] and ranked["rank_high"].tolist() == [2, 2]


def test_ranking_rules_treat_a_row_without_a_count_as_unranked():
    # Rows that did not come from aggregate (a count left empty) claim no rank either.
    board = lb.rank_rows(pd.DataFrame({
        "model": ["a", "b"], "loss": ["dice", "dice"], "score": [0.6, 0.5],
        "count": [math.nan, 2.0], "seed_values": ['{"0": 0.6, "1": 0.6}',
                                                   '{"0": 0.5, "1": 0.5}']}), "max")
    ruled = lb.ranking_rules(board)
    assert ruled["model"].tolist() == ["b", "a"]  # the unranked row sorts last
    assert ruled.index.tolist() == [0, 1]
    assert ruled["rank"].tolist()[0] == 2 and ruled["rank"].isna().tolist() == [False, True]


def test_aggregate_column_types_and_one_shared_seed_claims_no_tie():
    # Two configurations with one seed each: no paired test (fewer than 2 shared seeds), so
    # the second row is neither tied with the best nor apart from it: NA.
    trials = pd.concat([_trials([0.7], model=["a"]), _trials([0.5], model=["b"])],
                       ignore_index=True)
    board = lb.aggregate(trials)
    assert board["tied_with_best"].tolist()[0] is True and board["tied_with_best"].isna()[1]
    assert math.isnan(board.loc[1, "p_vs_best"])
    # One seed: nothing to resample, so no P(first) and no rank interval.
    assert board["p_first"].isna().all()
    assert board["rank_low"].isna().all() and board["rank_high"].isna().all()
    assert {c: str(board[c].dtype) for c in ("rank", "rank_low", "rank_high",
                                              "tied_with_best", "p_first", "n_params")} == {
        "rank": "Int64", "rank_low": "Int64", "rank_high": "Int64",
        "tied_with_best": "boolean", "p_first": "float64", "n_params": "Int64"}


def test_two_seeds_and_a_failed_configuration_keep_integer_columns():
    trials = pd.concat([_trials([0.7, 0.6], model=["a"] * 2),
                        _trials([0.5, 0.4], model=["b"] * 2),
                        _trials([math.nan], model=["c"], status=["ERROR"])],
                       ignore_index=True)
    board = lb.aggregate(trials)
    assert board["model"].tolist() == ["a", "b", "c"]
    assert {c: str(board[c].dtype) for c in ("rank", "rank_low", "rank_high")} == {
        "rank": "Int64", "rank_low": "Int64", "rank_high": "Int64"}
    assert board["rank_low"].isna().tolist() == [False, False, True]


def test_is_loss_value_and_the_masks_of_a_table_without_status():
    assert [lb.is_loss_value(m) for m in ("loss", "val_loss", "test_focal_loss",
                                          "val_mean_iou", "lossy")] == [
        True, True, True, False, False]
    frame = pd.DataFrame({"val_mean_iou": [0.5, 0.6]}, index=[5, 7])
    finished, failed = lb.finished_mask(frame), lb.failed_mask(frame)
    assert finished.index.tolist() == failed.index.tolist() == [5, 7]
    assert finished.tolist() == [True, True] and failed.tolist() == [False, False]
    assert finished.dtype == failed.dtype == bool


def test_masks_keep_the_tables_index_without_an_end_reason_column():
    frame = pd.DataFrame({"status": ["TERMINATED", "STOPPED"]}, index=[5, 7])
    finished = lb.finished_mask(frame)
    assert finished.index.tolist() == [5, 7] and finished.tolist() == [True, False]


def test_final_stage_keeps_final_trials_and_those_without_a_stage():
    trials = pd.DataFrame({"trial_id": ["f", "none", "t", "empty"],
                           "stage": ["final", None, "tune", ""]})
    assert lb.final_stage(trials)["trial_id"].tolist() == ["f", "none", "empty"]


def test_the_sweeps_own_mode_ranks_its_metric_and_its_test_twin():
    # A sweep that minimised IoU (its spec says mode: min): its test twin is ranked lower
    # is better too, not by IoU's default direction.
    trials = pd.concat([_trials([0.7, 0.85], model=["a"] * 2),
                        _trials([0.2, 0.3], model=["b"] * 2)], ignore_index=True)
    trials = trials.assign(mode="min", test_mean_iou=[0.7, 0.85, 0.2, 0.3])
    board = lb.aggregate(trials)
    assert (board.loc[0, "metric"], board.loc[0, "mode"]) == ("test_mean_iou", "min")
    assert board["model"].tolist() == ["b", "a"]
    # Without a mode column: IoU's default, higher is better.
    board = lb.aggregate(trials.drop(columns="mode"))
    assert board.loc[0, "mode"] == "max" and board["model"].tolist() == ["a", "b"]


def test_a_missing_metric_column_is_named_with_the_choices():
    trials = _trials([0.5]).assign(test_mean_iou=[0.4], note=["x"])
    with pytest.raises(ValueError, match=r"^aggregate: sweep 's' has no metric column "
                                         r"'val_nope'; choose one of: val_mean_iou, "
                                         r"test_mean_iou$"):
        lb.aggregate(trials, metric="val_nope")


def test_trial_values_from_history_for_trials_without_the_column():
    # The trials table lacks val_dice_coef; the history has it for t0 only (best 0.8 of its
    # epochs); t1 has no value anywhere: NaN, aligned with the table's own index.
    trials = _trials([0.5, 0.6]).set_axis([5, 7])
    history = pd.DataFrame({"trial_id": ["t0", "t0"], "epoch": [1, 2],
                            "val_dice_coef": [0.8, 0.6]})
    values = lb.trial_values(trials, "val_dice_coef", "max", history)
    assert values.index.tolist() == [5, 7] and values.dtype == "float64"
    assert values[5] == 0.8 and math.isnan(values[7])


def test_trial_values_take_the_history_only_for_another_validation_metric():
    trials = _trials([0.5, 0.6]).assign(val_loss=[0.4, 0.3], test_dice=[0.7, 0.8])
    history = pd.DataFrame({"trial_id": ["t0", "t0", "t1"], "epoch": [1, 2, 1],
                            "val_mean_iou": [0.9, 0.1, 0.9], "val_loss": [0.2, 0.35, 0.1],
                            "test_dice": [0.1, 0.1, 0.1]})
    # Another val_* metric: each trial's best epoch by the mode (min for a loss).
    assert lb.trial_values(trials, "val_loss", "min", history).tolist() == [0.2, 0.1]
    assert lb.trial_values(trials, "val_loss", "max", history).tolist() == [0.35, 0.1]
    # The sweep's own metric, a test column, a history without the metric or without trial
    # ids: the trials table's values.
    assert lb.trial_values(trials, "val_mean_iou", "max", history).tolist() == [0.5, 0.6]
    assert lb.trial_values(trials, "test_dice", "max", history).tolist() == [0.7, 0.8]
    assert lb.trial_values(trials, "val_loss", "min",
                           history.drop(columns="val_loss")).tolist() == [0.4, 0.3]
    assert lb.trial_values(trials, "val_loss", "min",
                           history.drop(columns="trial_id")).tolist() == [0.4, 0.3]


def test_trial_values_fall_back_to_the_table_for_trials_missing_from_the_history():
    trials = _trials([0.5, 0.6]).assign(val_loss=[0.4, 0.3])
    history = pd.DataFrame({"trial_id": ["t0", "t0"], "val_loss": [0.2, 0.35]})
    assert lb.trial_values(trials, "val_loss", "min", history).tolist() == [0.2, 0.3]


def test_aggregate_refuses_a_bad_mode_and_missing_keys_by_name():
    trials = _trials([0.5, 0.6])
    with pytest.raises(ValueError, match=r"^aggregate: mode must be 'max' or 'min', "
                                         r"got 'up'$"):
        lb.aggregate(trials, mode="up")
    with pytest.raises(ValueError, match=r"^aggregate: trials lack the columns "
                                         r"\['dataset', 'loss'\]; have \['sweep', 'model'\]$"):
        lb.aggregate(trials[["sweep", "model"]])
    empty = lb.aggregate(trials.iloc[:0])
    columns = ["sweep", "dataset", "model", "loss", "metric", "mode", "rank", "count"]
    assert empty.empty and list(empty.columns) == columns
    # Only a protocol's tune stage so far: nothing is ranked, the same empty board.
    tune = lb.aggregate(trials.assign(stage="tune"))
    assert tune.empty and list(tune.columns) == columns


def test_an_explicit_mode_is_used_for_ranking_and_for_each_trials_best_epoch():
    trials = pd.concat([_trials([0.7, 0.8], model=["a"] * 2),
                        _trials([0.2, 0.35], model=["b"] * 2)], ignore_index=True)
    board = lb.aggregate(trials, mode="min")
    assert board.loc[0, "mode"] == "min" and board["model"].tolist() == ["b", "a"]
    # A validation metric other than the sweep's, from the history: each trial's best epoch
    # by the mode given (max for Dice: 0.9, 0.7, 0.6, 0.5).
    history = pd.DataFrame({"trial_id": ["t0", "t0", "t1", "t1"] * 2,
                            "model": ["a"] * 4 + ["b"] * 4,
                            "val_dice_coef": [0.9, 0.1, 0.7, 0.2, 0.6, 0.1, 0.5, 0.3]})
    trials = trials.assign(trial_id=["t0", "t1", "t2", "t3"], val_dice_coef=0.0)
    history["trial_id"] = ["t0", "t0", "t1", "t1", "t2", "t2", "t3", "t3"]
    board = lb.aggregate(trials, metric="val_dice_coef", mode="max", history=history)
    assert board.set_index("model")["val_dice_coef_mean"].to_dict() == pytest.approx(
        {"a": 0.8, "b": 0.55})


def test_sweeps_are_ranked_apart_in_name_order_and_a_missing_sweep_name_is_kept():
    trials = pd.concat([_trials([0.5, 0.6], sweep=["b"] * 2),
                        _trials([0.7, 0.8], sweep=["a"] * 2)], ignore_index=True)
    board = lb.aggregate(trials)
    assert board["sweep"].tolist() == ["a", "b"] and board["rank"].tolist() == [1, 1]
    assert board.index.tolist() == [0, 1]
    unnamed = lb.aggregate(_trials([0.5, 0.6], sweep=[None, None]))
    assert len(unnamed) == 1 and unnamed.loc[0, "count"] == 2


def test_datasets_in_name_order_and_rows_with_missing_keys_are_kept():
    trials = pd.concat([_trials([0.5, 0.6], dataset=["z"] * 2),
                        _trials([0.7, 0.8], dataset=["a"] * 2),
                        _trials([0.4, 0.45], dataset=[None] * 2),
                        _trials([0.3, 0.35], config_id=["c1", None], model=["n"] * 2)],
                       ignore_index=True)
    board = lb.aggregate(trials)
    # Ranked per dataset, in name order, the unnamed dataset last. In dataset "d" the
    # trial without a configuration id (0.35) is a row of its own beside configuration c1.
    assert board["dataset"].fillna("-").tolist() == ["a", "d", "d", "z", "-"]
    assert board["config_id"].fillna("-").tolist() == ["-", "-", "c1", "-", "-"]
    assert board["count"].tolist() == [2, 1, 1, 2, 2]
    assert board["rank"].tolist() == [1, 1, 2, 1, 1]
    assert list(board.columns[:8]) == ["sweep", "dataset", "model", "loss", "config_id",
                                       "rank", "metric", "mode"]


def test_a_loss_value_of_one_loss_function_is_not_ranked_within_loss():
    one = _trials([0.5, 0.6]).assign(val_loss=[0.4, 0.3])
    assert lb.aggregate(one, metric="val_loss")["ranked_within_loss"].tolist() == [False]
    two = pd.concat([one, one.assign(loss="ce")], ignore_index=True)
    assert lb.aggregate(two, metric="val_loss")["ranked_within_loss"].tolist() == [True, True]


def test_t_quantile_and_the_unclipped_confidence_interval():
    assert lb.t_quantile(0.975, 1) == pytest.approx(12.706204736)
    assert lb.t_quantile(0.975, 4) == pytest.approx(2.776445105)
    with pytest.raises(ValueError, match=r"^t_quantile: dof must be >= 1, got 0$"):
        lb.t_quantile(0.975, 0)
    # 0.5 and 0.7: mean 0.6, standard error 0.1; the 95% interval is 0.6 +- 12.71 * 0.1,
    # not clipped to IoU's range here; 90%: 0.6 +- 6.314 * 0.1.
    low, high = lb.confidence_interval(np.array([0.5, 0.7]))
    assert (low, high) == pytest.approx((0.6 - 1.2706204736, 0.6 + 1.2706204736))
    low, high = lb.confidence_interval(np.array([0.5, 0.7, math.nan]), level=0.9)
    assert (low, high) == pytest.approx((0.6 - 0.6313751515, 0.6 + 0.6313751515))
    assert all(math.isnan(x) for x in lb.confidence_interval(np.array([0.5])))


def test_the_cost_columns_every_board_has_even_without_costs_in_the_trials():
    # samples/s, train seconds and epochs are always columns (NaN without the numbers), so
    # boards of old and new tables line up; other costs only when the trials have them.
    row = lb.aggregate(_trials([0.5, 0.6])).iloc[0]
    for column in ("samples_per_second_mean", "train_seconds_mean", "epochs_done_mean"):
        assert math.isnan(row[column]), column
    assert "flops_mean" not in row and "latency_ms_mean" not in row
