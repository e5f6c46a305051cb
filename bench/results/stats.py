"""Small statistics for leaderboards: intervals, paired tests, Holm, bootstrap ranks.

Pure functions over NumPy arrays (no I/O, no pandas state), in the manner of
``scipy.stats``: each says what it assumes and returns a small named result. The
leaderboard (:mod:`bench.results.leaderboard`) builds its columns from these.

>>> paired_test([0.71, 0.72, 0.70], [0.61, 0.60, 0.62]).test
'paired t'
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

#: Metrics whose values lie in [0, 1] (matched as substrings of the column name).
UNIT_INTERVAL = ("iou", "dice", "accuracy", "nsd", "precision", "recall", "f1")
#: Metrics whose values are >= 0 but unbounded above (distances in pixels).
NON_NEGATIVE = ("hd95", "hausdorff", "mse", "mae")
#: Pairs from which a Wilcoxon signed-rank test is used for one comparison: with n = 6 its
#: exact two-sided p can reach 2 / 2**6 = 0.031 < 0.05; with n = 5 it cannot go below 0.0625.
WILCOXON_MIN_N = 6
#: Fewer values than this and the interval of the mean is called wide.
FEW = 5


def metric_range(metric: str) -> tuple[float, float]:
    """The range ``(low, high)`` a metric's values can take, from its name.

    IoU, Dice, accuracy, NSD (and precision/recall/F1): ``(0, 1)``. HD95, MSE, MAE:
    ``(0, inf)``. Losses and anything else: ``(-inf, inf)`` (a plugin's loss may be
    negative, so nothing is assumed).
    """
    name = metric.lower()
    if "loss" in name:
        return -math.inf, math.inf
    if any(k in name for k in NON_NEGATIVE):
        return 0.0, math.inf
    if any(k in name for k in UNIT_INTERVAL):
        return 0.0, 1.0
    return -math.inf, math.inf


#: Name parts of metrics where smaller is better: losses, errors, distances.
LOWER_IS_BETTER = ("loss", "error", *NON_NEGATIVE)


def default_mode(metric: str) -> str:
    """``"min"`` for losses, errors and distances (HD95, Hausdorff, MSE, MAE), else ``"max"``
    (IoU, Dice, accuracy): the direction a metric ranks in when nothing says otherwise."""
    name = metric.lower()
    return "min" if any(k in name for k in LOWER_IS_BETTER) else "max"


class MeanCI(NamedTuple):
    """Mean, sample std and confidence interval of the mean of ``n`` values."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    #: True when ``n < FEW``: the interval is wide (and with n < 2 absent).
    few: bool


