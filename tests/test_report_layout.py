"""The report reads at 1,400 px: the reference's, a 2-configuration one, and one of 50 or
more configurations made from the reference's trials (issue 14).

Each report is opened in headless Chromium in a 1,400 px wide window with a script that,
once the page has loaded, opens every ``<details>`` and measures the page: the widths of
the tables, charts and scrolling boxes, and the font size of every piece of visible text,
as drawn (SVG text times its drawing's scale; the text inside PNG charts from the smallest
font each records, ``data-min-font-px``, times the picture's scale). The script writes its
measurements into the page as JSON; ``--dump-dom`` hands the page back.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import build_report
from bench.report.html import MIN_FONT_PX
from tests.conftest import headless_chromium

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
WINDOW = 1400
ONE_LINE_ROW_PX = 32  # a 13 px table line (19.5 px) and its padding: two lines are ~48
SMALL = [("unet(base_filters=16)", "categorical_crossentropy"), ("testnet", "dice")]

MEASURE = """
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const root = document.documentElement;
  const main = document.querySelector('main');
  const ms = getComputedStyle(main);
  const left = main.getBoundingClientRect().left + parseFloat(ms.paddingLeft);
  const content = main.clientWidth - parseFloat(ms.paddingLeft) - parseFloat(ms.paddingRight);
  const where = el => { const s = el.closest('section'); return s ? s.id : ''; };
  const out = {clientWidth: root.clientWidth, scrollWidth: root.scrollWidth,
               contentWidth: content, boxes: [], scrolling: [], fonts: [], images: []};
  document.querySelectorAll('table, svg, img, pre, figure').forEach(el => {
    if (el.closest('#js-plotly-tester')) return;  // plotly's hidden text ruler, off-page
    const r = el.getBoundingClientRect();
    out.boxes.push({tag: el.tagName.toLowerCase(), section: where(el),
                    left: r.left - left, right: r.right - left, width: r.width});
  });
  const board = document.querySelector('#leaderboard table');
  out.boardRows = board ? [...board.rows].slice(1).map(r => r.getBoundingClientRect().height)
                        : [];
  document.querySelectorAll('.scroll').forEach(el => {
    out.scrolling.push({section: where(el), scrollWidth: el.scrollWidth,
                        clientWidth: el.clientWidth});
  });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest('script, style, title')) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || !el.getClientRects().length) continue;
    let px = parseFloat(st.fontSize);
    let box = null;
    if (el instanceof SVGElement) {
      const m = el.getScreenCTM();
      px *= Math.sqrt(Math.abs(m.a * m.d - m.b * m.c));
      box = el.getBoundingClientRect().height;
    }
    out.fonts.push({section: where(el), tag: el.tagName.toLowerCase(), px: px, box: box,
                    text: node.textContent.trim().slice(0, 60)});
  }
  document.querySelectorAll('img').forEach(img => {
    const shown = img.clientWidth;  // without its border
    out.images.push({section: where(img), natural: img.naturalWidth, shown: shown,
                     minFontPx: parseFloat(img.dataset.minFontPx) * shown / img.naturalWidth,
                     alt: img.alt});
  });
  const pre = document.createElement('pre');
  pre.id = 'layout-json';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


def measure(report: Path, workdir: Path) -> dict:
    """The page's measurements at a 1,400 px window (the module's docstring)."""
    page = workdir / f"{report.stem}-measured.html"
    text = report.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", f"<script>{MEASURE}</script></body>"),
                    encoding="utf-8")
    dom = headless_chromium(page.as_uri(), workdir / "profile", width=WINDOW)
    found = re.search(r'<pre id="layout-json">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


#: Seeds from this one on are the small report's second dataset.
LATE_SEEDS = int(sorted(pd.read_parquet(REFERENCE / "trials.parquet")["seed"].unique())[-2])


def small_results(root: Path) -> Path:
    """Two configurations of the reference sweep, on two datasets: its highest two seeds
    relabelled ``digits-b``, the rest ``digits`` (to draw the across-datasets section)."""
    out = root / "small"
    for name in ("trials.parquet", "history.parquet"):
        frame = pd.read_parquet(REFERENCE / name)
        if name == "trials.parquet":
            keep = pd.Series(False, index=frame.index)
            for model, loss in SMALL:
                keep |= (frame["model"] == model) & (frame["loss"] == loss)
            frame = frame[keep]
            ids = set(frame["trial_id"])
            for png in frame["predictions_png"].dropna():
                (out / png).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REFERENCE / png, out / png)
        else:
            frame = frame[frame["trial_id"].isin(ids)]
        frame = frame.assign(dataset=np.where(frame["seed"] >= LATE_SEEDS, "digits-b",
                                              "digits"))
        part = out / name / "sweep=reference" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        frame.drop(columns=["sweep"]).to_parquet(part)
    return out


