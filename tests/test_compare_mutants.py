"""``leaderboard.compare`` value by value on hand-made boards: which rows meet, which side is
better by the board's mode, when the paired test is used (from 2 shared seeds) and when the
intervals are compared (touching intervals overlap), and the columns and types it returns.
Written against the mutants of ``python tests/mutation/run.py --groups compare``."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats as sps

from bench.results import leaderboard as lb

M = "test_mean_iou"


def board(rows: list[dict], **columns) -> pd.DataFrame:
    """A leaderboard: each row ``{model, mean, ci: (low, high), count, seeds: {seed: v}}``
    on dataset ``shapes``, loss ``dice``; ``columns`` added to every row (``mode=...``)."""
    out = []
    for r in rows:
        row = {"dataset": "shapes", "model": r["model"], "loss": "dice",
               f"{M}_mean": r["mean"], f"{M}_std": r.get("std", 0.01),
               "count": r.get("count", 3), f"{M}_ci_low": r.get("ci", (math.nan,) * 2)[0],
               f"{M}_ci_high": r.get("ci", (math.nan,) * 2)[1], **columns}
        if "seeds" in r:
            row["seed_values"] = json.dumps({str(k): v for k, v in r["seeds"].items()})
        if "config" in r:
            row["config_id"] = r["config"]
        out.append(row)
    return pd.DataFrame(out)


def test_rows_of_either_board_meet_sorted_and_a_missing_side_counts_zero():
    left = board([{"model": "unet", "mean": 0.5, "seeds": {0: 0.5}},
                  {"model": "only_a", "mean": 0.4, "seeds": {0: 0.4}}])
    right = board([{"model": "unet", "mean": 0.6, "seeds": {1: 0.6}},
                   {"model": "b_only", "mean": 0.3, "seeds": {1: 0.3}}])
    out = lb.compare(left, right, M)
    # An outer join, sorted by the cell: a row in one board only is kept, its other side
    # empty, count 0 (an int), no "better" without both means.
    assert out["model"].tolist() == ["b_only", "only_a", "unet"]
    assert out["count_a"].tolist() == [0, 3, 3] and out["count_b"].tolist() == [3, 0, 3]
    assert out["count_a"].dtype.kind == "i" and out["count_b"].dtype.kind == "i"
    assert out["better"].tolist() == ["", "", "b"]
    assert math.isnan(out.loc[0, "mean_a"]) and math.isnan(out.loc[1, "diff"])
    assert out["n_pairs"].tolist() == [0, 0, 0]
    # The per-seed scores are read, not returned.
    assert "seed_values_a" not in out.columns and "seed_values_b" not in out.columns
    assert list(out.columns[:3]) == ["dataset", "model", "loss"]


def test_better_follows_the_left_boards_mode_else_the_metrics():
    rows_a = [{"model": "m", "mean": 0.5}, {"model": "same", "mean": 0.5}]
    rows_b = [{"model": "m", "mean": 0.6}, {"model": "same", "mean": 0.5}]
    assert lb.compare(board(rows_a, mode="max"), board(rows_b), M)["better"].tolist() == [
        "b", ""]
    # The board's own mode wins over the metric's default (max for an IoU).
    assert lb.compare(board(rows_a, mode="min"), board(rows_b), M)["better"].tolist() == [
        "a", ""]
    # No mode on the board: the metric's (lower is better for a loss).
    loss = "test_loss"
    left = board(rows_a).rename(columns=lambda c: c.replace(M, loss))
    right = board(rows_b).rename(columns=lambda c: c.replace(M, loss))
    out = lb.compare(left, right, loss)
    assert out["better"].tolist() == ["a", ""]
    assert out["diff"].tolist() == pytest.approx([0.1, 0.0])


def test_two_shared_seeds_are_paired_one_is_not():
    left = board([{"model": "two", "mean": 0.5, "seeds": {0: 0.50, 1: 0.60, 7: 0.1}},
                  {"model": "one", "mean": 0.5, "seeds": {0: 0.50}, "ci": (0.4, 0.6)}])
    right = board([{"model": "two", "mean": 0.6, "seeds": {0: 0.61, 1: 0.70, 8: 0.9}},
                   {"model": "one", "mean": 0.6, "seeds": {0: 0.60}, "ci": (0.7, 0.8)}])
    out = lb.compare(left, right, M).set_index("model")
    expected = sps.ttest_rel([0.61, 0.70], [0.50, 0.60]).pvalue  # seeds 0 and 1 only
    assert out.loc["two", "n_pairs"] == 2 and out.loc["two", "test"] == "paired t"
    assert out.loc["two", "p"] == pytest.approx(expected)
    assert out.loc["two", "distinct"] is bool(expected < 0.05)
    assert out.loc["one", "n_pairs"] == 1 and out.loc["one", "test"] == "ci overlap"
    assert math.isnan(out.loc["one", "p"])
    assert out.loc["one", "distinct"] is True  # [0.4, 0.6] and [0.7, 0.8] are apart


def test_a_clear_paired_difference_is_distinct():
    a = {s: 0.5 + 0.01 * s for s in range(6)}
    b = {s: v + 0.2 + 0.001 * s for s, v in a.items()}
    out = lb.compare(board([{"model": "m", "mean": 0.5, "seeds": a}]),
                     board([{"model": "m", "mean": 0.7, "seeds": b}]), M)
    assert out.loc[0, "n_pairs"] == 6 and out.loc[0, "p"] < 0.05
    assert out.loc[0, "distinct"] is True


@pytest.mark.parametrize("a_ci, b_ci", [((0.4, 0.6), (0.6, 0.8)), ((0.6, 0.8), (0.4, 0.6))])
def test_touching_intervals_overlap(a_ci, b_ci):
    out = lb.compare(board([{"model": "m", "mean": 0.5, "ci": a_ci}]),
                     board([{"model": "m", "mean": 0.7, "ci": b_ci}]), M)
    assert out.loc[0, "test"] == "ci overlap" and out.loc[0, "distinct"] is False


def test_configurations_are_matched_by_config_id_only_where_a_cell_has_several():
    # Each board one configuration per cell, with other ids (other hyperparameters): the
    # cells meet.
    left = board([{"model": "m", "mean": 0.5, "config": "c1"}])
    right = board([{"model": "m", "mean": 0.6, "config": "c2"}])
    out = lb.compare(left, right, M)
    assert len(out) == 1 and out.loc[0, "diff"] == pytest.approx(0.1)
    # Two configurations of a cell in one board: matched by their id.
    left = board([{"model": "m", "mean": 0.5, "config": "c1"},
                  {"model": "m", "mean": 0.3, "config": "c2"}])
    right = board([{"model": "m", "mean": 0.6, "config": "c1"}])
    out = lb.compare(left, right, M).set_index("config_id")
    assert sorted(out.index) == ["c1", "c2"]
    assert out.loc["c1", "diff"] == pytest.approx(0.1) and math.isnan(out.loc["c2", "diff"])
    # Only one board has config_id: matched by the cell.
    out = lb.compare(board([{"model": "m", "mean": 0.5, "config": "c1"},
                            {"model": "n", "mean": 0.5, "config": "c1"}]),
                     board([{"model": "m", "mean": 0.6}]), M)
    assert out["model"].tolist() == ["m", "n"]


def test_a_board_without_the_metric_is_named():
    left = board([{"model": "m", "mean": 0.5}])
    right = left.drop(columns=[f"{M}_ci_high"])
    with pytest.raises(ValueError) as info:
        lb.compare(left, right, M)
    assert str(info.value) == (f"compare: leaderboard b lacks ['{M}_ci_high'] "
                               f"(metric '{M}')")
    with pytest.raises(ValueError) as info:
        lb.compare(right, left, M)
    assert str(info.value).startswith("compare: leaderboard a lacks")