def mean_ci(
    values: np.ndarray, *, level: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> MeanCI:
    """Student-t interval ``mean ± t(0.5 + level/2, n-1) * std / sqrt(n)``, clipped to ``bounds``.

    Args:
        values: shape (n,); NaN and infinite values are dropped first.
        level: coverage of the interval.
        bounds: the metric's range (:func:`metric_range`); the interval is clipped to it,
            because a mean of IoUs cannot be below 0 whatever the t-interval says.

    Assumes the values are independent draws (seeds) of a roughly normal quantity; with
    n < 5 that is hard to check and the interval is wide (``few`` is True). ``std`` is the
    sample std (ddof=1). n < 2 gives NaN std and interval; n = 0 a NaN mean.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan, True)
    mean = float(v.mean())
    if n < 2:
        return MeanCI(1, mean, math.nan, math.nan, math.nan, True)
    from scipy.stats import t

    std = float(v.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    return MeanCI(n, mean, std, low, high, n < FEW)


def wilcoxon_min_n(comparisons: int = 1, alpha: float = 0.05) -> int:
    """Fewest pairs with which a two-sided Wilcoxon signed-rank test can reject at the first
    step of Holm's procedure over ``comparisons`` tests: its smallest exact p, ``2 / 2**n``,
    must be below ``alpha / comparisons``. 6 for one comparison, 7 for two, 11 for 34.

    Below that n the test can never reject, whatever the data, so :func:`paired_test` uses
    the paired t-test there instead."""
    m = max(int(comparisons), 1)
    return int(math.floor(1 + math.log2(m / alpha))) + 1


class PairedResult(NamedTuple):
    """Result of :func:`paired_test`."""

    statistic: float
    pvalue: float
    #: ``"wilcoxon"``, ``"paired t"``, or ``"none"`` (fewer than 2 pairs, or no difference).
    test: str
    #: Number of pairs used (both values finite).
    n: int


def paired_test(a: np.ndarray, b: np.ndarray, *, min_wilcoxon: int = WILCOXON_MIN_N
                ) -> PairedResult:
    """Two-sided paired test of H0 "a and b do not differ", over the pairs ``(a[i], b[i])``.

    Args:
        a, b: shape (n,), aligned (entry i of both is seed i); a pair with a NaN on either
            side is dropped.
        min_wilcoxon: fewest pairs for the Wilcoxon test (6: where its p can fall below
            0.05; :func:`wilcoxon_min_n` gives it for several comparisons).

    With n >= ``min_wilcoxon`` pairs: Wilcoxon signed-rank (``scipy.stats.wilcoxon``, zero
    differences dropped, exact p where scipy can give it), which assumes only that the
    differences are symmetric about their median. With fewer (2 or more): paired t-test
    (``scipy.stats.ttest_rel``), which assumes normal differences; Wilcoxon's p could not
    fall below the threshold there. Degenerate cases: every difference zero gives p = 1; a constant
    non-zero difference (zero spread, t infinite) gives p = 0; fewer than 2 pairs give
    p = NaN and ``test == "none"``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_test: a and b must be aligned 1-D arrays, got "
                         f"{a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    if n < 2:
        return PairedResult(math.nan, math.nan, "none", n)
    if np.all(d == 0):
        return PairedResult(0.0, 1.0, "none", n)
    from scipy import stats

    if n >= min_wilcoxon:
        r = stats.wilcoxon(d)
        return PairedResult(float(r.statistic), float(r.pvalue), "wilcoxon", n)
    if np.all(d == d[0]):  # zero spread, non-zero mean: t is infinite
        return PairedResult(math.copysign(math.inf, d[0]), 0.0, "paired t", n)
    r = stats.ttest_rel(a[keep], b[keep])
    return PairedResult(float(r.statistic), float(r.pvalue), "paired t", n)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of m p-values (family-wise error control).

    Args:
        pvalues: shape (k,); NaN entries are not tests: they stay NaN and do not count in m.

    Returns:
        Shape (k,): sorted ascending, the i-th (0-based) of the m real p-values becomes
        ``max_{j <= i} min(1, (m - j) * p_(j))``, in the input order. No assumption on the
        dependence between the tests.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def bootstrap_ranks(
    scores: np.ndarray, mode: str, *, resamples: int = 2000, seed: int = 0
) -> np.ndarray:
    """Ranks of the rows of ``scores`` in ``resamples`` bootstrap resamples of its columns.

    Args:
        scores: shape (rows, seeds); NaN where a row has no value on that seed.
        mode: ``"max"`` (higher is better) or ``"min"``.
        resamples: number of resamples (>= 1000 recommended).
        seed: seeds NumPy's generator, so the result is deterministic.

    Returns:
        Integer array (resamples, rows): in each resample the seeds (columns) are drawn with
        replacement, each row scored by its mean over the drawn seeds it has, and ranked
        1 + (number of rows strictly better). Ties share the better rank; a row with no
        value in a resample ranks last (``rows``). Assumes the seeds are exchangeable
        draws, the same draw for every row (they share data split and initialisation).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"bootstrap_ranks: mode must be 'max' or 'min', got {mode!r}")
    s = np.asarray(scores, dtype=float)
    rows, n_seeds = s.shape
    if rows == 0 or n_seeds == 0:
        return np.ones((resamples, rows), dtype=int) * max(rows, 1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    picked = s[:, draws]  # (rows, resamples, seeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: handled below
        means = np.nanmean(picked, axis=-1).T  # (resamples, rows)
    signed = means if mode == "max" else -means
    signed = np.where(np.isfinite(signed), signed, -np.inf)
    better = (signed[:, None, :] > signed[:, :, None]).sum(axis=-1)  # (resamples, rows)
    ranks = 1 + better
    return np.where(np.isfinite(means), ranks, rows).astype(int)


def p_first(ranks: np.ndarray) -> np.ndarray:
    """Probability that each row ranks first, from bootstrap ``ranks`` (resamples, rows).

    A resample where k rows share rank 1 gives each of them 1/k, so the probabilities of
    the rows sum to 1.
    """
    r = np.asarray(ranks)
    first = r == 1
    share = first / np.maximum(first.sum(axis=1, keepdims=True), 1)
    return share.mean(axis=0)


def rank_interval(ranks: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``((1-level)/2, (1+level)/2)`` of each row's bootstrap rank.

    Args:
        ranks: shape (resamples, rows), from :func:`bootstrap_ranks`.

    Returns:
        ``(low, high)``, each shape (rows,), as whole ranks (lower percentile rounded down,
        upper rounded up), e.g. ``(1, 3)``: the row ranks between 1st and 3rd in 95% of
        resamples.
    """
    r = np.asarray(ranks, dtype=float)
    low = np.floor(np.percentile(r, 100 * (1 - level) / 2, axis=0)).astype(int)
    high = np.ceil(np.percentile(r, 100 * (1 + level) / 2, axis=0)).astype(int)
    return low, high
