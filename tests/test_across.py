"""Across datasets: ranks, Friedman, Nemenyi's CD and Kendall's tau against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.results import across


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
    # Three datasets; unet is first on each, testnet second, segnet third; ladder ran on
    # dataset a only (first there) and stays out of the test. Re-ranked without ladder,
    # the three agree on every dataset: ranks 1, 2, 3 three times, chi2 = N(k-1) = 6.
    rows = []
    for d in ("a", "b", "c"):
        rows += [(d, "unet", "dice", 0.9), (d, "testnet", "dice", 0.8),
                 (d, "segnet", "dice", 0.7)]
    rows.append(("a", "ladder", "dice", 0.95))
    result = across.across(_board(rows))
    table = result.table.set_index("config")
    assert list(result.table["config"]) == ["unet x dice", "testnet x dice",
                                            "segnet x dice", "ladder x dice"]
    # In the test: ranks among the complete three; shown per dataset: among all present.
    assert table.loc["unet x dice", "mean_rank"] == 1.0
    assert table.loc["segnet x dice", "mean_rank"] == 3.0
    assert table.loc["unet x dice", "rank_a"] == 2.0 and table.loc["unet x dice", "rank_b"] == 1
    assert table.loc["ladder x dice", "mean_rank"] == 1.0
    assert table.loc["ladder x dice", "n_datasets"] == 1
    assert not table.loc["ladder x dice", "complete"]
    assert result.left_out == ["ladder x dice (1 of 3 datasets)"]
    f = result.friedman
    assert (f.n, f.k) == (3, 3)
    assert f.statistic == pytest.approx(6.0)  # the maximum N(k-1)
    assert f.statistic == pytest.approx(
        sps.friedmanchisquare([1, 1, 1], [2, 2, 2], [3, 3, 3]).statistic)
    assert f.pvalue == pytest.approx(sps.chi2.sf(6.0, 2)) == pytest.approx(0.0498, abs=1e-4)
    # Perfect agreement: F is infinite and p is the exact 3! / 3!**3 = 1/36, not 0.
    assert f.iman_davenport == math.inf and f.pvalue_f == pytest.approx(1 / 36)
    assert result.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / 18))
    # Friedman rejects (p = 0.0498), so the CD groups are drawn: 1.0, 2.0, 3.0 with
    # CD = 1.913: {unet, testnet} and {testnet, segnet}.
    assert result.cliques == [["unet x dice", "testnet x dice"],
                              ["testnet x dice", "segnet x dice"]]
    # Top two 1.0 apart < CD: floor(2.343**2 * 12 / 6) + 1 = 11 datasets would separate them.
    assert result.needed == 11
    lines = across.summary_lines(result)
    assert lines[0].startswith("Friedman over 3 datasets and 3 configurations: chi2 = 6.000")
    assert "every dataset ranks them alike, exact p = 0.0278" in lines[0]
    assert lines[0].endswith("the configurations' mean ranks differ at alpha = 0.05.")
    assert lines[1] == ("Left out of Friedman and Nemenyi (not scored on every dataset): "
                        "ladder x dice (1 of 3 datasets).")
    assert any("Kendall's tau between datasets' rankings: 1.00 to 1.00" in li for li in lines)


def test_friedman_on_an_incomplete_design_equals_scipy_on_the_reranked_blocks():
    # Issue 25's design: 3 datasets, 9 configurations complete and a tenth missing on one.
    # Ranked among all present and then filtered, chi2 came out near 40, above
    # N(k-1) = 24; re-ranked, it is scipy's value on the 9 complete configurations.
    rng = np.random.default_rng(3)
    quality = np.linspace(0.9, 0.5, 10)
    rows = []
    for d in ("dsa", "dsb", "dsc"):
        for i, q in enumerate(quality):
            if d == "dsb" and i == 0:
                continue  # the best configuration did not run on dsb
            rows.append((d, f"m{i}", "dice", float(q + rng.normal(0, 0.08))))
    board = _board(rows)
    result = across.across(board)
    complete = [f"m{i}" for i in range(1, 10)]
    blocks = []
    for d in ("dsa", "dsb", "dsc"):
        scores = {m: v for dd, m, _, v in rows if dd == d and m in complete}
        blocks.append(sps.rankdata([-scores[m] for m in complete]))
    expected = sps.friedmanchisquare(*np.array(blocks).T)
    assert (result.friedman.n, result.friedman.k) == (3, 9)
    assert result.friedman.statistic == pytest.approx(expected.statistic)
    assert result.friedman.pvalue == pytest.approx(expected.pvalue)
    assert result.friedman.statistic <= 3 * 8
    assert result.left_out == ["m0 x dice (2 of 3 datasets)"]
    # Ranks among all present, then filtered, are not a ranking: refused, not computed.
    unfiltered = across.rank_matrix(board).dropna()
    with pytest.raises(ValueError, match="rank the 9 configurations 1..9 among themselves"):
        across.friedman(unfiltered.to_numpy().T)


def test_iman_davenport_exact_p_for_perfect_agreement_by_enumeration():
    # N = 2 datasets, k = 3: enumerate all 6 x 6 pairs of rankings; the statistic reaches
    # its maximum N(k-1) = 4 only on the 6 identical pairs: p = 6/36.
    import itertools

    perms = list(itertools.permutations([1.0, 2.0, 3.0]))
    stat = [across.friedman(np.array([a, b])).statistic for a in perms for b in perms]
    assert sum(s >= 4 - 1e-9 for s in stat) / len(stat) == pytest.approx(1 / 6)
    r = across.friedman(np.array([perms[0], perms[0]]))
    assert r.statistic == pytest.approx(4.0) and r.iman_davenport == math.inf
    assert r.pvalue_f == pytest.approx(1 / 6) and r.pvalue_f > 0
    r4 = across.friedman(np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)))
    assert r4.pvalue_f == pytest.approx(24 / 24 ** 3)


def test_no_cliques_when_friedman_does_not_reject():
    # Two datasets that rank three configurations in opposite orders: chi2 = 0, p = 1.
    rows = [("a", "x", "dice", 0.9), ("a", "y", "dice", 0.8), ("a", "z", "dice", 0.7),
            ("b", "x", "dice", 0.7), ("b", "y", "dice", 0.8), ("b", "z", "dice", 0.9)]
    result = across.across(_board(rows))
    assert result.friedman.statistic == pytest.approx(0.0)
    assert result.friedman.pvalue == pytest.approx(1.0)
    assert math.isfinite(result.cd) and result.cd > 0.5
    assert result.cliques == []
    lines = across.summary_lines(result)
    assert "cannot be told apart" in lines[0]
    assert "not applied (no groups drawn)" in lines[1]


def test_datasets_needed_to_separate_the_top_two():
    # k = 3 on 2 datasets: x ranks 1, 1; y ranks 2, 3; z 3, 2 -> mean ranks 1, 2.5, 2.5.
    # Top two 1.5 apart, CD = 2.343 sqrt(12/12) = 2.343 > 1.5: separating them takes
    # floor(2.343**2 * 12 / (6 * 1.5**2)) + 1 = floor(4.8797) + 1 = 5 datasets.
    rows = [("a", "x", "dice", 0.9), ("a", "y", "dice", 0.8), ("a", "z", "dice", 0.7),
            ("b", "x", "dice", 0.9), ("b", "y", "dice", 0.7), ("b", "z", "dice", 0.8)]
    result = across.across(_board(rows))
    assert result.needed == 5
    assert across.critical_difference(3, 5) < 1.5 <= across.critical_difference(3, 4)
    assert any("it would take 5 datasets to separate them" in li
               for li in across.summary_lines(result))


def test_kendall_is_tau_not_spearman():
    # (1 2 3 4) vs (2 1 4 3): 4 concordant and 2 discordant pairs: tau = 2/6; rho = 0.6.
    ranks = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0]},
                         index=list("wxyz"))
    assert across.kendall_matrix(ranks).loc["a", "b"] == pytest.approx(1 / 3)


def test_loss_values_across_losses_are_refused_naming_the_metric_and_losses(tmp_path,
                                                                            capsys):
    rows = [(d, m, lo, v) for d in ("a", "b") for m, lo, v in
            (("unet", "dice", 0.2), ("unet", "categorical_crossentropy", 0.9),
             ("testnet", "dice", 0.3))]
    board = _board(rows, mode="min").assign(metric="val_loss")
    with pytest.raises(ValueError, match=r"--across: val_loss is each loss function's own "
                       r"value \(categorical_crossentropy, dice\)"):
        across.across(board)
    # One loss: its values compare, and lower ranks first.
    one = board[board["loss"] == "dice"]
    assert across.across(one).table["config"].tolist() == ["unet x dice", "testnet x dice"]


def test_one_sweep_per_dataset_keeps_the_latest():
    t = pd.DataFrame({
        "sweep": ["old", "old", "new", "new", "other"],
        "dataset": ["shapes", "digits", "shapes", "shapes", "digits"],
        "ended_at": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-03-01", "2024-01-01",
                                    "2024-01-01"], utc=True),
    })
    kept, notes = across.one_sweep_per_dataset(t)
    # shapes: "new" ended last (March); digits: "old" (January 2nd after January 1st).
    assert sorted(zip(kept["sweep"], kept["dataset"], strict=True)) == [
        ("new", "shapes"), ("new", "shapes"), ("old", "digits")]
    assert notes == ["digits: ranked by sweep 'old' (the latest); left out 'other'",
                     "shapes: ranked by sweep 'new' (the latest); left out 'old'"]
    untimed = t.drop(columns=["ended_at"])
    kept, _ = across.one_sweep_per_dataset(untimed)
    assert set(kept[kept["dataset"] == "digits"]["sweep"]) == {"other"}  # name order
    # across() itself refuses two sweeps of one dataset rather than count it twice.
    board = pd.DataFrame([{"sweep": s, "dataset": "shapes", "model": m, "loss": "dice",
                           "mode": "max", "score": v}
                          for s in ("x", "y") for m, v in (("unet", 0.9), ("testnet", 0.8))])
    with pytest.raises(ValueError, match="shapes ranked by several sweeps"):
        across.across(board)


def test_cli_across_prints_the_table_and_the_tests(tmp_path, capsys):
    import json

    from tests.conftest import run_cli
    from tests.test_leaderboard import make_results

    for sweep, dataset, seed in (("on_shapes", "shapes", 0), ("on_digits", "digits", 1)):
        trials, history = make_results(sweep, seed=seed)
        trials["dataset"], history["dataset"] = dataset, dataset
        for name, frame in (("trials", trials), ("history", history)):
            part = tmp_path / f"{name}.parquet" / f"sweep={sweep}"
            part.mkdir(parents=True, exist_ok=True)
            frame.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across") == 0
    captured = capsys.readouterr()
    assert "Friedman over 2 datasets and 6 configurations" in captured.err
    assert "Nemenyi critical difference at alpha = 0.05" in captured.err
    header = captured.out.splitlines()[0].split()
    assert header[:6] == ["config", "model", "loss", "mean_rank", "n_datasets", "complete"]
    assert {"rank_shapes", "rank_digits"} <= set(header)
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across", "--format",
                   "json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["friedman"]["n"] == 2 and payload["friedman"]["k"] == 6
    assert payload["critical_difference"] == pytest.approx(
        across.critical_difference(6, 2))
    # unet_shallow x dice is best on both (its seed-2 failure scores 0 but 2 of 3 remain
    # at 0.75); its mean rank is the mean of its two ranks.
    rows = {row["config"]: row for row in payload["table"]}
    mean = np.mean([rows["unet_shallow x categorical_crossentropy"]["rank_shapes"],
                    rows["unet_shallow x categorical_crossentropy"]["rank_digits"]])
    assert rows["unet_shallow x categorical_crossentropy"]["mean_rank"] == pytest.approx(mean)
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across", "--compare",
                   "x") == 2


def test_cli_across_counts_a_dataset_once_and_refuses_loss_values(tmp_path, capsys):
    import json

    from tests.conftest import run_cli
    from tests.test_leaderboard import make_results

    # shapes by two sweeps (the rerun ended later), digits by one: two blocks, not three.
    for sweep, dataset, seed, hours in (("first", "shapes", 0, 0), ("rerun", "shapes", 2, 5),
                                        ("on_digits", "digits", 1, 0)):
        trials, history = make_results(sweep, seed=seed)
        trials["dataset"], history["dataset"] = dataset, dataset
        trials["ended_at"] = trials["ended_at"] + pd.Timedelta(hours=hours)
        for name, frame in (("trials", trials), ("history", history)):
            part = tmp_path / f"{name}.parquet" / f"sweep={sweep}"
            part.mkdir(parents=True, exist_ok=True)
            frame.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across") == 0
    err = capsys.readouterr().err
    assert "across: shapes: ranked by sweep 'rerun' (the latest); left out 'first'" in err
    assert "Friedman over 2 datasets and 6 configurations" in err
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across", "--format",
                   "json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["friedman"]["n"] == 2
    assert {k for k in payload["table"][0] if k.startswith("rank_")} == {"rank_shapes",
                                                                         "rank_digits"}
    # The rerun's ranks are the ones shown for shapes.
    from bench.results import leaderboard as lb

    rerun = lb.aggregate(make_results("rerun", seed=2)[0]).set_index(["model", "loss"])
    rows = {r["config"]: r for r in payload["table"]}
    for (model, loss), rank in rerun["rank"].items():
        assert rows[f"{model} x {loss}"]["rank_shapes"] == rank
    assert run_cli("leaderboard", "--results", str(tmp_path), "--across", "--metric",
                   "val_loss") == 2
    assert ("--across: val_loss is each loss function's own value (categorical_crossentropy, "
            "dice)") in capsys.readouterr().err


def _two_dataset_results(root, datasets=("digits",)):
    """One sweep whose trials ran on shapes and ``datasets`` (as a multi-dataset sweep
    records them). Each extra dataset repeats shapes' noise, shifted down: every dataset
    ranks the configurations alike, so with three datasets Friedman's test rejects."""
    from tests.test_leaderboard import make_results

    trials, history = [], []
    a, ha = make_results("multi", seed=0)
    trials.append(a)
    history.append(ha)
    for i, name in enumerate(datasets, start=1):
        b, hb = make_results("multi", seed=0, shift=-0.05 * i)
        b["dataset"], hb["dataset"] = name, name
        b["trial_id"] = b["trial_id"] + f"_{name}"
        hb["trial_id"] = hb["trial_id"] + f"_{name}"
        trials.append(b)
        history.append(hb)
    for name, frame in (("trials", pd.concat(trials)), ("history", pd.concat(history))):
        part = root / f"{name}.parquet" / "sweep=multi"
        part.mkdir(parents=True, exist_ok=True)
        frame.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")


