"""Across datasets: ranks, Friedman, Nemenyi's CD and Kendall's tau against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench import across


def _board(rows: list[tuple[str, str, str, float]], mode: str = "max") -> pd.DataFrame:
    """Leaderboard rows (dataset, model, loss, score) of one sweep."""
    return pd.DataFrame([{"sweep": "s", "dataset": d, "model": m, "loss": lo, "mode": mode,
                          "score": v} for d, m, lo, v in rows])


def test_rank_matrix_ranks_within_each_dataset_with_average_ties():
    board = _board([("a", "unet", "dice", 0.9), ("a", "testnet", "dice", 0.7),
                    ("a", "segnet", "dice", 0.7),
                    ("b", "unet", "dice", 0.5), ("b", "testnet", "dice", 0.6)])
    ranks = across.rank_matrix(board)
    assert ranks.loc["unet x dice", "a"] == 1.0
    assert ranks.loc["testnet x dice", "a"] == ranks.loc["segnet x dice", "a"] == 2.5
    assert ranks.loc["testnet x dice", "b"] == 1.0 and ranks.loc["unet x dice", "b"] == 2.0
    assert math.isnan(ranks.loc["segnet x dice", "b"])  # did not run on b


def test_rank_matrix_follows_mode_min():
    board = _board([("a", "unet", "dice", 0.2), ("a", "testnet", "dice", 0.4)], mode="min")
    assert across.rank_matrix(board).loc["unet x dice", "a"] == 1.0


def test_friedman_matches_the_formula_and_scipy_without_ties():
    # 5 datasets x 4 configurations, no ties within a dataset.
    ranks = np.array([[1, 2, 3, 4], [1, 3, 2, 4], [2, 1, 3, 4], [1, 2, 4, 3], [1, 2, 3, 4]],
                     dtype=float)
    result = across.friedman(ranks)
    n, k = 5, 4
    r = ranks.mean(axis=0)  # 1.2, 2.0, 3.0, 3.8
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(r ** 2) - k * (k + 1) ** 2 / 4)
    assert result.statistic == pytest.approx(chi2) == pytest.approx(11.64)
    scipy_result = sps.friedmanchisquare(*ranks.T)
    assert result.statistic == pytest.approx(scipy_result.statistic)
    assert result.pvalue == pytest.approx(scipy_result.pvalue)
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert result.iman_davenport == pytest.approx(f)
    assert result.pvalue_f == pytest.approx(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))


def test_nemenyi_critical_difference_against_demsar():
    # Demšar (2006), section 3.2.2: k = 4 classifiers, N = 14 data sets, CD = 1.25.
    assert across.critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84))
    assert round(across.critical_difference(4, 14), 2) == 1.25
    # The table's q values are the studentized range quantiles over sqrt(2).
    for k, q in across.Q_05.items():
        assert sps.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2) == pytest.approx(
            q, abs=2e-3)
    assert across.nemenyi_q(12) == pytest.approx(
        sps.studentized_range.ppf(0.95, 12, np.inf) / math.sqrt(2))


def test_datasets_to_separate_is_the_first_n_where_the_cd_falls_below_the_gap():
    n = across.datasets_to_separate(4, 0.5)
    assert across.critical_difference(4, n) < 0.5 <= across.critical_difference(4, n - 1)
    assert across.datasets_to_separate(4, 0.0) is None


def test_cliques_join_configurations_closer_than_the_cd():
    mean = pd.Series({"a": 1.0, "b": 1.5, "c": 2.4, "d": 3.9})
    assert across.cliques(mean, 1.0) == [["a", "b"], ["b", "c"]]
    assert across.cliques(mean, 0.1) == []


def test_kendall_matrix_between_datasets():
    ranks = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [3.0, 2.0, 1.0]},
                         index=["x", "y", "z"])
    tau = across.kendall_matrix(ranks)
    assert tau.loc["a", "b"] == pytest.approx(1.0)
    assert tau.loc["a", "c"] == pytest.approx(-1.0) == tau.loc["c", "a"]
    assert tau.loc["a", "a"] == 1.0


def test_across_table_and_summary_on_a_constructed_board():
    # Three datasets; unet is first on each, testnet second, segnet third; one config ran
    # on a single dataset only and stays out of the test.
    rows = []
    for d in ("a", "b", "c"):
        rows += [(d, "unet", "dice", 0.9), (d, "testnet", "dice", 0.8),
                 (d, "segnet", "dice", 0.7)]
    rows.append(("a", "ladder", "dice", 0.95))
    result = across.across(_board(rows))
    table = result.table.set_index("config")
    assert list(result.table["config"][:3]) == ["unet x dice", "testnet x dice",
                                                "segnet x dice"]
    assert table.loc["unet x dice", "mean_rank"] == pytest.approx((2 + 1 + 1) / 3)
    assert table.loc["ladder x dice", "n_datasets"] == 1
    assert not table.loc["ladder x dice", "complete"]
    assert result.friedman.n == 3 and result.friedman.k == 3
    assert result.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / 18))
    lines = across.summary_lines(result)
    assert lines[0].startswith("Friedman over 3 datasets and 3 configurations")
    assert any("Kendall's tau between datasets' rankings: 1.00 to 1.00" in li for li in lines)
