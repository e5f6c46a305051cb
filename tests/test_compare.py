"""The leaderboard's confidence intervals clipped to the metric's range, tied ranks, and
``--compare``'s verdicts (paired test on shared seeds, else CI overlap), on hand-built trials
whose numbers are worked here with SciPy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.commands.leaderboard import holm_across_rows
from bench.results import leaderboard as lb


def trials(sweep: str, values: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Finished trials of ``sweep``: ``{model: {seed: test_mean_iou}}`` (loss ``dice``)."""
    rows = [{"sweep": sweep, "dataset": "shapes", "model": model, "loss": "dice",
             "trial_id": f"{sweep}-{model}-{seed}", "seed": seed, "status": "TERMINATED",
             "end_reason": "completed", "test_mean_iou": value, "val_mean_iou": value,
             "metric": "val_mean_iou", "mode": "max", "n_params": 1000}
            for model, seeds in values.items() for seed, value in seeds.items()]
    return pd.DataFrame(rows)


def t_interval(values: list[float]) -> tuple[float, float]:
    """The 95% Student-t interval of the mean, unclipped."""
    v = np.array(values)
    half = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def test_ci_of_an_iou_is_clipped_to_0_1_and_a_narrow_one_is_not():
    wide, narrow = [0.99, 0.20, 0.98], [0.50, 0.52, 0.54]
    board = lb.aggregate(trials("s", {"wide": dict(enumerate(wide)),
                                      "narrow": dict(enumerate(narrow))})).set_index("model")
    low, high = t_interval(wide)
    assert low < 0.0 and high > 1.0  # the t-interval leaves IoU's range on both sides
    assert (board.loc["wide", "test_mean_iou_ci_low"],
            board.loc["wide", "test_mean_iou_ci_high"]) == (0.0, 1.0)
    assert board.loc["wide", "test_mean_iou_mean"] == pytest.approx(np.mean(wide))
    low, high = t_interval(narrow)
    assert board.loc["narrow", "test_mean_iou_ci_low"] == pytest.approx(low)
    assert board.loc["narrow", "test_mean_iou_ci_high"] == pytest.approx(high)
    assert bool(board.loc["narrow", "ci_few"]) is True  # 3 seeds < 5


def test_tied_rows_share_a_rank_and_split_p_first():
    """Two configurations with the same score on every seed rank 1 and 1 (by name), the next
    one 3; in every bootstrap resample the two tie for first, so each has P(first) = 1/2."""
    same = {0: 0.6, 1: 0.7, 2: 0.8}
    board = lb.aggregate(trials("s", {"zeta": same, "alpha": same,
                                      "worse": {k: v - 0.1 for k, v in same.items()}}))
    assert board["model"].tolist() == ["alpha", "zeta", "worse"]
    assert board["rank"].tolist() == [1, 1, 3]
    assert board["p_first"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert board["rank_low"].tolist() == [1, 1, 3] and board["rank_high"].tolist() == [1, 1, 3]
    assert board["score"].tolist() == pytest.approx([0.7, 0.7, 0.6])


def test_compare_judges_by_ci_overlap_without_shared_seeds_and_pairs_them_with():
    left = lb.aggregate(trials("a", {
        "apart": {0: 0.50, 1: 0.52, 2: 0.54},
        "overlap": {0: 0.49, 1: 0.52, 2: 0.55},
        "single": {0: 0.50},
        "paired": {0: 0.50, 1: 0.60, 2: 0.55, 3: 0.58},
    }))
    right = lb.aggregate(trials("b", {
        "apart": {3: 0.70, 4: 0.72, 5: 0.74},  # other seeds: CIs [0.47, 0.57], [0.65, 0.77]
        "overlap": {3: 0.53, 4: 0.56, 5: 0.57},  # [0.50, 0.61] overlaps [0.45, 0.59]
        "single": {3: 0.60, 4: 0.63},  # a has one trial: no interval, no verdict
        "paired": {0: 0.52, 1: 0.63, 2: 0.56, 3: 0.61},  # the same 4 seeds: paired t
    }))
    out = holm_across_rows(lb.compare(left, right, "test_mean_iou")).set_index("model")
    for model in ("apart", "overlap", "single"):
        assert out.loc[model, "test"] == "ci overlap" and out.loc[model, "n_pairs"] == 0
        assert math.isnan(out.loc[model, "p"]) and math.isnan(out.loc[model, "p_holm"])
    a_low, a_high = t_interval([0.50, 0.52, 0.54])
    assert out.loc["apart", "ci_low_a"] == pytest.approx(a_low)
    assert out.loc["apart", "ci_high_a"] == pytest.approx(a_high)
    assert t_interval([0.70, 0.72, 0.74])[0] > a_high  # apart, worked here
    assert out.loc["apart", "distinct"] is True
    assert out.loc["apart", "better"] == "b"
    assert out.loc["apart", "diff"] == pytest.approx(0.2)
    assert t_interval([0.53, 0.56, 0.57])[0] < t_interval([0.49, 0.52, 0.55])[1]  # overlap
    assert out.loc["overlap", "distinct"] is False
    assert out.loc["single", "distinct"] is None
    assert (out.loc["single", "count_a"], out.loc["single", "count_b"]) == (1, 2)
    # Shared seeds: the paired t-test of b against a, the only p of the family (Holm: kept).
    expected = sps.ttest_rel([0.52, 0.63, 0.56, 0.61], [0.50, 0.60, 0.55, 0.58]).pvalue
    assert out.loc["paired", "test"] == "paired t" and out.loc["paired", "n_pairs"] == 4
    assert out.loc["paired", "p"] == pytest.approx(expected)
    assert out.loc["paired", "p_holm"] == pytest.approx(expected)
    assert out.loc["paired", "distinct"] is bool(expected < 0.05)