#: Made-up loss names that copy the reference's dice trials into more configurations.
MORE_LOSSES = ("tversky", "lovasz_softmax", "jaccard", "focal_tversky", "boundary",
               "log_cosh_dice", "combo", "unified_focal")


def wide_report(out: Path) -> Path:
    """A report of 50 or more configurations: the reference's trials plus, for each model,
    its dice trials again under 8 more loss names, and unet_shallow's under a long name with
    options (values shifted, so the rows differ). No history: the learning curves are a
    note; the pictures are the reference's."""
    from bench.report import render_html
    from bench.report.context import ReportContext

    trials = pd.read_parquet(REFERENCE / "trials.parquet").assign(sweep="reference")
    n_configs = len(ReportContext.build(REFERENCE, "reference", trials, pd.DataFrame()).board)
    n_models, n_datasets = trials["model"].nunique(), trials["dataset"].nunique()
    extra = []
    for k, loss in enumerate(MORE_LOSSES):
        dice = trials[trials["loss"] == "dice"]
        extra.append(dice.assign(loss=loss, val_mean_iou=dice["val_mean_iou"] * (0.9 + k / 50),
                                 test_mean_iou=dice["test_mean_iou"] * (0.9 + k / 50),
                                 trial_id=dice["trial_id"] + f"_{loss}"))
    trials = pd.concat([trials, *extra], ignore_index=True)
    long = trials[trials["model"] == "unet_shallow"]
    trials = pd.concat([trials, long.assign(
        model="unet_shallow[base_filters=8,dropout=0.1]", val_mean_iou=long["val_mean_iou"] * 0.97,
        test_mean_iou=long["test_mean_iou"] * 0.97, trial_id=long["trial_id"] + "_long")],
        ignore_index=True)
    ctx = ReportContext.build(REFERENCE, "reference", trials, pd.DataFrame())
    losses = trials["loss"].nunique()
    assert len(ctx.board) == n_configs + (len(MORE_LOSSES) * n_models + losses) * n_datasets \
        >= 50
    out.write_text(render_html(ctx), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """The reference report, a 2-configuration one and one of 50 or more, as files."""
    root = tmp_path_factory.mktemp("layout")
    return {
        "reference": build_report(REFERENCE, sweep="reference", out=root / "reference.html",
                                  progress=None),
        "small": build_report(small_results(root), sweep="reference",
                              out=root / "small.html", progress=None),
        "wide": wide_report(root / "wide.html"),
    }


@pytest.mark.parametrize("which", ["reference", "small", "wide"])
def test_report_fits_1400_px_and_its_text_is_readable(reports, which, tmp_path):
    report = reports[which]
    text = report.read_text(encoding="utf-8")
    assert "could not be drawn" not in text
    m = measure(report, tmp_path)
    assert m["clientWidth"] == WINDOW
    # Nothing pushes the page sideways, nor hides behind a scroll bar of its own box.
    assert m["scrollWidth"] <= m["clientWidth"], m["scrollWidth"]
    content = m["contentWidth"]
    wide = [b for b in m["boxes"] if b["right"] > content + 0.5 or b["left"] < -0.5]
    assert not wide, wide
    tables = [b for b in m["boxes"] if b["tag"] == "table"]
    assert tables and max(b["width"] for b in tables) <= content
    hidden = [s for s in m["scrolling"] if s["scrollWidth"] > s["clientWidth"]]
    assert not hidden, hidden
    # The main leaderboard reads a row to a line: nothing in it had to wrap.
    assert m["boardRows"] and max(m["boardRows"]) <= ONE_LINE_ROW_PX, max(m["boardRows"])
    # Every visible word at 9 px or more, as drawn: HTML and SVG text...
    small = [f for f in m["fonts"] if f["px"] < MIN_FONT_PX]
    assert not small, small[:10]
    svg_text = [f for f in m["fonts"] if f["box"] is not None]
    assert svg_text, "the cost plot draws its words as SVG text"
    # ... and the words drawn inside each picture, at the size it is shown.
    images = m["images"]
    assert images and all(i["natural"] > 0 for i in images), "a picture did not load"
    unknown = [i["alt"] for i in images if i["minFontPx"] is None]
    assert not unknown, f"pictures that do not say their smallest text: {unknown}"
    shrunk = [i for i in images if i["minFontPx"] < MIN_FONT_PX]
    assert not shrunk, shrunk
    board = next(b for b in tables if b["section"] == "leaderboard")
    print(f"{which}: leaderboard {board['width']:.0f} px, widest table "
          f"{max(b['width'] for b in tables):.0f} px of {content:.0f}; "
          f"smallest text {min(f['px'] for f in m['fonts']):.1f} px, in pictures "
          f"{min(i['minFontPx'] for i in images):.1f} px")


def plotly_traces(report: str, div_id: str) -> list[dict]:
    """The traces of the plotly chart ``div_id`` as the page hands them to plotly.js."""
    at = report.index(f'Plotly.newPlot(                        "{div_id}",')
    at = report.index("[", at)
    return json.JSONDecoder().raw_decode(report, at)[0]


def test_cost_points_have_hover_titles(reports):
    """Every point of every cost plot has its hover text: its configuration and numbers,
    labelled or not (issue 14: only the Pareto front and the top rows carry labels)."""
    text = reports["reference"].read_text(encoding="utf-8")
    traces = [t for t in plotly_traces(text, "cost-digits") if t.get("hovertext")]
    plots = {t.get("xaxis", "x") for t in traces}
    # Parameters and training time; FLOPs, latency and memory where the trials measured them.
    plots_expected = 2 + sum(pd.read_parquet(REFERENCE / "trials.parquet")[c].notna().any()
                             for c in ("flops", "latency_ms", "peak_memory_mb"))
    assert len(plots) == plots_expected
    board = pd.read_parquet(REFERENCE / "leaderboard.parquet").sort_values("rank")
    board = board[board["dataset"].astype(str) == "digits"]  # the plots of one dataset
    metric, counts = str(board["metric"].iloc[0]), set(board["count"].astype(int))
    titles = [h for t in traces for h in t["hovertext"]]
    assert len(titles) == len(board) * len(plots)
    for title in titles:
        found = re.search(rf" / .+: {metric} 0\.\d{{4}} ± 0\.\d{{4}} \(n=(\d+)\); ", title)
        assert found and int(found[1]) in counts, title
    last = board.iloc[-1]
    name = f"{last['model']} / {last['loss']}"
    unlabelled = [h for h in titles if f"#{len(board)} " in h]
    assert unlabelled and name in unlabelled[0]
    # The last row is neither on the Pareto front of every plot nor a top row: a point with
    # a hover text, without a label of its own in at least one plot.
    labels = [label for t in traces for label in t["text"]]
    assert labels.count(name) < len(plots)


def test_report_screenshot_at_1400_px(reports, tmp_path):
    from PIL import Image

    shot = tmp_path / "reference.png"
    headless_chromium(reports["reference"].as_uri(), tmp_path / "profile", width=WINDOW,
                      height=2400, screenshot=shot)
    assert shot.stat().st_size > 50_000
    image = Image.open(shot)
    assert image.size == (WINDOW, 2400)
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 20  # text, tables and charts, not a blank page
    # The page's content sits in its column: the margins either side are white.
    assert pixels[:, :100].min() > 240 and pixels[:, -100:].min() > 240
