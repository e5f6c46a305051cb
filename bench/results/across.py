"""Across datasets: mean ranks, Friedman's test, Nemenyi's critical difference, Kendall's tau.

Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", is the
recipe: rank the configurations within each dataset (1 = best, ties share the average
rank), compare their mean ranks with Friedman's test, and, when it rejects, call two
configurations different when their mean ranks differ by at least the Nemenyi critical
difference ``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` (k configurations, N datasets).
Kendall's tau between two datasets' rankings says how much the answer depends on the
data. Pure functions over leaderboard DataFrames (``bench.results.leaderboard.aggregate``); no I/O.

A *dataset* here is one ranking of a leaderboard: a sweep x dataset (named by the dataset,
or ``sweep:dataset`` when two sweeps ran the same dataset). A *configuration* is a
model x loss. Only configurations present on every dataset enter Friedman and Nemenyi
(a complete block design); the table still lists the others with their own mean rank.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

ALPHA = 0.05
# Demšar (2006) Table 5a: q_0.05 of the Nemenyi test (studentized range / sqrt(2)), k = 2..10.
Q_05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102,
        10: 3.164}


def config_label(model: str, loss: str) -> str:
    """How the across table names a model x loss configuration."""
    return f"{model} x {loss}"


def rank_matrix(board: pd.DataFrame) -> pd.DataFrame:
    """Ranks of every configuration on every dataset of a leaderboard.

    Args:
        board: leaderboard rows with ``sweep`` (optional), ``dataset``, ``model``, ``loss``,
            ``mode`` and ``score`` (the value ranked by, failures counted).

    Returns:
        DataFrame (configurations x datasets) of ranks within each dataset: 1 = best, ties
        the average of their ranks, NaN where the configuration did not run or has no
        score.
    """
    frame = board.copy()
    sweep = frame["sweep"].astype(str) if "sweep" in frame else pd.Series("", index=frame.index)
    dataset = frame["dataset"].astype(str)
    clash = dataset.groupby(dataset).transform(lambda d: sweep[d.index].nunique() > 1)
    frame["_block"] = np.where(clash, sweep + ":" + dataset, dataset)
    frame["_config"] = [config_label(m, lo) for m, lo in zip(frame["model"].astype(str),
                                                              frame["loss"].astype(str),
                                                              strict=True)]
    columns = {}
    for block, rows in frame.groupby("_block", sort=True):
        score = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=float)
        sign = -1.0 if str(rows["mode"].iloc[0]) == "max" else 1.0
        ranks = np.full(len(rows), np.nan)
        ok = np.isfinite(score)
        ranks[ok] = sps.rankdata(sign * score[ok], method="average")
        columns[block] = pd.Series(ranks, index=rows["_config"].to_numpy())
    return pd.DataFrame(columns)


class FriedmanResult(NamedTuple):
    """Friedman's test over N datasets (blocks) and k configurations.

    ``statistic`` is Friedman's chi-square (Demšar eq. 1, no tie correction; scipy's
    ``friedmanchisquare`` corrects for ties), ``pvalue`` its chi-square(k-1) p-value;
    ``iman_davenport`` and ``pvalue_f`` the less conservative F form (eq. 2).
    """

    statistic: float
    pvalue: float
    iman_davenport: float
    pvalue_f: float
    n: int
    k: int


def friedman(ranks: np.ndarray) -> FriedmanResult:
    """Friedman's test on a complete rank table.

    Args:
        ranks: (N, k) ranks, one row per dataset (1 = best within the row).

    Returns:
        ``FriedmanResult``; NaN statistics when N < 2 or k < 2.

    H0: every configuration has the same expected rank.
    """
    ranks = np.asarray(ranks, dtype=float)
    n, k = ranks.shape if ranks.ndim == 2 else (0, 0)
    if n < 2 or k < 2:
        return FriedmanResult(math.nan, math.nan, math.nan, math.nan, n, k)
    mean = ranks.mean(axis=0)
    chi2 = 12.0 * n / (k * (k + 1)) * (np.sum(mean ** 2) - k * (k + 1) ** 2 / 4.0)
    p = float(sps.chi2.sf(chi2, k - 1))
    denom = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denom if denom > 0 else math.inf
    p_f = float(sps.f.sf(f, k - 1, (k - 1) * (n - 1))) if math.isfinite(f) else 0.0
    return FriedmanResult(float(chi2), p, float(f), p_f, n, k)


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """The Nemenyi test's critical value q_alpha for k configurations.

    Demšar's table for alpha = 0.05 and k <= 10; otherwise the studentized range
    quantile ``q(1 - alpha; k, inf) / sqrt(2)``.
    """
    if k < 2:
        raise ValueError(f"nemenyi_q: needs k >= 2 configurations, got {k}")
    if alpha == ALPHA and k in Q_05:
        return Q_05[k]
    return float(sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's CD = q_alpha sqrt(k (k + 1) / (6 N)), in ranks (k configurations, N datasets)."""
    if n < 1:
        return math.inf
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def datasets_to_separate(k: int, gap: float, alpha: float = ALPHA) -> int | None:
    """How many datasets the CD needs to fall below a mean-rank ``gap`` (same ranks assumed).

    The smallest N with ``critical_difference(k, N) < gap``; None for a zero gap.
    """
    if not gap > 0:
        return None
    return int(math.floor(nemenyi_q(k, alpha) ** 2 * k * (k + 1) / (6.0 * gap ** 2))) + 1


