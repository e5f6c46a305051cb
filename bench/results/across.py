"""Across datasets: mean ranks, Friedman's test, Nemenyi's critical difference, Kendall's tau.

Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", is the
recipe: rank the configurations within each dataset (1 = best, ties share the average
rank), compare their mean ranks with Friedman's test, and, when it rejects, call two
configurations different when their mean ranks differ by at least the Nemenyi critical
difference ``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` (k configurations, N datasets).
Kendall's tau between two datasets' rankings says how much the answer depends on the
data. Pure functions over leaderboard DataFrames (``bench.results.leaderboard.aggregate``); no I/O.

A *dataset* here is one ranking block: the rows of one dataset. A dataset ranked by several
sweeps would count twice as independent blocks, so :func:`one_sweep_per_dataset` keeps the
latest sweep of each dataset and :func:`across` refuses a board that still has two. A
*configuration* is a model x loss cell (under a protocol, its hyperparameters were tuned on
each dataset's own validation split). Friedman, Iman-Davenport and Nemenyi use only the
configurations with a score on every dataset (a complete block design), **re-ranked
within each dataset among themselves**: ranks taken among every configuration present and
then filtered would not be ranks 1..k, and Friedman's statistic could exceed its maximum
N(k-1). The table still lists the others, with their ranks among all present.

A loss value (``val_loss``, ``test_loss``) is each loss function's own number: ranking it
across loss functions says which loss is numerically smaller, nothing about the networks.
:func:`across` refuses such a board when it holds several losses.
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


def one_sweep_per_dataset(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep, for each dataset, only the sweep that ran it last.

    Args:
        trials: the trials table (``sweep``, ``dataset``, optionally ``ended_at``).

    Returns:
        ``(kept, notes)``: the trials of one sweep per dataset (the sweep whose last trial
        ended last; without times, the alphabetically last), and one note per dataset that
        had several, naming the sweeps left out. Two sweeps of one dataset are not two
        independent blocks of Friedman's test.
    """
    if trials.empty or "dataset" not in trials or "sweep" not in trials:
        return trials, []
    frame = trials.assign(_sweep=trials["sweep"].astype(str),
                          _dataset=trials["dataset"].astype(str))
    if "ended_at" in frame and frame["ended_at"].notna().any():
        frame["_end"] = pd.to_datetime(frame["ended_at"], utc=True, errors="coerce")
    else:
        frame["_end"] = pd.NaT
    keep = pd.Series(True, index=frame.index)
    notes = []
    for dataset, rows in frame.groupby("_dataset", sort=True):
        sweeps = sorted(rows["_sweep"].unique())
        if len(sweeps) < 2:
            continue
        ends = rows.groupby("_sweep")["_end"].max()
        # Latest end first; a sweep without times after those with; ties: name, last first.
        order = sorted(sweeps, key=lambda sw: (pd.notna(ends[sw]),
                                               ends[sw] if pd.notna(ends[sw]) else 0, sw))
        chosen = order[-1]
        keep[rows.index[rows["_sweep"] != chosen]] = False
        notes.append(f"{dataset}: ranked by sweep {chosen!r} (the latest); left out "
                     f"{', '.join(repr(sw) for sw in sweeps if sw != chosen)}")
    return trials[keep.to_numpy()], notes


def _score_matrix(board: pd.DataFrame) -> pd.DataFrame:
    """Configurations x datasets of scores signed so that smaller is better (NaN: none)."""
    dataset = board["dataset"].astype(str)
    if "sweep" in board:
        sweeps = board["sweep"].astype(str).groupby(dataset).nunique()
        twice = sorted(sweeps[sweeps > 1].index)
        if twice:
            raise ValueError(
                f"across: dataset(s) {', '.join(twice)} ranked by several sweeps would count "
                f"as independent blocks; keep one sweep per dataset (one_sweep_per_dataset)")
    config = pd.Series([config_label(m, lo) for m, lo in zip(
        board["model"].astype(str), board["loss"].astype(str), strict=True)],
        index=board.index)
    dup = config.groupby(dataset).apply(lambda c: c[c.duplicated()].tolist())
    dup = {d: c for d, c in dup.items() if c}
    if dup:
        d, c = next(iter(dup.items()))
        raise ValueError(f"across: dataset {d!r} has several rows for {c[0]!r}; the across "
                         f"comparison takes one row per model x loss and dataset")
    score = pd.to_numeric(board["score"], errors="coerce").astype(float)
    sign = np.where(board["mode"].astype(str) == "max", -1.0, 1.0)
    signed = pd.DataFrame({"config": config, "dataset": dataset, "v": sign * score})
    signed = signed[np.isfinite(signed["v"])]
    out = signed.pivot(index="config", columns="dataset", values="v")
    every = sorted(set(config))
    return out.reindex(index=every, columns=sorted(set(dataset)))


