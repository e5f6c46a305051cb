"""bench.results.stats against cases worked by hand and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.results import stats


def test_metric_range():
    assert stats.metric_range("test_mean_iou") == (0.0, 1.0)
    assert stats.metric_range("val_dice_coef") == (0.0, 1.0)
    assert stats.metric_range("test_case_hd95_mean") == (0.0, math.inf)
    assert stats.metric_range("val_loss") == (-math.inf, math.inf)


def test_mean_ci_by_hand_and_clipped():
    # 0.2, 0.4, 0.6: mean 0.4, std 0.2,
    # half = t(0.975, 2) * 0.2 / sqrt(3) = 4.30265 * 0.115470 = 0.496828.
    r = stats.mean_ci(np.array([0.2, 0.4, 0.6]))
    assert r.n == 3 and r.mean == pytest.approx(0.4) and r.std == pytest.approx(0.2)
    assert r.low == pytest.approx(0.4 - 0.496828, abs=1e-5) and r.few
    assert r.high == pytest.approx(0.4 + 0.496828, abs=1e-5)
    clipped = stats.mean_ci(np.array([0.2, 0.4, 0.6]), bounds=(0.0, 1.0))
    assert clipped.low == 0.0 and clipped.high == pytest.approx(0.896828, abs=1e-5)
    one = stats.mean_ci(np.array([0.5, math.nan]))
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.low)
    assert stats.mean_ci(np.array([])).n == 0
    many = stats.mean_ci(np.linspace(0.5, 0.6, 6))
    assert not many.few
    lo, hi = sps.t.interval(0.95, 5, loc=np.mean(np.linspace(0.5, 0.6, 6)),
                            scale=sps.sem(np.linspace(0.5, 0.6, 6)))
    assert (many.low, many.high) == pytest.approx((lo, hi))


def test_paired_wilcoxon_exact_at_n6():
    # Every difference positive and distinct: the exact two-sided p is 2 / 2**6.
    a = np.array([0.7, 0.72, 0.74, 0.76, 0.78, 0.80])
    b = a - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    r = stats.paired_test(a, b)
    assert r.test == "wilcoxon" and r.n == 6
    assert r.pvalue == pytest.approx(2 / 64)
    assert r.pvalue == pytest.approx(sps.wilcoxon(a - b).pvalue)


def test_paired_t_below_6_pairs():
    # d = 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641, df 2 -> p = 0.0742.
    a, b = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    r = stats.paired_test(a, b)
    assert r.test == "paired t" and r.n == 3
    assert r.statistic == pytest.approx(2 * math.sqrt(3))
    assert r.pvalue == pytest.approx(2 * sps.t.sf(2 * math.sqrt(3), 2))
    assert r.pvalue == pytest.approx(0.07417, abs=1e-4)


def test_paired_degenerate_cases():
    same = np.array([0.5, 0.6, 0.7])
    assert stats.paired_test(same, same.copy()).pvalue == 1.0
    assert stats.paired_test(np.full(7, 0.3), np.full(7, 0.3)).pvalue == 1.0
    shifted = stats.paired_test(same + 0.1, same)
    assert shifted.pvalue == 0.0 and shifted.statistic == math.inf
    # NaN drops the pair; fewer than 2 pairs is no test.
    r = stats.paired_test(np.array([0.5, math.nan, 0.7]), np.array([0.4, 0.1, math.nan]))
    assert r.n == 1 and r.test == "none" and math.isnan(r.pvalue)
    with pytest.raises(ValueError, match="aligned"):
        stats.paired_test(np.zeros(3), np.zeros(4))


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, 1*0.04 = 0.03, 0.06, 0.04 -> monotone 0.06.
    out = stats.holm(np.array([0.01, 0.04, math.nan, 0.03]))
    np.testing.assert_allclose(out, [0.03, 0.06, math.nan, 0.06])
    assert stats.holm(np.array([0.9, 0.8])).tolist() == [1.0, 1.0]
    assert np.isnan(stats.holm(np.array([math.nan]))).all()


def _loop_ranks(scores, mode, resamples, seed):
    """The bootstrap written as a plain loop, to check the vectorised one."""
    rng = np.random.default_rng(seed)
    rows, n = scores.shape
    draws = rng.integers(0, n, size=(resamples, n))
    out = np.zeros((resamples, rows), dtype=int)
    for k in range(resamples):
        means = [np.nanmean(scores[i, draws[k]]) if np.isfinite(scores[i, draws[k]]).any()
                 else math.nan for i in range(rows)]
        for i in range(rows):
            if not np.isfinite(means[i]):
                out[k, i] = rows
                continue
            better = sum(1 for j in range(rows) if np.isfinite(means[j])
                         and (means[j] > means[i] if mode == "max" else means[j] < means[i]))
            out[k, i] = 1 + better
    return out


def test_bootstrap_ranks_match_a_loop_and_are_deterministic():
    rng = np.random.default_rng(3)
    scores = rng.normal(0.5, 0.05, (4, 5))
    scores[2, 1] = math.nan
    for mode in ("max", "min"):
        ranks = stats.bootstrap_ranks(scores, mode, resamples=200, seed=7)
        np.testing.assert_array_equal(ranks, _loop_ranks(scores, mode, 200, 7))
        np.testing.assert_array_equal(ranks, stats.bootstrap_ranks(scores, mode, resamples=200,
                                                                   seed=7))


def test_p_first_and_rank_interval():
    # Row 0 beats row 1 on every seed, and both beat row 2: ranks never move.
    scores = np.array([[0.9, 0.8, 0.85, 0.95], [0.5, 0.6, 0.55, 0.5], [0.1, 0.2, 0.1, 0.2]])
    ranks = stats.bootstrap_ranks(scores, "max", resamples=1000)
    np.testing.assert_allclose(stats.p_first(ranks), [1, 0, 0])
    low, high = stats.rank_interval(ranks)
    assert low.tolist() == [1, 2, 3] and high.tolist() == [1, 2, 3]
    # Two identical rows share first place: 1/2 each.
    twins = np.array([[0.5, 0.6, 0.7], [0.5, 0.6, 0.7]])
    np.testing.assert_allclose(stats.p_first(stats.bootstrap_ranks(twins, "min")), [0.5, 0.5])
    # Two rows swapping the lead on different seeds: both have a chance, summing to 1.
    close = np.array([[0.6, 0.5, 0.6, 0.5, 0.6], [0.5, 0.6, 0.5, 0.6, 0.55]])
    p = stats.p_first(stats.bootstrap_ranks(close, "max"))
    assert p.sum() == pytest.approx(1) and 0.2 < p[0] < 0.9
    low, high = stats.rank_interval(stats.bootstrap_ranks(close, "max"))
    assert low.tolist() == [1, 1] and high.tolist() == [2, 2]


def test_wilcoxon_min_n_is_where_it_can_reject_after_holm():
    assert stats.wilcoxon_min_n() == stats.wilcoxon_min_n(1) == stats.WILCOXON_MIN_N == 6
    assert stats.wilcoxon_min_n(2) == 7 and stats.wilcoxon_min_n(34) == 11
    for m in (1, 2, 3, 10, 34, 100):
        n = stats.wilcoxon_min_n(m)
        assert 2 / 2**n < 0.05 / m <= 2 / 2 ** (n - 1)
    # Below it, the paired t-test is used.
    a = np.linspace(0.5, 0.8, 6)
    assert stats.paired_test(a, a - 0.01 * np.arange(1, 7), min_wilcoxon=7).test == "paired t"


def test_default_mode_ranks_errors_and_distances_lower_is_better():
    for metric in ("val_loss", "test_mae", "val_mae", "test_mse", "test_case_hd95_mean",
                   "val_error_rate", "hausdorff"):
        assert stats.default_mode(metric) == "min", metric
    for metric in ("test_mean_iou", "val_dice_coef", "val_pixel_accuracy", "test_case_nsd"):
        assert stats.default_mode(metric) == "max", metric


def test_compare_holm_across_rows_by_hand():
    from bench.commands.leaderboard import holm_across_rows

    # Raw p 0.01, 0.04, 0.03 over three tested rows: Holm gives 0.03, 0.06, 0.06, so only
    # the first stays distinct; the fourth row had no shared seeds (CI overlap verdict kept).
    out = pd.DataFrame({"p": [0.01, 0.04, 0.03, math.nan],
                        "distinct": [True, True, True, None]})
    got = holm_across_rows(out)
    np.testing.assert_allclose(got["p_holm"], [0.03, 0.06, 0.06, math.nan])
    assert got["distinct"].tolist() == [True, False, False, None]


def _iou_trials(values: list[float], sweep: str = "s") -> pd.DataFrame:
    return pd.DataFrame({
        "sweep": sweep, "dataset": "shapes", "model": "testnet", "loss": "dice",
        "trial_id": [f"{sweep}{i}" for i in range(len(values))], "seed": range(len(values)),
        "status": "TERMINATED", "metric": "val_mean_iou", "mode": "max",
        "val_mean_iou": values, "test_mean_iou": values,
    })


def test_aggregate_clips_the_interval_to_the_metrics_range():
    from bench.results import leaderboard as lb

    # 0.01, 0.02, 0.60: mean 0.21, t-interval 0.21 -+ 4.303 * 0.3378 / sqrt(3) =
    # [-0.629, 1.049]: an IoU interval is clipped to [0, 1].
    values = [0.01, 0.02, 0.60]
    board = lb.aggregate(_iou_trials(values))
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean(values), scale=sps.sem(values))
    assert lo < -0.6 and hi > 1.04
    row = board.iloc[0]
    assert row["test_mean_iou_ci_low"] == 0.0 and row["test_mean_iou_ci_high"] == 1.0
    assert row["test_mean_iou_mean"] == pytest.approx(0.21)
    # Inside the range nothing is clipped.
    inner = lb.aggregate(_iou_trials([0.5, 0.52, 0.54])).iloc[0]
    lo, hi = sps.t.interval(0.95, 2, loc=0.52, scale=sps.sem([0.5, 0.52, 0.54]))
    assert (inner["test_mean_iou_ci_low"], inner["test_mean_iou_ci_high"]) == pytest.approx(
        (lo, hi))


def test_latest_sweep_is_the_one_whose_last_trial_ended_last():
    from bench.results import leaderboard as lb

    t = pd.concat([_iou_trials([0.5, 0.6], "early"), _iou_trials([0.5], "late"),
                   _iou_trials([0.5], "zzz")])
    t["ended_at"] = pd.to_datetime(["2026-01-01", "2026-05-01", "2026-03-01", "2026-02-01"],
                                   utc=True)
    # "early" has the single latest trial (May); "zzz" is last by name only.
    assert lb.latest_sweep(t) == "early"
    t["ended_at"] = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-03-01", "2026-02-01"],
                                   utc=True)
    assert lb.latest_sweep(t) == "late"
    assert lb.latest_sweep(t.drop(columns=["ended_at"])) == "zzz"


def test_exact_results_of_the_degenerate_cases():
    """Every field of the small results, NaN for NaN (np.testing.assert_equal: None != NaN)."""
    nan = math.nan
    np.testing.assert_equal(tuple(stats.mean_ci(np.array([]))), (0, nan, nan, nan, nan, True))
    np.testing.assert_equal(tuple(stats.mean_ci(np.array([0.5]))), (1, 0.5, nan, nan, nan,
                                                                      True))
    assert stats.mean_ci(np.linspace(0.5, 0.6, 5)).few is False  # n = FEW is not few
    assert stats.mean_ci(np.linspace(0.5, 0.6, 4)).few is True
    np.testing.assert_equal(tuple(stats.paired_test(np.array([0.5]), np.array([0.4]))),
                            (nan, nan, "none", 1))
    same = np.array([0.5, 0.6, 0.7])
    assert tuple(stats.paired_test(same, same.copy())) == (0.0, 1.0, "none", 3)
    assert tuple(stats.paired_test(same + 0.1, same)) == (math.inf, 0.0, "paired t", 3)
    assert tuple(stats.paired_test(same - 0.25, same)) == (-math.inf, 0.0, "paired t", 3)
    # Two pairs already make a paired t-test: d = 1, 3 -> t = 2 / (sqrt 2 / sqrt 2) = 2.
    two = stats.paired_test(np.array([2.0, 5.0]), np.array([1.0, 2.0]))
    assert two.test == "paired t" and two.n == 2 and two.statistic == pytest.approx(2.0)
    # Wilcoxon's statistic: the smaller signed-rank sum, 0 when every difference is positive.
    a = np.array([0.7, 0.72, 0.74, 0.76, 0.78, 0.80])
    assert stats.paired_test(a, a - 0.01 * np.arange(1, 7)).statistic == 0.0


def test_metric_range_of_names_that_mix_words():
    inf = math.inf
    assert stats.metric_range("val_dice_loss") == (-inf, inf)  # a loss, even a Dice loss
    assert stats.metric_range("VAL_LOSS") == (-inf, inf)
    assert stats.metric_range("val_something") == (-inf, inf)
    assert stats.metric_range("test_mae") == (0.0, inf)
    assert stats.metric_range("test_case_nsd_mean") == (0.0, 1.0)


def test_bootstrap_ranks_edge_cases_and_defaults():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'best'"):
        stats.bootstrap_ranks(np.zeros((2, 2)), "best")
    empty = stats.bootstrap_ranks(np.zeros((0, 3)), "max", resamples=5)
    assert empty.shape == (5, 0) and empty.dtype.kind == "i"
    # No seeds at all: every row ranks last (one row: 1st of 1).
    assert stats.bootstrap_ranks(np.zeros((1, 0)), "max", resamples=2).tolist() == [[1], [1]]
    no_seeds = stats.bootstrap_ranks(np.zeros((3, 0)), "max", resamples=4)
    np.testing.assert_array_equal(no_seeds, np.full((4, 3), 3))
    one = stats.bootstrap_ranks(np.array([[0.3, 0.4]]), "max", resamples=4)
    np.testing.assert_array_equal(one, np.ones((4, 1), dtype=int))
    assert one.dtype.kind == "i"
    # Defaults: 2,000 resamples drawn with seed 0, over every seed (column 0 included).
    scores = np.array([[0.1, 0.9, 0.5], [0.5, 0.5, 0.5]])
    default = stats.bootstrap_ranks(scores, "max")
    assert default.shape == (2000, 2)
    np.testing.assert_array_equal(default, stats.bootstrap_ranks(scores, "max", seed=0,
                                                                 resamples=2000))
    draws = np.random.default_rng(0).integers(0, 3, size=(2000, 3))
    first_wins = scores[0, draws].mean(axis=1) > 0.5
    np.testing.assert_array_equal(default[:, 0] == 1, first_wins | np.isclose(
        scores[0, draws].mean(axis=1), 0.5))


def test_rank_interval_percentiles_by_hand():
    # 40 resamples of one row: ranks 1 x 1, 2 x 38, 3 x 1. The 2.5th percentile
    # (numpy's linear rule) lies between the 1st and 2nd value: 1.975 -> floor 1; the
    # 97.5th between the 39th and 40th: 2.025 -> ceil 3. A row always 2nd: (2, 2).
    ranks = np.array([[1], *[[2]] * 38, [3]])
    low, high = stats.rank_interval(ranks)
    assert (low.tolist(), high.tolist()) == ([1], [3])
    assert low.dtype.kind == "i" and high.dtype.kind == "i"
    # 200 resamples, percentiles at indices 0.025 * 199 = 4.975 and 0.975 * 199 = 194.025:
    # with 5 ones and 5 threes they fall on 1.975 and 2.025 -> (1, 3); with 4 of each on
    # 2 and 2 -> (2, 2).
    wide = np.array([[1]] * 5 + [[2]] * 190 + [[3]] * 5)
    assert [v.tolist() for v in stats.rank_interval(wide)] == [[1], [3]]
    narrow = np.array([[1]] * 4 + [[2]] * 192 + [[3]] * 4)
    assert [v.tolist() for v in stats.rank_interval(narrow)] == [[2], [2]]