def across_section(html: str) -> str:
    """The report's *Across datasets* section (its HTML, up to ``</section>``)."""
    section = html[html.index('<section id="across">'):]
    return section[:section.index("</section>")]


def assert_cd_diagram_renders(section: str, tmp_path) -> None:
    """Screenshot ``section`` alone in headless Chromium and check the CD diagram reached
    the screen: its axis, ticks and labels (dark pixels) and, where Friedman's test
    rejects, the red bars joining configurations not told apart (none where it does not).
    Skips the test when chromium is not installed."""
    import shutil
    import subprocess

    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed: cannot check the diagram renders")
    from PIL import Image

    # The section alone, so the screenshot shows the diagram.
    page = tmp_path / "cd.html"
    page.write_text(f"<!DOCTYPE html><html><body>{section}</body></html>", encoding="utf-8")
    shot = tmp_path / "cd.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1000,500", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    dark = (rgb.max(axis=-1) < 100).mean()
    red = ((rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).mean()
    assert dark > 0.002  # the axis, ticks and labels were drawn
    if "mean ranks differ at alpha" in section:
        assert red > 0.0001  # and the bars of configurations not told apart
    else:
        assert red == 0  # no post-hoc groups when Friedman does not reject


def test_report_draws_the_cd_diagram_and_renders_in_chromium(tmp_path):
    import re

    from bench.report import build_report

    # Three datasets that agree: Friedman rejects, so the diagram has its bars.
    _two_dataset_results(tmp_path, datasets=("digits", "folder"))
    html = build_report(tmp_path, sweep="multi", progress=None).read_text(encoding="utf-8")
    section = across_section(html)
    assert "could not be drawn" not in section
    assert "<svg" in section and "CD = " in section
    assert "Friedman over 3 datasets and 6 configurations" in section
    assert "mean ranks differ at alpha = 0.05" in section
    labels = re.findall(r"<title>([^<]+ \(\d\.\d\d\))</title>", section)
    assert len(labels) == 6
    assert_cd_diagram_renders(section, tmp_path)


def test_report_of_one_dataset_leaves_the_across_section_out(tmp_path):
    """Nothing to compare across one dataset: no empty box, no link to it (issue 30)."""
    from bench.report import build_report
    from tests.test_leaderboard import make_results

    make_results("one", root=tmp_path)
    html = build_report(tmp_path, sweep="one", progress=None).read_text(encoding="utf-8")
    assert '<section id="across">' not in html and 'href="#across"' not in html
    assert '<section id="leaderboard">' in html


def test_small_functions_at_their_boundaries():
    # CD with one dataset is finite (N = 1); none at N = 0.
    assert across.critical_difference(3, 1) == pytest.approx(2.343 * math.sqrt(2.0))
    assert across.critical_difference(3, 0) == math.inf
    with pytest.raises(ValueError, match="nemenyi_q: needs k >= 2 configurations, got 1"):
        across.nemenyi_q(1)
    # alpha is passed on: at 0.10 the studentized range quantile, not Demšar's 0.05 table.
    q10 = sps.studentized_range.ppf(0.90, 4, np.inf) / math.sqrt(2)
    assert across.critical_difference(4, 6, alpha=0.10) == pytest.approx(
        q10 * math.sqrt(20 / 36))
    assert across.datasets_to_separate(4, 0.5, alpha=0.10) == int(
        q10 ** 2 * 20 / (6 * 0.25)) + 1
    # Exactly the CD apart is not "closer than the CD": no group.
    assert across.cliques(pd.Series({"a": 1.0, "b": 2.0}), 1.0) == []
    # A run inside an earlier one (b-c inside a-b-c) is not listed again; c-d is.
    mean = pd.Series({"a": 1.0, "b": 1.4, "c": 1.8, "d": 2.6})
    assert across.cliques(mean, 1.0) == [["a", "b", "c"], ["c", "d"]]
    assert across.cliques(pd.Series({"a": 1.0, "b": 1.5, "c": 1.9}), 1.0) == [["a", "b", "c"]]
    # Kendall's tau needs two shared configurations: with exactly two it is defined.
    ranks = pd.DataFrame({"a": [1.0, 2.0, math.nan], "b": [2.0, 1.0, 3.0],
                          "c": [math.nan, math.nan, 1.0]}, index=["x", "y", "z"])
    tau = across.kendall_matrix(ranks)
    assert tau.loc["a", "b"] == -1.0 and tau.loc["b", "a"] == -1.0
    assert math.isnan(tau.loc["a", "c"]) and math.isnan(tau.loc["c", "b"])
    assert np.diag(tau.to_numpy()).tolist() == [1.0, 1.0, 1.0]


def test_one_sweep_per_dataset_with_three_sweeps_and_partial_times():
    t = pd.DataFrame({"sweep": ["a", "b", "c", "d"], "dataset": ["s", "s", "s", "u"],
                      "ended_at": [pd.Timestamp("2026-01-03", tz="UTC"),
                                   pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT,
                                   pd.NaT]})
    kept, notes = across.one_sweep_per_dataset(t)
    # Of three sweeps, the one that ended last; a sweep without a time never wins over one
    # with a time, whatever its name.
    assert kept["sweep"].tolist() == ["a", "d"]
    assert notes == ["s: ranked by sweep 'a' (the latest); left out 'b', 'c'"]
    assert across.one_sweep_per_dataset(t.iloc[:0])[1] == []
    no_dataset = t.drop(columns=["dataset"])  # not a table of datasets: returned as is
    assert across.one_sweep_per_dataset(no_dataset)[0].equals(no_dataset)
    assert across.one_sweep_per_dataset(t.drop(columns=["sweep"]))[0].equals(
        t.drop(columns=["sweep"]))


def test_loss_refusal_reads_the_boards_metric_and_passes_other_metrics():
    rows = [(d, "unet", lo, v) for d in ("a", "b") for lo, v in (("dice", 0.2),
                                                                 ("focal", 0.3))]
    board = _board(rows).assign(metric=["test_mean_iou", "test_mean_iou", "test_mean_iou",
                                        "test_mean_iou"])
    assert across.across(board).friedman.k == 2  # a shared metric over two losses: fine
    board["metric"] = "test_loss"
    with pytest.raises(ValueError, match=r"test_loss is each loss function's own value "
                                         r"\(dice, focal\)"):
        across.refuse_loss_values(board)
    across.refuse_loss_values(board.iloc[:0])  # nothing to refuse
    across.refuse_loss_values(board.iloc[:1])  # one row, one loss: nothing to refuse


def test_summary_lines_word_for_word():
    rows = []
    for d, order in (("a", (0.9, 0.8, 0.7)), ("b", (0.9, 0.7, 0.8)), ("c", (0.8, 0.9, 0.7))):
        rows += [(d, m, "dice", v) for m, v in zip(("x", "y", "z"), order, strict=True)]
    rows.append(("a", "w", "dice", 0.1))
    result = across.across(_board(rows))
    # Ranks: a 1 2 3, b 1 3 2, c 2 1 3 -> means 4/3, 2, 8/3; chi2 = 12*3/12 *
    # (16/9 + 4 + 64/9 - 12) = 3 * 8/9 = 2.667, p = exp(-2.667/2) = 0.264.
    assert result.friedman.statistic == pytest.approx(8 / 3)
    f = (3 - 1) * (8 / 3) / (3 * 2 - 8 / 3)
    p_f = sps.f.sf(f, 2, 4)
    assert across.summary_lines(result) == [
        f"Friedman over 3 datasets and 3 configurations: chi2 = 2.667, p = 0.264 "
        f"(Iman-Davenport F = {f:.3f}, p = {p_f:.3g}): the configurations' mean ranks "
        f"cannot be told apart at alpha = 0.05.",
        "Left out of Friedman and Nemenyi (not scored on every dataset): "
        "w x dice (1 of 3 datasets).",
        "Nemenyi critical difference at alpha = 0.05: 1.913 ranks; not applied (no groups "
        "drawn): Friedman's test does not reject.",
        "The two best configurations are 0.667 ranks apart: at these ranks it would take 25 "
        "datasets to separate them.",
        "Kendall's tau between datasets' rankings: -0.33 to 0.33 (1: the same order on both; "
        "0: unrelated).",
    ]
    one = across.across(_board([("a", "x", "dice", 0.5), ("a", "y", "dice", 0.4)]))
    assert across.summary_lines(one) == [
        "across datasets: 1 dataset(s) with 2 configuration(s) in common; Friedman's test "
        "needs at least 2 of each"]


def test_two_configurations_and_the_table_columns():
    # k = 2 on 3 datasets: x wins on a and b, y on c. Mean ranks 4/3 and 5/3; the CD is
    # 1.960 sqrt(2 * 3 / 18) = 1.132 and the gap 1/3 needs floor(1.96**2 * 6 / (6/9)) + 1
    # = 35 datasets. Two configurations left out, named in one line.
    rows = [("a", "x", "dice", 0.9), ("a", "y", "focal", 0.8), ("b", "x", "dice", 0.7),
            ("b", "y", "focal", 0.6), ("c", "x", "dice", 0.5), ("c", "y", "focal", 0.6),
            ("a", "w", "dice", 0.1), ("b", "v", "dice", 0.2)]
    result = across.across(_board(rows))
    assert result.cd == pytest.approx(1.960 * math.sqrt(6 / 18))
    assert result.needed == 35
    assert result.table["model"].tolist() == ["x", "y", "v", "w"]
    assert result.table["loss"].tolist() == ["dice", "focal", "dice", "dice"]
    lines = across.summary_lines(result)
    assert lines[0].startswith("Friedman over 3 datasets and 2 configurations: chi2 = 0.333")
    assert lines[1] == ("Left out of Friedman and Nemenyi (not scored on every dataset): "
                        "v x dice (1 of 3 datasets); w x dice (1 of 3 datasets).")
    # One configuration: nothing to separate (None, not another empty value).
    assert across.across(_board([("a", "x", "dice", 0.9), ("b", "x", "dice", 0.8)])
                         ).needed is None
    # One dataset: the CD of N = 1 (no test, but the scale of one dataset's ranks).
    single = across.across(_board([("a", "x", "dice", 0.9), ("a", "y", "dice", 0.8)]))
    assert single.cd == pytest.approx(across.critical_difference(2, 1))
    # Equal mean ranks keep the configurations in name order.
    tie = across.across(_board([("a", "q", "dice", 0.9), ("a", "p", "dice", 0.8),
                                ("b", "q", "dice", 0.8), ("b", "p", "dice", 0.9)]))
    assert tie.table["config"].tolist() == ["p x dice", "q x dice"]


def test_board_errors_and_configurations_without_any_score():
    dup = _board([("a", "unet", "dice", 0.9), ("a", "unet", "dice", 0.8),
                  ("b", "unet", "dice", 0.7)])
    with pytest.raises(ValueError, match="dataset 'a' has several rows for 'unet x dice'; the "
                                         "across comparison takes one row per model x loss"):
        across.across(dup)
    twice = pd.DataFrame([{"sweep": s, "dataset": d, "model": "m", "loss": "dice",
                           "mode": "max", "score": 0.5}
                          for s in ("x", "y") for d in ("a", "b")])
    with pytest.raises(ValueError, match=r"dataset\(s\) a, b ranked by several sweeps"):
        across.across(twice)
    # A configuration that never scored is listed (on 0 datasets), not silently dropped.
    board = _board([("a", "x", "dice", 0.9), ("a", "y", "dice", 0.8), ("a", "z", "dice",
                    math.nan), ("b", "x", "dice", 0.7), ("b", "y", "dice", 0.8),
                    ("b", "z", "dice", math.nan)])
    table = across.across(board).table.set_index("config")
    assert table.loc["z x dice", "n_datasets"] == 0
    assert math.isnan(table.loc["z x dice", "mean_rank"])
    assert list(across.rank_matrix(board).index) == ["x x dice", "y x dice", "z x dice"]


def test_friedman_degenerate_shapes_and_message():
    nan = math.nan
    np.testing.assert_equal(tuple(across.friedman(np.array([1.0, 2.0, 3.0]))),
                            (nan, nan, nan, nan, 0, 0))
    np.testing.assert_equal(tuple(across.friedman(np.array([[1.0, 2.0]]))),
                            (nan, nan, nan, nan, 1, 2))
    with pytest.raises(ValueError, match=r"rank the 3 configurations 1\.\.3 among themselves "
                                         r"\(sum 6\.0\); got row sums \[6\.0, 7\.0\]"):
        across.friedman(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 4.0]]))