def rank_matrix(board: pd.DataFrame, *, complete_only: bool = False) -> pd.DataFrame:
    """Ranks of every configuration on every dataset of a leaderboard.

    Args:
        board: leaderboard rows with ``sweep`` (optional), ``dataset``, ``model``, ``loss``,
            ``mode`` and ``score`` (the value ranked by, failures counted); one sweep per
            dataset (:func:`one_sweep_per_dataset`), one row per model x loss and dataset.
        complete_only: keep only the configurations with a score on every dataset and rank
            them among themselves (the complete block design Friedman's test needs).

    Returns:
        DataFrame (configurations x datasets) of ranks within each dataset: 1 = best, ties
        the average of their ranks, NaN where the configuration did not run or has no
        score.

    Raises:
        ValueError: a dataset ranked by several sweeps, or two rows of one configuration.
    """
    scores = _score_matrix(board)
    if complete_only:
        scores = scores.dropna()
    # pandas' average rank over the non-NaN entries of each column (scipy's rankdata).
    return scores.rank(axis=0, method="average")


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
        ranks: (N, k) ranks, one row per dataset, each row a ranking of the same k
            configurations among themselves (1..k, ties averaged).

    Returns:
        ``FriedmanResult``; NaN statistics when N < 2 or k < 2. The statistic lies in
        [0, N(k-1)]; N(k-1) is reached only when every dataset ranks the k configurations
        alike without ties. There Iman-Davenport's F is infinite and its asymptotic p
        would be 0, so ``pvalue_f`` is the exact permutation p instead: under H0 each
        dataset's ranking is one of k! equally likely orders, and all N agree with
        probability ``k! / k!**N``.

    Raises:
        ValueError: a row that is not a ranking of k items (its ranks do not sum to
            k(k+1)/2): ranks taken among more configurations and then filtered.

    H0: every configuration has the same expected rank.
    """
    ranks = np.asarray(ranks, dtype=float)
    n, k = ranks.shape if ranks.ndim == 2 else (0, 0)
    if n < 2 or k < 2:
        return FriedmanResult(math.nan, math.nan, math.nan, math.nan, n, k)
    if not np.allclose(ranks.sum(axis=1), k * (k + 1) / 2):
        raise ValueError(f"friedman: each row must rank the {k} configurations 1..{k} among "
                         f"themselves (sum {k * (k + 1) / 2}); got row sums "
                         f"{sorted({round(float(v), 6) for v in ranks.sum(axis=1)})}")
    mean = ranks.mean(axis=0)
    chi2 = 12.0 * n / (k * (k + 1)) * (np.sum(mean ** 2) - k * (k + 1) ** 2 / 4.0)
    top = float(n * (k - 1))
    chi2 = min(max(float(chi2), 0.0), top)  # rounding only: the algebra bounds it
    p = float(sps.chi2.sf(chi2, k - 1))
    denom = top - chi2
    if denom > 1e-9 * top:
        f = (n - 1) * chi2 / denom
        p_f = float(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))
    else:  # identical tie-free rankings on every dataset: the exact p of that event
        f = math.inf
        p_f = math.exp(-(n - 1) * math.lgamma(k + 1))
    return FriedmanResult(chi2, p, float(f), p_f, n, k)


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
        table: one row per configuration: ``config``, ``model``, ``loss``, ``mean_rank``,
            ``n_datasets``, ``complete`` (ran on every dataset, so it is in the test),
            ``rank_<dataset>`` per dataset (its rank among every configuration present
            there); best first. ``mean_rank`` of a complete configuration is its mean rank
            among the complete ones (what Friedman and the CD use); of an incomplete one,
            the mean of its ``rank_<dataset>``.
        friedman: Friedman's test over the complete configurations, re-ranked.
        cd: Nemenyi's critical difference at ``ALPHA`` (NaN with fewer than 2).
        cliques: groups not significantly different (``cliques``); empty when Friedman's
            test does not reject (no post-hoc test then, as Demšar prescribes).
        kendall: Kendall's tau between datasets (``kendall_matrix``).
        needed: datasets needed to separate the two best complete configurations at
            today's mean ranks (None when they are already apart or tie exactly).
        left_out: the incomplete configurations, each ``"config (n of N datasets)"``.
    """

    table: pd.DataFrame
    friedman: FriedmanResult
    cd: float
    cliques: list[list[str]]
    kendall: pd.DataFrame
    needed: int | None
    left_out: list[str]


