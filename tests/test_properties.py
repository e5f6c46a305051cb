"""Properties every input must satisfy (hypothesis): ranks, Friedman, intervals, P(first),
per-case Dice and IoU. Each checks against an independent computation or a bound that
holds by construction, on inputs hypothesis draws (small, so the default suite stays fast).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from bench.results import across, stats

# Derandomized: the same examples on every run (CI and mutation runs must not flicker); no
# example database written into the repository.
FAST = settings(max_examples=60, deadline=None, database=None, derandomize=True)


def _tie_correction(ranks: np.ndarray) -> float:
    """scipy's divisor: 1 - sum(t^3 - t) / (N k (k^2 - 1)) over the tie groups of each row."""
    n, k = ranks.shape
    ties = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts ** 3 - counts))
    return 1.0 - ties / (n * k * (k * k - 1))


@st.composite
def score_tables(draw, min_n=2, max_n=6, min_k=2, max_k=6, ties=True):
    """An (N, k) table of scores; with ``ties``, drawn from a few levels so ties occur."""
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(min_k, max_k))
    values = (st.integers(0, 3).map(float) if ties else
              st.floats(0, 1, allow_nan=False, allow_subnormal=False))
    rows = draw(st.lists(st.lists(values, min_size=k, max_size=k, unique=not ties),
                         min_size=n, max_size=n))
    return np.array(rows, dtype=float)


@FAST
@given(score_tables())
def test_ranks_within_a_block_sum_to_n_n_plus_1_over_2(scores):
    n, k = scores.shape
    rows = [{"dataset": f"d{i}", "model": f"m{j}", "loss": "dice", "mode": "max",
             "score": scores[i, j]} for i in range(n) for j in range(k)]
    ranks = across.rank_matrix(pd.DataFrame(rows))
    assert ranks.shape == (k, n)
    np.testing.assert_allclose(ranks.sum(axis=0), k * (k + 1) / 2)
    # Best score ranks lowest on every dataset.
    for i in range(n):
        best = scores[i] == scores[i].max()
        assert ranks[f"d{i}"].to_numpy()[best].max() == ranks[f"d{i}"].min()


@FAST
@given(score_tables(min_k=3))  # scipy's friedmanchisquare needs k >= 3
def test_friedman_within_its_range_and_equal_to_scipy_times_its_tie_correction(scores):
    ranks = np.apply_along_axis(sps.rankdata, 1, -scores)
    n, k = ranks.shape
    r = across.friedman(ranks)
    assert 0 <= r.statistic <= n * (k - 1) + 1e-9
    assert 0 < r.pvalue <= 1 and 0 < r.pvalue_f <= 1
    c = _tie_correction(ranks)
    if c > 0:  # c = 0: every row one tie, scipy divides by zero
        with np.errstate(all="ignore"):
            expected = sps.friedmanchisquare(*ranks.T).statistic * c
        assert r.statistic == pytest.approx(expected, abs=1e-9)


@FAST
@given(st.integers(2, 6), st.integers(3, 5), st.data())
def test_friedman_equals_scipy_on_complete_tie_free_blocks(n, k, data):
    perms = [data.draw(st.permutations(list(range(1, k + 1)))) for _ in range(n)]
    ranks = np.array(perms, dtype=float)
    r = across.friedman(ranks)
    expected = sps.friedmanchisquare(*ranks.T)
    assert r.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert r.pvalue == pytest.approx(expected.pvalue, abs=1e-12)
    if r.statistic < n * (k - 1) - 1e-9:
        f = (n - 1) * r.statistic / (n * (k - 1) - r.statistic)
        assert r.iman_davenport == pytest.approx(f)
    else:  # identical rankings: F infinite, p the exact k!^(1-N)
        assert r.pvalue_f == pytest.approx(math.factorial(k) ** (1 - n))


@FAST
@given(score_tables(min_n=2, max_n=5, min_k=3, max_k=6, ties=False), st.data())
def test_across_on_incomplete_designs_reranks_the_complete_configurations(scores, data):
    n, k = scores.shape
    # Knock out a few (dataset, configuration) cells; the rest must be re-ranked.
    holes = data.draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, k - 1)),
                              max_size=k))
    rows = [{"dataset": f"d{i}", "model": f"m{j}", "loss": "dice", "mode": "max",
             "score": scores[i, j]} for i in range(n) for j in range(k) if (i, j) not in holes]
    result = across.across(pd.DataFrame(rows))
    ran = {j for j in range(k) for i in range(n) if (i, j) not in holes}
    blocks = [i for i in range(n) if any((i, j) not in holes for j in range(k))]
    full = [j for j in sorted(ran) if all((i, j) not in holes for i in blocks)]
    f = result.friedman
    assert f.k == len(full) and f.n == len(blocks)
    assert len(result.left_out) == len(ran) - len(full)
    n = len(blocks)
    scores = scores[blocks]
    if n < 2 or len(full) < 2:  # nothing to test: Friedman says so with NaN
        assert math.isnan(f.statistic)
    if len(full) >= 2 and n >= 2:
        ranks = np.array([sps.rankdata(-scores[i, full]) for i in range(n)])
        assert f.statistic <= n * (len(full) - 1) + 1e-9
        if len(full) >= 3:  # scipy's friedmanchisquare needs k >= 3
            assert f.statistic == pytest.approx(
                sps.friedmanchisquare(*ranks.T).statistic, abs=1e-9)
        table = result.table.set_index("config")
        for col, j in enumerate(full):
            assert table.loc[f"m{j} x dice", "mean_rank"] == pytest.approx(ranks[:, col].mean())


