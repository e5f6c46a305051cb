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


def _two_dataset_results(root):
    """One sweep whose trials ran on two datasets (as a multi-dataset sweep records them)."""
    from tests.test_leaderboard import make_results

    a, ha = make_results("multi", seed=0)
    b, hb = make_results("multi", seed=1, shift=-0.05)
    b["dataset"], hb["dataset"] = "digits", "digits"
    b["trial_id"] = b["trial_id"] + "_d"
    hb["trial_id"] = hb["trial_id"] + "_d"
    for name, frame in (("trials", pd.concat([a, b])), ("history", pd.concat([ha, hb]))):
        part = root / f"{name}.parquet" / "sweep=multi"
        part.mkdir(parents=True, exist_ok=True)
        frame.drop(columns=["sweep"]).to_parquet(part / "part-0.parquet")


def across_section(html: str) -> str:
    """The report's *Across datasets* section (its HTML, up to ``</section>``)."""
    section = html[html.index('<section id="across">'):]
    return section[:section.index("</section>")]


def assert_cd_diagram_renders(section: str, tmp_path) -> None:
    """Screenshot ``section`` alone in headless Chromium and check the CD diagram reached
    the screen: its axis, ticks and labels (dark pixels) and the red bars joining
    configurations not told apart. Skips the test when chromium is not installed."""
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
    assert red > 0.0001  # and the bars of configurations not told apart


def test_report_draws_the_cd_diagram_and_renders_in_chromium(tmp_path):
    import re

    from bench.report import build_report

    _two_dataset_results(tmp_path)
    html = build_report(tmp_path, sweep="multi", progress=None).read_text(encoding="utf-8")
    section = across_section(html)
    assert "could not be drawn" not in section
    assert "<svg" in section and "CD = " in section
    assert "Friedman over 2 datasets and 6 configurations" in section
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
