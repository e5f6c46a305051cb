"""One self-contained HTML report of a sweep, built from registered sections.

>>> from bench.report import build_report
>>> path = build_report("results", sweep="smoke")        # results/report-smoke.html

Each section is a module of :mod:`bench.report.sections` registered with
:func:`register_section`; this module only loads the results once, renders the sections
in order and writes the page.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.report import sections as _sections  # noqa: F401  (registers the sections)
from bench.report.context import ReportContext
from bench.report.html import esc, note, page
from bench.report.registry import SECTIONS, register_section
from bench.results import leaderboard as lb

__all__ = ["SECTIONS", "ReportContext", "build_report", "render_html", "register_section"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _caption(render: Callable[[ReportContext], str]) -> str:
    """A section's caption: the first paragraph of its render function's docstring."""
    doc = inspect.getdoc(render) or ""
    return " ".join(doc.split("\n\n")[0].split())


def render_html(ctx: ReportContext, progress: Callable[[str], None] | None = None) -> str:
    """The report page of ``ctx`` as one HTML string (every registered section, in order).

    A section that raises does not sink the report: its place says what went wrong. A
    section with nothing to show (its render returns "") is left out, heading and all.
    """
    parts = []
    for entry in SECTIONS:
        if progress:
            progress(f"report: {entry.name}")
        try:
            body = entry.obj(ctx)
        except Exception as e:  # noqa: BLE001  (one broken section must not lose the rest)
            body = note(f"This section could not be drawn: {esc(type(e).__name__)}: {esc(e)}")
        if not body.strip():
            continue
        parts.append((entry.name, entry.meta["title"], esc(_caption(entry.obj)), body))
    t = ctx.trials
    datasets = ", ".join(ctx.datasets)
    versions = ", ".join(f"{k} {v}" for k, v in ctx.versions.items()) or "versions not recorded"
    ended = pd.to_datetime(t["ended_at"], utc=True, errors="coerce").max() \
        if "ended_at" in t else pd.NaT
    when = f"ran until {ended:%Y-%m-%d %H:%M} UTC, " if pd.notna(ended) else ""
    n_failed = int(ctx.board["failed"].sum())
    meta = (
        f'<p class="meta">Sweep <b>{esc(ctx.sweep)}</b> on <b>{esc(datasets)}</b> · '
        f"{len(t)} trials ({len(ctx.finished)} finished, {n_failed} failed) · "
        f"{ctx.board.shape[0]} configurations · ranked by <b>{esc(ctx.metric_label())}</b>"
        f'</p><p class="meta">{esc(when)}report made {ctx.created:%Y-%m-%d %H:%M} UTC · '
        f"{esc(versions)}</p>"
    )
    return page(f"zoobench report: {ctx.sweep}", meta, parts,
                f"Made by <code>zoobench report</code> from {esc(ctx.results_dir)}.")


def build_report(
    results_dir: str | Path,
    sweep: str | None = None,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = _stderr,
) -> Path:
    """Write the HTML report of one sweep and return its path.

    Args:
        results_dir: the results folder (``trials.parquet``, ``history.parquet``).
        sweep: the sweep to report on; default: the one that finished last.
        out: where to write; default ``<results_dir>/report-<sweep>.html``.
        progress: called with a short line before each step (default: print to stderr).

    Raises:
        FileNotFoundError: no ``trials.parquet`` under ``results_dir``.
        ValueError: ``sweep`` is not in the results, or there are no trials.
    """
    root = Path(results_dir)
    trials, history = lb.load_results(root)
    if trials.empty:
        raise ValueError(f"{root}: trials.parquet holds no trials")
    names = sorted(trials["sweep"].astype(str).unique())
    sweep = sweep or lb.latest_sweep(trials)
    if sweep not in names:
        raise ValueError(f"no sweep {sweep!r} in {root}; choose one of: {', '.join(names)}")
    trials = trials[trials["sweep"].astype(str) == sweep].reset_index(drop=True)
    if len(history):
        history = history[history["sweep"].astype(str) == sweep].reset_index(drop=True)
    if progress:
        progress(f"report: {sweep}: {len(trials)} trials, {len(history)} history rows")
    ctx = ReportContext.build(root, sweep, trials, history)
    path = Path(out) if out else root / f"report-{sweep}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(ctx, progress), encoding="utf-8")
    return path