def refuse_loss_values(board: pd.DataFrame) -> None:
    """Raise ValueError when ``board`` ranks a loss value over several loss functions.

    Each loss function's value has its own scale (Dice's loss lies in [0, 1], cross-entropy
    in [0, inf)), so ranks across them order the losses, not the networks.
    """
    from bench.results.leaderboard import is_loss_value

    if board.empty or "metric" not in board:
        return
    metric = str(board["metric"].iloc[0])
    losses = sorted(board["loss"].astype(str).unique())
    if is_loss_value(metric) and len(losses) > 1:
        raise ValueError(
            f"--across: {metric} is each loss function's own value ({', '.join(losses)}); "
            f"ranks across loss functions compare the losses' scales, not the networks: "
            f"rank by a metric every loss shares, e.g. --metric test_mean_iou")


def across(board: pd.DataFrame) -> AcrossResult:
    """Compare the configurations of ``board`` across its datasets (module docstring).

    Raises:
        ValueError: a loss value over several losses (:func:`refuse_loss_values`), a
            dataset ranked by several sweeps, or two rows of one configuration on a dataset.
    """
    refuse_loss_values(board)
    ranks = rank_matrix(board)
    complete = rank_matrix(board, complete_only=True)
    n_blocks = ranks.shape[1]
    table = pd.DataFrame({
        "config": ranks.index,
        "mean_rank": ranks.mean(axis=1).to_numpy(),
        "n_datasets": ranks.notna().sum(axis=1).to_numpy(),
        "complete": ranks.index.isin(complete.index),
    })
    in_test = complete.mean(axis=1)
    table.loc[table["complete"], "mean_rank"] = in_test.reindex(
        table.loc[table["complete"], "config"]).to_numpy()
    parts = table["config"].str.split(" x ", n=1, expand=True)
    table.insert(1, "model", parts[0])
    table.insert(2, "loss", parts[1])
    for block in ranks.columns:
        table[f"rank_{block}"] = ranks[block].to_numpy()
    table = table.sort_values(["complete", "mean_rank", "config"],
                              ascending=[False, True, True], kind="stable")
    table = table.reset_index(drop=True)
    left_out = [f"{row.config} ({row.n_datasets} of {n_blocks} datasets)"
                for row in table[~table["complete"]].itertuples()]
    result = friedman(complete.to_numpy().T)
    k, n = result.k, result.n
    cd = critical_difference(k, n) if k >= 2 and n >= 1 else math.nan
    mean = in_test.sort_values(kind="stable")
    rejects = bool(result.pvalue < ALPHA)
    groups = cliques(mean, cd) if math.isfinite(cd) and rejects else []
    needed = None
    if len(mean) >= 2 and k >= 2:
        gap = float(mean.iloc[1] - mean.iloc[0])
        if not (math.isfinite(cd) and gap >= cd):
            needed = datasets_to_separate(k, gap)
    return AcrossResult(table, result, cd, groups, kendall_matrix(ranks), needed, left_out)


def summary_lines(result: AcrossResult) -> list[str]:
    """What the across table means, in a few lines of text (for the CLI and the report)."""
    f = result.friedman
    left = ([f"Left out of Friedman and Nemenyi (not scored on every dataset): "
             f"{'; '.join(result.left_out)}."] if result.left_out else [])
    if f.n < 2 or f.k < 2:
        return [f"across datasets: {f.n} dataset(s) with {f.k} configuration(s) in common; "
                f"Friedman's test needs at least 2 of each", *left]
    rejects = f.pvalue < ALPHA
    verdict = "differ" if rejects else "cannot be told apart"
    iman = (f"Iman-Davenport F = {f.iman_davenport:.3f}, p = {f.pvalue_f:.3g}"
            if math.isfinite(f.iman_davenport) else
            f"Iman-Davenport F infinite: every dataset ranks them alike, exact p = "
            f"{f.pvalue_f:.3g}")
    lines = [
        f"Friedman over {f.n} datasets and {f.k} configurations: chi2 = {f.statistic:.3f}, "
        f"p = {f.pvalue:.3g} ({iman}): the configurations' mean ranks {verdict} at alpha = "
        f"{ALPHA}.",
        *left,
    ]
    if rejects:
        lines.append(f"Nemenyi critical difference at alpha = {ALPHA}: {result.cd:.3f} ranks; "
                     f"mean ranks closer than that are not significantly different.")
    else:
        lines.append(f"Nemenyi critical difference at alpha = {ALPHA}: {result.cd:.3f} ranks; "
                     f"not applied (no groups drawn): Friedman's test does not reject.")
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
