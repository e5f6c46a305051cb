"""The report is interactive and self-contained (issue 28): opened offline in headless
Chromium at 1,400 px, a script hovers a point, sorts and filters the leaderboard table,
pages a long table and finds the search views of a swept ``lr`` and ``batch_size``.

As in ``test_report_layout.py``, the script runs in the page once it has loaded and writes
what it found into the page as JSON; ``--dump-dom`` hands the page back. The browser gets a
proxy that goes nowhere, so any request for a resource off the file would fail.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import build_report
from bench.report.html import page, table
from bench.report.interactive import PAGE_ROWS
from tests.test_report_search import write_searched_results

WINDOW = 1400

DRIVE = """
window.addEventListener('load', () => setTimeout(() => {
  const out = {plotly: typeof Plotly, errors: []};
  try {
    // Hover the first point of the best-so-far chart with the mouse, read the label.
    const gd = document.querySelector('[id^="search-history-"]');
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const point = gd.calcdata[1][0];  // the first trial, as plotly decoded it
    const x0 = point.x, y0 = point.y;
    const drag = gd.querySelector('.nsewdrag');
    const box = drag.getBoundingClientRect();
    const px = box.left + xa.l2p(x0), py = box.top + ya.l2p(y0);
    drag.dispatchEvent(new MouseEvent('mousemove', {clientX: px, clientY: py, bubbles: true}));
    out.hover = [...gd.querySelectorAll('.hoverlayer .hovertext')]
      .map(n => n.textContent);
    out.hoverX = x0;
  } catch (e) { out.errors.push('hover: ' + e); }
  const table = document.querySelector('#leaderboard table[data-interactive]');
  const heads = [...table.tHead.rows[0].cells].map(th => th.textContent.trim());
  const col = name => [...table.tBodies[0].rows].map(r => r.cells[heads.indexOf(name)]
                                                         .textContent.trim());
  out.heads = heads;
  out.before = col('model');
  const metric = table.tHead.rows[0].cells[heads.indexOf('val_mean_iou')];
  metric.click();
  out.sortedUp = col('val_mean_iou');
  metric.click();
  out.sortedDown = col('val_mean_iou');
  const input = document.querySelector('#leaderboard .tablefilter');
  input.value = 'loss:dice';
  input.dispatchEvent(new Event('input'));
  out.filteredLoss = col('loss');
  out.count = document.querySelector('#leaderboard .tablecount').textContent;
  input.value = 'unet';
  input.dispatchEvent(new Event('input'));
  out.filteredAny = col('model');
  // The search views: parallel coordinates and importances over lr and batch_size.
  const par = document.querySelector('[id^="search-parallel-"]');
  out.parallel = par ? par.data[0].type : null;
  out.parallelAxes = par ? [...par.querySelectorAll('.axis-title')].map(n => n.textContent)
                         : [];
  const imp = document.querySelector('[id^="search-importance-"]');
  out.importance = imp ? imp.calcdata[0].map(p => imp._fullData[0].y[p.i]) : [];
  out.importanceBars = imp ? imp.querySelectorAll('.bars .point').length : 0;
  out.scrollWidth = document.documentElement.scrollWidth;
  out.clientWidth = document.documentElement.clientWidth;
  const pre = document.createElement('pre');
  pre.id = 'drive-json';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 300));
"""

PAGER = """
window.addEventListener('load', () => {
  const rows = () => [...document.querySelectorAll('table tbody tr')].map(
    r => r.cells[0].textContent);
  const out = {first: rows(), count: document.querySelector('.tablecount').textContent};
  document.querySelector('.tablebar .next').click();
  out.second = rows();
  out.nextDisabled = document.querySelector('.tablebar .next').disabled;
  const pre = document.createElement('pre');
  pre.id = 'drive-json';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


def drive(report: Path, script: str, workdir: Path) -> dict:
    """Open ``report`` with ``script`` in headless Chromium, offline; what it found."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed: cannot render the page")
    page_path = workdir / f"{report.stem}-driven.html"
    page_path.write_text(report.read_text(encoding="utf-8").replace(
        "</body>", f"<script>{script}</script></body>"), encoding="utf-8")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={workdir / 'profile'}",
            # Offline: every request off the file goes to a proxy that is not there.
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--window-size={WINDOW},1000", "--virtual-time-budget=15000",
            "--run-all-compositor-stages-before-draw", "--dump-dom", page_path.as_uri()]
    dom = subprocess.run(args, check=True, capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="drive-json">(.*?)</pre>', dom, re.S)
    assert found, "the driving script did not run"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def searched_report(tmp_path_factory) -> tuple[Path, Path]:
    root = write_searched_results(tmp_path_factory.mktemp("interactive") / "results")
    return root, build_report(root, sweep="srch", progress=None)


def test_report_is_interactive_offline(searched_report, tmp_path):
    from bench.results import leaderboard as lb

    root, report = searched_report
    got = drive(report, DRIVE, tmp_path)
    assert got["errors"] == [] and got["plotly"] == "object"  # plotly.js came from the file
    assert got["scrollWidth"] <= got["clientWidth"] == WINDOW
    # The hover label names the first trial to start: its configuration, seed and value.
    trials, _ = lb.load_results(root, sweep="srch")
    done = trials[np.isfinite(trials["val_mean_iou"].astype(float))]
    first = done.sort_values(["started_at", "trial_id"]).iloc[0]
    label = " ".join(got["hover"])
    assert f"{first['model']} / {first['loss']}, seed {first['seed']}" in label, label
    assert f"{first['val_mean_iou']:.4f}" in label and first["trial_id"] in label
    # Sorting by the metric: ascending, then descending, blanks last.
    up = [float(v.split()[0]) for v in got["sortedUp"] if v]
    down = [float(v.split()[0]) for v in got["sortedDown"] if v]
    assert up == sorted(up) and down == sorted(up, reverse=True) and len(up) >= 5
    # Filtering: a column's text, then words anywhere in a row.
    board = lb.aggregate(trials)
    assert got["filteredLoss"] == ["dice"] * int((board["loss"] == "dice").sum())
    assert got["count"].startswith(f"{(board['loss'] == 'dice').sum()} of {len(board)} rows")
    assert got["filteredAny"] and all("unet" in m for m in got["filteredAny"])
    # The search views of the swept lr and batch_size.
    assert got["parallel"] == "parcoords"
    assert {"lr", "batch_size", "val_mean_iou"} <= set(got["parallelAxes"])
    assert {"lr", "batch_size"} <= set(got["importance"])
    assert got["importanceBars"] == len(got["importance"])


def test_long_tables_are_paged(tmp_path):
    n = PAGE_ROWS + 50
    frame = pd.DataFrame({"row": [f"r{i}" for i in range(n)], "value": np.arange(n)})
    report = tmp_path / "long.html"
    report.write_text(page("long", "", [("t", "Table", "", table(frame, interactive=True))],
                           ""), encoding="utf-8")
    got = drive(report, PAGER, tmp_path)
    assert got["first"] == [f"r{i}" for i in range(PAGE_ROWS)]
    assert got["second"] == [f"r{i}" for i in range(PAGE_ROWS, n)]
    assert got["count"] == f"{n} rows, 1-{PAGE_ROWS} shown" and got["nextDisabled"]
