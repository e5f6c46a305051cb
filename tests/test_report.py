"""The HTML report: every section and picture present, numbers right, renders in Chromium."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.common.errors import UsageError
from bench.report import SECTIONS, build_report
from bench.report.sections.cost import pareto_front
from bench.results import leaderboard as lb
from tests.test_leaderboard import LOSSES, MODELS, make_results, run_cli

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    make_results("syn", root=root)
    make_results("older", root=root, shift=-0.1, seed=7)
    return root


@pytest.fixture(scope="module")
def report(results) -> str:
    path = build_report(results, sweep="syn", progress=None)
    assert path == results / "report-syn.html"
    return path.read_text(encoding="utf-8")


def _pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in IMG.findall(html)]


def html_tables(section: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each ``<table>`` of ``section`` as (header, rows of cells), tags and <wbr> dropped."""
    def text(cell: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", cell))

    out = []
    for body in re.findall(r"<table[^>]*>(.*?)</table>", section, re.S):
        header = [text(h) for h in re.findall(r"<th>(.*?)</th>", body)]
        rows = [[text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
                for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)[1:]]
        out.append((header, rows))
    return out


#: Sections with nothing to show for the synthetic sweep (one dataset, segmentation, one
#: learning rate for all trials): left out, heading and all (issue 30, item 7).
EMPTY_FOR_SYN = ("across", "rollout", "search")


def test_every_section_is_present_and_drawn(report):
    for entry in SECTIONS:
        heading = f'<section id="{entry.name}"><h2>{entry.meta["title"]}</h2>'
        assert (heading in report) == (entry.name not in EMPTY_FOR_SYN), entry.name
        assert (f'href="#{entry.name}"' in report) == (entry.name not in EMPTY_FOR_SYN)
    assert "could not be drawn" not in report
    # PNGs: per-class 1 + one picture per model; heat map, cost and curves are plotly
    # charts (heat map 1, cost 1, curves of the metric and val_loss 2).
    pngs = _pngs(report)
    assert len(pngs) == 1 + len(MODELS)
    for name, charts in (("heatmap", 1), ("cost", 1), ("curves", 2)):
        part = report.split(f'<section id="{name}">')[1].split("</section>")[0]
        assert part.count('class="plotly-graph-div"') == charts, name
    from PIL import Image

    for data in pngs:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and min(image.size) >= 20


def test_report_is_self_contained(report):
    from plotly.offline import get_plotlyjs

    assert report.startswith("<!DOCTYPE html>")
    # plotly.js' own code holds URLs (a link it draws only when asked, not here): the
    # markup outside the scripts refers to nothing outside the file.
    markup = re.sub(r"<script>.*?</script>", "", report, flags=re.S)
    assert not re.search(r'(src|href)="(https?:)?//', markup)
    assert "<link" not in report and "@import" not in report
    # Scripts are inline: plotly.js once (in the head), each chart's call, the table's.
    assert not re.search(r"<script[^>]*\bsrc=", report)
    assert report.count(get_plotlyjs()) == 1
    assert report.index(get_plotlyjs()) < report.index("</head>")


def test_leaderboard_section_holds_the_statistics(results, report):
    trials, _ = lb.load_results(results, sweep="syn")
    leaderboard_html = report.split('<section id="leaderboard">')[1].split("</section>")[0]
    _, rows = html_tables(leaderboard_html)[0]  # the main table
    assert len(rows) == len(MODELS) * len(LOSSES)
    done = trials[trials["status"] == "TERMINATED"]
    means = done.groupby(["model", "loss"])["val_mean_iou"].agg(["mean", "std", "count", "sum"])
    # Ranked by the score: a failed trial counts as IoU 0.
    tried = trials[trials["status"].isin(["TERMINATED", "ERROR", "NAN"])]
    means["score"] = means["sum"] / tried.groupby(["model", "loss"]).size()
    means = means.sort_values("score", ascending=False)
    for rank, ((model, loss), r) in enumerate(means.iterrows(), start=1):
        cells = rows[rank - 1]
        assert cells[:3] == [str(rank), model, loss]
        assert cells[3] == f"{r['mean']:.4f} ± {r['std']:.4f}"
        assert cells[5] == str(int(r["count"]))


def test_failures_and_reproduction_are_reported(results, report):
    trials, _ = lb.load_results(results, sweep="syn")
    failures = report.split('<section id="failures">')[1].split("</section>")[0]
    for _, bad in trials[trials["status"] != "TERMINATED"].iterrows():
        assert bad["trial_id"] in failures and bad["error"] in failures
        assert bad["status"] in failures
    assert "1 NAN" in failures and "1 ERROR" in failures
    reproduce = report.split('<section id="reproduce">')[1].split("</section>")[0]
    for run in trials.loc[trials["status"] == "TERMINATED", "mlflow_run_id"]:
        assert run in reproduce
    assert "name: syn" in reproduce and "zoobench 0.1.0" in reproduce


def test_missing_pictures_are_named(results, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(results, root)
    board = lb.aggregate(lb.load_results(root, sweep="syn")[0])
    best = board[board["model"] == MODELS[0]].iloc[0]
    (root / best["best_predictions_png"]).unlink()
    html = build_report(root, sweep="syn", progress=None).read_text()
    predictions = html.split('<section id="predictions">')[1].split("</section>")[0]
    assert "picture file missing" in predictions and best["best_trial_id"] in predictions
    assert len(IMG.findall(predictions)) == len(MODELS) - 1


def test_report_cli_defaults_and_errors(results, tmp_path):
    status, out = run_cli("report", ["--results", str(results), "--sweep", "older",
                                     "--out", str(tmp_path / "r.html")])
    assert status == 0 and out.strip() == str(tmp_path / "r.html")
    assert "zoobench report: older" in (tmp_path / "r.html").read_text()
    with pytest.raises(UsageError, match=r"no sweep 'nope'.*older, syn"):
        run_cli("report", ["--results", str(results), "--sweep", "nope"])
    with pytest.raises(UsageError, match="must end in .html"):
        run_cli("report", ["--results", str(results), "--out", str(tmp_path / "r.txt")])
    with pytest.raises(UsageError, match="no results folder"):
        run_cli("report", ["--results", str(tmp_path / "absent")])


def test_pareto_front():
    cost = np.array([1.0, 2.0, 3.0, 4.0, 4.0])
    value = np.array([0.5, 0.4, 0.7, 0.7, 0.9])
    assert list(pareto_front(cost, value, "max")) == [True, False, True, False, True]
    # For a loss, lower is better.
    assert list(pareto_front(cost, 1 - value, "min")) == [True, False, True, False, True]
    # The cheapest is also the best: nothing else is on the front.
    assert list(pareto_front(cost, value[::-1].copy(), "max")) == [True] + [False] * 4


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed: cannot check the page renders")
def test_report_renders_in_headless_chromium(results, report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1280,2000",
           (results / "report-syn.html").as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables and plots, not a blank page
    # The heat map's colours reached the screen (a blank or broken image would be grey).
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation > 80).mean() > 0.01


def test_small_real_sweep(small_sweep, tmp_path):
    """The report of a real sweep: the engine's session fixture (testnet x 2 losses, 1 seed)."""
    trials, history = lb.load_results(small_sweep.results, sweep=small_sweep.name)
    board = lb.aggregate(trials)
    done = trials[trials["status"] == "TERMINATED"]
    assert len(board) == trials.groupby(["model", "loss"]).ngroups == 2
    assert int(board["count"].sum()) == len(done)
    m = str(board["metric"].iloc[0])
    assert m == "test_mean_iou"  # the engine tests every trial: the board reports the test split
    for _, row in board[board["count"] > 0].iterrows():
        g = done[(done["model"] == row["model"]) & (done["loss"] == row["loss"])]
        assert row[f"{m}_mean"] == pytest.approx(float(g[m].mean()))
        assert row[f"{m}_best"] == pytest.approx(float(g[m].max()))
        assert row["best_mlflow_run_id"] in set(g["mlflow_run_id"])
        assert np.isnan(row[f"{m}_std"])  # one seed: no spread to report
    # What the engine wrote is what aggregate gives: the same rows in the same order, with
    # the same numbers (every numeric column the two share, NaN where the other is NaN).
    written = pd.read_parquet(small_sweep.results / "leaderboard.parquet")
    assert list(written["model"] + written["loss"]) == list(board["model"] + board["loss"])
    numeric = [c for c in board.columns if c in written.columns
               and pd.api.types.is_numeric_dtype(board[c])
               and pd.api.types.is_numeric_dtype(written[c])]
    assert {"rank", "count", f"{m}_mean", f"{m}_best", "score", "p_first",
            "latency_ms_mean", "train_seconds_mean"} <= set(numeric)
    for column in numeric:
        np.testing.assert_allclose(written[column].to_numpy(float),
                                   board[column].to_numpy(float), rtol=1e-9, equal_nan=True,
                                   err_msg=column)
    html = build_report(small_sweep.results, sweep=small_sweep.name, out=tmp_path / "r.html",
                        progress=None).read_text()
    assert "could not be drawn" not in html
    # The numbers the report shows are the leaderboard's: rank, labels, mean (one seed).
    _, shown = html_tables(html.split('<section id="leaderboard">')[1].split("</section>")[0])[0]
    assert len(shown) == len(written)
    for cells, row in zip(shown, written.sort_values("rank").itertuples(), strict=True):
        assert cells[:3] == [str(row.rank), row.model, row.loss]
        assert cells[3].split(" ")[0] == f"{getattr(row, f'{m}_mean'):.4f}"
    for entry in SECTIONS:  # the search section only when the spec drew hyperparameters
        if entry.name not in (*EMPTY_FOR_SYN, "search"):
            assert f'<section id="{entry.name}">' in html
    assert '<section id="across">' not in html and '<section id="rollout">' not in html
    for run in done["mlflow_run_id"]:
        assert run in html
    # per-class IoU, and testnet's predictions when it saved them (the heat map, the cost
    # plot and the curves are plotly charts).
    has_png = done["predictions_png"].notna().any()
    assert len(IMG.findall(html)) == 1 + int(has_png)


def test_stopped_trials_show_why_they_ended(results, tmp_path):
    root = tmp_path / "stopped"
    shutil.copytree(results, root)
    part = root / "trials.parquet" / "sweep=syn" / "part-0.parquet"
    trials = pd.read_parquet(part)
    target = trials["trial_id"] == "syn_segnet_shallow_dice_0"
    trials.loc[target, "status"] = "STOPPED"
    trials["end_reason"] = None
    trials.loc[target, "end_reason"] = "interrupted"
    trials.to_parquet(part)
    html = build_report(root, sweep="syn", progress=None).read_text()
    failures = html.split('<section id="failures">')[1].split("</section>")[0]
    assert "1 STOPPED" in failures and "ended: interrupted" in failures
    board = lb.aggregate(lb.load_results(root, sweep="syn")[0]).set_index(["model", "loss"])
    assert board.loc[("segnet_shallow", "dice"), "count"] == 2
    assert board.loc[("segnet_shallow", "dice"), "unfinished"] == 1


def test_patience_stops_are_counted_and_scheduler_stops_listed(results, tmp_path):
    root = tmp_path / "stopped"
    shutil.copytree(results, root)
    part = root / "trials.parquet" / "sweep=syn" / "part-0.parquet"
    trials = pd.read_parquet(part)
    patience = trials["trial_id"] == "syn_segnet_shallow_dice_0"
    asha = trials["trial_id"] == "syn_segnet_shallow_dice_1"
    trials.loc[patience | asha, "status"] = "STOPPED"
    trials["end_reason"] = "completed"
    trials.loc[patience, "end_reason"] = "patience"
    trials.loc[asha, "end_reason"] = "scheduler"
    trials.to_parquet(part)
    html = build_report(root, sweep="syn", progress=None).read_text()
    failures = html.split('<section id="failures">')[1].split("</section>")[0]
    assert "1 STOPPED" in failures and "ended: scheduler" in failures
    assert "syn_segnet_shallow_dice_0" not in failures  # a patience stop is a finished trial
    board = lb.aggregate(lb.load_results(root, sweep="syn")[0]).set_index(["model", "loss"])
    assert board.loc[("segnet_shallow", "dice"), "count"] == 2
    assert board.loc[("segnet_shallow", "dice"), "stopped_by_scheduler"] == 1


def test_leaderboard_section_shows_and_explains_the_tests(results, report):
    section = report.split('<section id="leaderboard">')[1].split("</section>")[0]
    (header, rows), (tests_header, tests_rows), *_ = html_tables(section)
    assert {"tied", "P(first)", "rank 95%"} <= set(header)
    assert {"p vs best", "best", "best run"} <= set(tests_header)
    assert "paired test" in section and "Holm" in section and "bootstrap" in section
    board = lb.aggregate(lb.load_results(results, sweep="syn")[0])
    for (_, b), row, more in zip(board.iterrows(), rows, tests_rows, strict=True):
        cells = dict(zip(header, row, strict=True)) | dict(zip(tests_header, more, strict=True))
        assert cells["P(first)"] == f"{b['p_first']:.2f}"
        assert cells["tied"] == {True: "yes", False: "no"}.get(b["tied_with_best"], "")
        assert cells["best run"] == b["best_mlflow_run_id"]


def test_leaderboard_section_keeps_every_column_of_the_summary(results, report):
    """The main table fits the page; the rest of the summary's columns, the costs and the
    other metrics are in the tables folded under it, row for row."""
    section = report.split('<section id="leaderboard">')[1].split("</section>")[0]
    assert section.count("<details>") == 3
    tables = html_tables(section)
    summary = lb.summary(lb.aggregate(lb.load_results(results, sweep="syn")[0]))
    shown: dict[str, list[str]] = {}
    for header, rows in tables:
        assert len(rows) == len(summary)
        for k, column in enumerate(header):
            shown.setdefault(column, [row[k] for row in rows])
    for column in summary.drop(columns=["sweep", "dataset"]).columns:
        assert shown[column] == list(summary[column]), column
    for metric in ("val_dice_coef", "val_pixel_accuracy", "val_loss"):
        assert metric in shown


def test_leaderboard_section_draws_a_configuration_without_finished_trial(results, tmp_path):
    # Issue 11.1: a row with no finished trial made n_params float; the section then failed.
    root = tmp_path / "none"
    shutil.copytree(results, root)
    part = root / "trials.parquet" / "sweep=syn" / "part-0.parquet"
    trials = pd.read_parquet(part)
    trials.loc[trials["model"] == "testnet", "status"] = "ERROR"
    trials.to_parquet(part)
    html = build_report(root, sweep="syn", progress=None).read_text()
    assert "could not be drawn" not in html
    section = html.split('<section id="leaderboard">')[1].split("</section>")[0]
    assert "45,678" in section and "testnet" in section


def test_predictions_section_without_picture_on_nullable_strings(results):
    # Issue 11.12: ``not rel`` on pd.NA raised TypeError on the "no picture" branch.
    from bench.report.context import ReportContext
    from bench.report.sections import predictions

    trials, history = lb.load_results(results, sweep="syn")
    trials["predictions_png"] = trials["predictions_png"].astype("string")
    trials.loc[trials["model"] == MODELS[0], "predictions_png"] = pd.NA
    ctx = ReportContext.build(results, "syn", trials, history)
    html = predictions.render(ctx)
    assert "the trial saved no picture" in html and MODELS[0] in html
    assert len(IMG.findall(html)) == len(MODELS) - 1


def test_heatmap_rows_best_first_for_both_modes():
    # Issue 11.14: with mode min the rows were ordered by their worst (largest) value.
    from bench.report.sections.heatmap import row_order

    grid = pd.DataFrame({"ce": [0.2, 0.5, np.nan], "dice": [0.9, 0.6, np.nan]},
                        index=["a", "b", "c"])
    # Lower is better: a's best loss 0.2 beats b's 0.5, although a's worst (0.9) is worse.
    assert list(row_order(grid, "min")) == ["a", "b", "c"]
    # Higher is better: a's best 0.9 beats b's 0.6.
    assert list(row_order(grid, "max")) == ["a", "b", "c"]
    flipped = pd.DataFrame({"ce": [0.3, 0.1], "dice": [0.35, 0.8]}, index=["a", "b"])
    assert list(row_order(flipped, "min")) == ["b", "a"]
    assert list(row_order(flipped, "max")) == ["b", "a"]
    assert list(row_order(1 - flipped, "max")) == ["b", "a"]


def test_report_ranks_on_the_test_split_when_recorded(results):
    from bench.report.context import ReportContext
    from bench.report.sections import per_class

    trials, history = lb.load_results(results, sweep="syn")
    ok = trials["status"] == "TERMINATED"
    trials["test_mean_iou"] = np.where(ok, 1 - trials["val_mean_iou"], np.nan)
    for k in range(3):
        trials[f"test_iou_class_{k}"] = np.where(ok, 0.1 * (k + 1), np.nan)
    ctx = ReportContext.build(results, "syn", trials, history)
    assert ctx.metric == "test_mean_iou" and ctx.board["model"].iloc[0] == "testnet"
    html = per_class.render(ctx)
    assert "on the test split" in html
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells[1:4] == ["0.100", "0.200", "0.300"]
    from bench.report.sections import curves

    html = curves.render(ctx)  # per epoch there is only validation: its twin is drawn
    assert "validation val_mean_iou per epoch" in html
    assert html.count('class="plotly-graph-div"') == 2


def test_cost_labels_only_the_front_and_the_top_rows():
    from bench.report.sections.cost import labelled

    on_front = np.array([True, False, False, False, False, False, False])
    rank = np.array([7, 1, 2, 5, 6, np.nan, 3])
    assert list(labelled(on_front, rank, top=5)) == [True, True, True, True, False, False, True]


def test_per_class_chart_fits_the_page_and_many_classes_become_a_heat_map():
    from bench.report.sections import per_class

    names = [f"#{i} m / l" for i in range(5)]
    many = per_class._heat_map(np.linspace(0, 1, 55).reshape(5, 11),
                               [f"class {k}" for k in range(11)], names)
    few = per_class._bars(np.full((5, 3), 0.5), [f"class {k}" for k in range(3)], names)
    for fig in (many, few):
        assert fig.get_figwidth() <= per_class.PAGE_INCHES
    assert many.axes[0].images  # a heat map, one text per cell
    assert len(many.axes[0].texts) == 55
    assert per_class.BARS_UP_TO < 11


# --------------------------------------------------------------- next-frame baselines
NEXT_FRAME_DATA = {"height": 16, "width": 16, "digit_size": 8, "frames": 4, "train": 4,
                   "val": 3, "test": 3, "target": "next_frame"}


def next_frame_results(root: Path, sweep: str = "nf") -> Path:
    """A next-frame results folder as a sweep leaves it, without training: two models'
    trials (seeds 0 and 1) with made-up PSNR and SSIM, and ``leaderboard.parquet`` with
    the persistence and mean-frame rows that ``bench.results.baselines.with_baselines`` scores on
    the real frames of those seeds, as the sweep does."""
    from bench.results import records
    from bench.results.baselines import with_baselines

    rows, history = [], []
    for k, (model, psnr) in enumerate((("lstm_next_frame", 15.0), ("testnet", 13.5))):
        for seed in (0, 1):
            tid = f"{sweep}_{model}_{seed}"
            value = psnr + 0.3 * seed
            rows.append({
                "trial_id": tid, "model": model, "loss": "binary_crossentropy",
                "dataset": "moving_digits", "seed": seed, "status": "TERMINATED",
                "end_reason": "completed", "error": None, "epochs": 1, "epochs_done": 1,
                "metric": "val_psnr", "mode": "max", "val_psnr": value - 0.2,
                "val_ssim": 0.40 + 0.01 * k, "test_psnr": value, "test_ssim": 0.42 + 0.01 * k,
                **{f"test_psnr_step_{s}": value - s for s in (1, 2, 3)},
                "val_loss": 0.3, "n_params": 1000 * (k + 1), "train_seconds": 2.0 + k,
                "samples_per_second": 50.0, "mlflow_run_id": f"run{tid}",
                "spec": f"name: {sweep}\n", "versions": json.dumps({"zoobench": "0.1.0"}),
                "started_at": pd.Timestamp("2026-11-24T10:00", tz="UTC"),
                "ended_at": pd.Timestamp("2026-11-24T10:05", tz="UTC"), "predictions_png": None,
            })
            history.append({"trial_id": tid, "model": model, "dataset": "moving_digits",
                            "seed": seed, "epoch": 1, "loss": 0.4, "val_loss": 0.3,
                            "val_psnr": value - 0.2})
    trials = pd.DataFrame(rows).assign(sweep=sweep)
    board = with_baselines(lb.aggregate(trials), trials,
                           {"moving_digits": ("moving_digits", NEXT_FRAME_DATA)})
    for name, frame in (("trials", trials), ("history", pd.DataFrame(history).assign(sweep=sweep)),
                        ("leaderboard", board)):
        records.write_table(root, name, sweep, frame)
    return root


def test_report_leaderboard_shows_the_next_frame_baselines(tmp_path):
    """Issue 17: the report's leaderboard has the persistence and mean-frame rows that
    `zoobench leaderboard` prints, with the same PSNR, unranked and marked as baselines."""
    root = next_frame_results(tmp_path / "results")
    status, csv = run_cli("leaderboard", ["--results", str(root), "--format", "csv"])
    assert status == 0
    printed = pd.read_csv(io.StringIO(csv)).set_index("model")
    status, text = run_cli("leaderboard", ["--results", str(root)])
    assert status == 0
    report = build_report(root, sweep="nf", progress=None).read_text(encoding="utf-8")
    assert "could not be drawn" not in report
    section = report.split('<section id="leaderboard">')[1].split("</section>")[0]
    header, rows = html_tables(section)[0]
    cells = {row[header.index("model")]: dict(zip(header, row, strict=True)) for row in rows}
    assert list(cells) == ["lstm_next_frame", "testnet", "persistence", "mean_frame"]
    assert header[header.index("model") + 2] == "test_psnr"  # the board ranks the test split
    for model in ("persistence", "mean_frame"):
        row = cells[model]
        psnr = printed.loc[model, "test_psnr_mean"]
        assert row["test_psnr"] == f"{psnr:.4f}"  # one value per seed, no spread
        # The same cell as the CLI's table prints on the row.
        line = next(line for line in text.splitlines()[1:] if f" {model} " in line)
        assert f" {row['test_psnr']} " in f" {line} "
        assert row["rank"] == "baseline" and row["loss"] == "-" and row["n"] == "2"
        gain = printed.loc[model, "gain_vs_persistence"]
        assert row["gain vs persistence dB"] == f"{gain:+.2f}"
    assert cells["persistence"]["gain vs persistence dB"] == "+0.00"
    assert cells["lstm_next_frame"]["rank"] == "1" and cells["testnet"]["rank"] == "2"
    trained_gain = printed.loc["testnet", "gain_vs_persistence"]
    assert cells["testnet"]["gain vs persistence dB"] == f"{trained_gain:+.2f}"
    assert section.count('<tr class="baseline">') == 2 * 4  # main + 3 folded tables
    assert "persistence</i> repeats the last input frame" in section