def cliques(mean_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Groups of configurations whose mean ranks lie within ``cd`` of each other.

    Args:
        mean_ranks: mean rank per configuration.
        cd: the critical difference.

    Returns:
        The maximal runs (in rank order, best first) of two or more configurations whose
        first and last differ by less than ``cd``: the bars of a CD diagram.
    """
    order = mean_ranks.sort_values(kind="stable")
    names, values = list(order.index), order.to_numpy(dtype=float)
    runs = []
    for i in range(len(values)):
        j = i
        while j + 1 < len(values) and values[j + 1] - values[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return [names[a:b + 1] for a, b in runs]


def kendall_matrix(ranks: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau-b between every pair of datasets' rankings (configurations both ran).

    Args:
        ranks: ``rank_matrix`` output (configurations x datasets).

    Returns:
        A symmetric datasets x datasets DataFrame; 1 on the diagonal; NaN where two
        datasets share fewer than 2 configurations.
    """
    blocks = list(ranks.columns)
    out = pd.DataFrame(np.eye(len(blocks)), index=blocks, columns=blocks)
    for a in range(len(blocks)):
        for b in range(a + 1, len(blocks)):
            both = ranks[[blocks[a], blocks[b]]].dropna()
            tau = math.nan
            if len(both) >= 2:
                tau = float(sps.kendalltau(both.iloc[:, 0], both.iloc[:, 1]).statistic)
            out.iloc[a, b] = out.iloc[b, a] = tau
    return out


class AcrossResult(NamedTuple):
    """The across-datasets comparison of a leaderboard.

    Attributes:
        table: one row per configuration: ``config``, ``model``, ``loss``, ``mean_rank``
            (over the datasets it ran on), ``n_datasets``, ``complete`` (ran on every
            dataset, so it is in the test), ``rank_<dataset>`` per dataset; best first.
        friedman: Friedman's test over the complete configurations.
        cd: Nemenyi's critical difference at ``ALPHA`` (NaN with fewer than 2).
        cliques: groups not significantly different (``cliques``).
        kendall: Kendall's tau between datasets (``kendall_matrix``).
        needed: datasets needed to separate the two best complete configurations at
            today's mean ranks (None when they are already apart or tie exactly).
    """

    table: pd.DataFrame
    friedman: FriedmanResult
    cd: float
    cliques: list[list[str]]
    kendall: pd.DataFrame
    needed: int | None


def across(board: pd.DataFrame) -> AcrossResult:
    """Compare the configurations of ``board`` across its datasets (module docstring)."""
    ranks = rank_matrix(board)
    complete = ranks.dropna()
    table = pd.DataFrame({
        "config": ranks.index,
        "mean_rank": ranks.mean(axis=1).to_numpy(),
        "n_datasets": ranks.notna().sum(axis=1).to_numpy(),
        "complete": ranks.index.isin(complete.index),
    })
    parts = table["config"].str.split(" x ", n=1, expand=True)
    table.insert(1, "model", parts[0])
    table.insert(2, "loss", parts[1])
    for block in ranks.columns:
        table[f"rank_{block}"] = ranks[block].to_numpy()
    table = table.sort_values(["complete", "mean_rank", "config"],
                              ascending=[False, True, True], kind="stable")
    table = table.reset_index(drop=True)
    result = friedman(complete.to_numpy().T)
    k, n = result.k, result.n
    cd = critical_difference(k, n) if k >= 2 and n >= 1 else math.nan
    mean = complete.mean(axis=1).sort_values(kind="stable")
    groups = cliques(mean, cd) if math.isfinite(cd) else []
    needed = None
    if len(mean) >= 2:
        gap = float(mean.iloc[1] - mean.iloc[0])
        if not (math.isfinite(cd) and gap >= cd):
            needed = datasets_to_separate(k, gap)
    return AcrossResult(table, result, cd, groups, kendall_matrix(ranks), needed)


def summary_lines(result: AcrossResult) -> list[str]:
    """What the across table means, in a few lines of text (for the CLI and the report)."""
    f = result.friedman
    if f.n < 2 or f.k < 2:
        return [f"across datasets: {f.n} dataset(s) with {f.k} configuration(s) in common; "
                f"Friedman's test needs at least 2 of each"]
    verdict = "differ" if f.pvalue < ALPHA else "cannot be told apart"
    iman = (f"Iman-Davenport F = {f.iman_davenport:.3f}, p = {f.pvalue_f:.3g}"
            if math.isfinite(f.iman_davenport) else
            "Iman-Davenport F infinite: every dataset ranks them alike")
    lines = [
        f"Friedman over {f.n} datasets and {f.k} configurations: chi2 = {f.statistic:.3f}, "
        f"p = {f.pvalue:.3g} ({iman}): the configurations' mean ranks {verdict} at alpha = "
        f"{ALPHA}.",
        f"Nemenyi critical difference at alpha = {ALPHA}: {result.cd:.3f} ranks; mean ranks "
        f"closer than that are not significantly different.",
    ]
    if result.needed is not None:
        lines.append(f"The two best configurations are {_gap(result):.3f} ranks apart: at "
                     f"these ranks it would take {result.needed} datasets to separate them.")
    taus = result.kendall.where(~np.eye(len(result.kendall), dtype=bool)).stack()
    if len(taus):
        lines.append(f"Kendall's tau between datasets' rankings: {taus.min():.2f} to "
                     f"{taus.max():.2f} (1: the same order on both; 0: unrelated).")
    return lines


def _gap(result: AcrossResult) -> float:
    complete = result.table[result.table["complete"]]
    return float(complete["mean_rank"].iloc[1] - complete["mean_rank"].iloc[0])
