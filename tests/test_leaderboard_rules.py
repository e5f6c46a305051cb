"""What a leaderboard may claim (issue 30): rows without a finished trial are not ranked,
one seed gives no P(first) or rank interval, boards of several metrics label each row."""

from __future__ import annotations

import json
import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.results import leaderboard as lb


def _trials(sweep: str, scores: dict[tuple[str, int], float], metric: str = "val_mean_iou"
            ) -> pd.DataFrame:
    """One trial per (model, seed) with ``metric`` = the score (NaN: the trial failed)."""
    rows = []
    for (model, seed), value in scores.items():
        ok = math.isfinite(value)
        rows.append({"sweep": sweep, "trial_id": f"{sweep}-{model}-{seed}", "model": model,
                     "loss": "dice", "dataset": "shapes", "seed": seed, "lr": 1e-3,
                     "batch_size": 8, "epochs": 2, "epochs_done": 2 if ok else 0,
                     "status": "TERMINATED" if ok else "ERROR",
                     "end_reason": "completed" if ok else "error",
                     "error": None if ok else "ValueError: boom", "best_epoch": 2,
                     "params": json.dumps({"lr": 1e-3}), "metric": metric, "mode": "max",
                     metric: value, "n_params": 10, "mlflow_run_id": f"r-{model}-{seed}",
                     "spec": "", "versions": "{}"})
    return pd.DataFrame(rows)


def test_failed_rows_are_not_ranked_and_one_seed_claims_no_p_first() -> None:
    trials = pd.concat([
        _trials("ok", {("unet", 0): 0.29, ("segnet", 0): 0.27}),
        _trials("bad", {("unet", 0): math.nan, ("segnet", 0): math.nan}),
    ], ignore_index=True)
    board = lb.aggregate(trials).set_index(["sweep", "model"])
    assert board.loc[("ok", "unet"), "rank"] == 1 and board.loc[("ok", "segnet"), "rank"] == 2
    for model in ("unet", "segnet"):
        row = board.loc[("bad", model)]
        assert row["count"] == 0 and row["failed"] == 1
        assert pd.isna(row["rank"]) and pd.isna(row["p_first"]) and pd.isna(row["rank_low"])
        assert pd.isna(row["tied_with_best"])
    # One seed: the bootstrap over seeds has nothing to resample.
    assert board.loc["ok", "p_first"].isna().all() and board.loc["ok", "rank_high"].isna().all()
    shown = lb.summary(lb.aggregate(trials)).set_index(["sweep", "model"])
    assert list(shown.loc["bad", "rank"]) == ["failed", "failed"]
    assert list(shown.loc["ok", "rank"]) == ["1", "2"]
    assert set(shown.loc["ok", "P(first)"]) == {lb.NEEDS_SEEDS}
    assert set(shown.loc["ok", "rank 95%"]) == {lb.NEEDS_SEEDS}
    assert set(shown.loc["bad", "P(first)"]) == {""}


def test_two_seeds_give_p_first_and_failed_rows_sort_last() -> None:
    trials = _trials("two", {("unet", 0): 0.30, ("unet", 1): 0.31, ("segnet", 0): 0.20,
                             ("segnet", 1): 0.21, ("ladder", 0): math.nan,
                             ("ladder", 1): math.nan})
    board = lb.aggregate(trials)
    assert list(board["model"]) == ["unet", "segnet", "ladder"]
    # unet beats segnet on both seeds: first in every bootstrap resample.
    assert board["p_first"].iloc[0] == 1.0 and board["p_first"].iloc[1] == 0.0
    assert (board["rank_low"].iloc[0], board["rank_high"].iloc[0]) == (1, 1)
    assert pd.isna(board["rank"].iloc[2])


def test_boards_of_several_metrics_label_each_row() -> None:
    trials = pd.concat([
        _trials("a", {("unet", 0): 0.3}, metric="val_mean_iou"),
        _trials("b", {("unet", 0): 0.4}, metric="val_dice_coef"),
    ], ignore_index=True)
    shown = lb.summary(lb.aggregate(trials))
    assert "score" in shown.columns and "val_mean_iou" not in shown.columns
    assert list(shown["metric"]) == ["val_mean_iou", "val_dice_coef"]
    assert list(shown["score"]) == ["0.3000", "0.4000"]
    single = lb.summary(lb.aggregate(trials[trials["sweep"] == "a"]))
    assert "val_mean_iou" in single.columns and "metric" not in single.columns


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(math.nan)), min_size=1, max_size=6))
def test_ranks_never_go_to_rows_without_a_finished_trial(scores: list[float]) -> None:
    trials = _trials("p", {(f"m{i}", 0): v for i, v in enumerate(scores)})
    board = lb.aggregate(trials)
    finished = board["count"] > 0
    assert board.loc[~finished, "rank"].isna().all()
    assert board.loc[finished, "rank"].notna().all()
    if finished.any():
        ranks = board.loc[finished, "rank"].astype(int)
        assert ranks.min() == 1 and ranks.max() <= int(finished.sum())
    assert list(finished) == sorted(finished, reverse=True)  # failed rows last
