"""Trials that failed (raised), diverged (NaN) or did not finish, with their reasons."""

from __future__ import annotations

import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import Cell, esc, shorten, table
from bench.report.registry import register_section
from bench.results import leaderboard as lb

MAX_ERROR = 400  # characters of the error shown; the full text is its title (hover), and in
                 # MLflow / trials.parquet


@register_section("failures", title="Failed and diverged trials")
def render(ctx: ReportContext) -> str:
    """Trials left out of the mean: ERROR (an exception) and NAN (the loss diverged), which
    rank as the metric's worst value, and trials a scheduler stopped or an interruption left
    unfinished (patience and time-budget stops are finished trials, counted)."""
    t = ctx.trials
    bad = t[~lb.finished_mask(t)]
    if bad.empty:
        return f"<p>All {len(t)} trials finished; none failed or diverged.</p>"
    counts = bad["status"].astype(str).value_counts()
    summary = ", ".join(f'<span class="bad">{n} {esc(s)}</span>' for s, n in counts.items())
    rows = pd.DataFrame({
        "trial": bad["trial_id"].astype(str),
        "model": bad["model"].astype(str),
        "loss": bad["loss"].astype(str),
        "seed": bad.get("seed", ""),
        "status": bad["status"].astype(str),
        "epochs": bad.get("epochs_done", ""),
        "reason": _reasons(bad),
        "MLflow run": bad.get("mlflow_run_id", ""),
    })
    if len(ctx.datasets) > 1:
        rows.insert(1, "dataset", bad["dataset"].astype(str))
    return (f"<p>{summary} of {len(t)} trials.</p>"
            + table(rows, code_columns=("trial", "MLflow run", "reason")))


def _reasons(bad: pd.DataFrame) -> pd.Series:
    """The error of each trial, else why it ended (the engine's ``end_reason``: patience,
    scheduler, interrupted, ...)."""
    error, ended = _text(bad, "error"), _text(bad, "end_reason")
    reason = [e or (f"ended: {r}" if r else "") for e, r in zip(error, ended, strict=True)]
    cells = []
    for text in reason:
        short = shorten(" ".join(text.split()), MAX_ERROR)
        cells.append(Cell(short.text, text) if isinstance(short, Cell) else short)
    return pd.Series(cells, index=bad.index, dtype=object)


def _text(frame: pd.DataFrame, column: str) -> list[str]:
    """``frame[column]`` as strings, "" for nulls or a missing column."""
    if column not in frame:
        return [""] * len(frame)
    return ["" if pd.isna(v) else str(v) for v in frame[column]]