@FAST
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=0, max_size=12),
       st.sampled_from(["test_mean_iou", "val_dice_coef", "test_case_hd95_mean", "val_loss"]))
def test_mean_ci_lies_inside_the_metric_range_and_around_the_mean(values, metric):
    low_b, high_b = stats.metric_range(metric)
    v = np.array(values) * (40 if "hd95" in metric else 1)
    r = stats.mean_ci(v, bounds=(low_b, high_b))
    assert r.n == len(values)
    if r.n >= 2:
        assert low_b <= r.low <= r.mean + 1e-12 and r.mean - 1e-12 <= r.high <= high_b
        lo, hi = sps.t.interval(0.95, r.n - 1, loc=v.mean(), scale=sps.sem(v)) \
            if v.std() > 0 else (v.mean(), v.mean())
        assert r.low == pytest.approx(max(lo, low_b), abs=1e-12)
        assert r.high == pytest.approx(min(hi, high_b), abs=1e-12)


@FAST
@given(st.integers(1, 5), st.integers(1, 6), st.data(), st.sampled_from(["max", "min"]))
def test_p_first_sums_to_one_and_ranks_within_1_to_rows(rows, seeds, data, mode):
    cells = st.one_of(st.just(math.nan), st.integers(0, 4).map(lambda x: x / 4))
    scores = np.array(data.draw(st.lists(st.lists(cells, min_size=seeds, max_size=seeds),
                                         min_size=rows, max_size=rows)))
    # A leaderboard's seeds are those some row ran: no column without a value.
    scores[0, ~np.isfinite(scores).any(axis=0)] = 0.5
    ranks = stats.bootstrap_ranks(scores, mode, resamples=200, seed=1)
    assert ranks.shape == (200, rows)
    assert ranks.min() >= 1 and ranks.max() <= rows
    p = stats.p_first(ranks)
    assert p.sum() == pytest.approx(1.0)
    assert ((p >= 0) & (p <= 1)).all()
    low, high = stats.rank_interval(ranks)
    assert (low >= 1).all() and (low <= high).all() and (high <= rows).all()


@FAST
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8))
def test_holm_is_monotone_bounded_and_never_below_the_raw_p(pvalues):
    p = np.array(pvalues)
    adj = stats.holm(p)
    assert (adj >= p - 1e-15).all() and (adj <= 1).all()
    order = np.argsort(p, kind="stable")
    assert (np.diff(adj[order]) >= -1e-15).all()
    # Bonferroni bounds Holm from above: m * p.
    assert (adj <= np.minimum(1, len(p) * p) + 1e-15).all()


@settings(max_examples=20, deadline=None, database=None, derandomize=True)  # ~0.2 s an example
@given(st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_per_case_dice_and_iou_are_symmetric_in_unit_range_and_related(n, classes, seed):
    from zoo.case_metrics import case_scores

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, size=(n, 6, 6))
    pred = rng.integers(0, classes, size=(n, 6, 6))
    ab, ba = case_scores(truth, pred, classes), case_scores(pred, truth, classes)
    for name in ("dice", "iou"):
        np.testing.assert_allclose(ab[name], ba[name], equal_nan=True)
        finite = ab[name][np.isfinite(ab[name])]
        assert ((finite >= 0) & (finite <= 1)).all()
    # Dice = 2 IoU / (1 + IoU) for every case x class, and by counting pixels.
    np.testing.assert_allclose(ab["dice"], 2 * ab["iou"] / (1 + ab["iou"]), equal_nan=True)
    for row in range(len(ab["case"])):
        c, k = ab["case"][row], ab["class_index"][row]
        t, q = truth[c] == k, pred[c] == k
        if t.any() or q.any():
            assert ab["iou"][row] == pytest.approx((t & q).sum() / (t | q).sum())
    same = case_scores(truth, truth, classes)
    present = np.isfinite(same["dice"])
    assert (same["dice"][present] == 1).all() and (same["iou"][present] == 1).all()
