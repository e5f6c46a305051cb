"""Trials that failed (raised), diverged (NaN) or did not finish, with their reasons."""

from __future__ import annotations

import pandas as pd

from bench import leaderboard as lb
from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.registry import register_section

MAX_ERROR = 400  # characters of the error shown; the full text is in MLflow / trials.parquet


@register_section("failures", title="Failed and diverged trials")
def render(ctx: ReportContext) -> str:
    """Trials left out of the statistics: ERROR (an exception), NAN (the loss diverged),
    anything else not TERMINATED (stopped or interrupted)."""
    t = ctx.trials
    bad = t[~t["status"].astype(str).isin(lb.FINISHED)]
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
        "reason": bad.get("error", pd.Series("", index=bad.index))
        .fillna("").astype(str).map(_shorten),
        "MLflow run": bad.get("mlflow_run_id", ""),
    })
    return (f"<p>{summary} of {len(t)} trials.</p>"
            + table(rows, code_columns=("trial", "MLflow run", "reason")))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
