"""The ranked leaderboard: mean ± std over seeds, 95% CI, paired tests against the best, cost.

The main table holds what a reader compares at a glance and fits the page at any number of
configurations; every other number of the leaderboard is in the tables folded under it
(``<details>``): the tests and the best trial, the costs, and the other metrics.
"""

from __future__ import annotations

import re

import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.registry import register_section
from bench.results import leaderboard as lb

#: What the statistics columns mean, in one sentence (also the CLI's stderr line).
MEANING = (
    "<i>p vs best</i> is a paired test of the row against rank 1 over the seeds both ran "
    "(Wilcoxon signed-rank from 6 seeds, else a paired t-test), Holm-corrected across the "
    "rows; <i>tied</i> says p ≥ 0.05, that is the data cannot tell the row from the best; "
    "<i>P(first)</i> is the share of 2,000 bootstrap resamples of the seeds in which the row "
    "ranks first, and <i>rank 95%</i> the ranks it takes in 95% of them."
)

#: Columns of :func:`bench.results.leaderboard.summary` in the main table, in order (those present).
MAIN = ("rank", "dataset", "model", "loss", "{metric}", "95% CI", "n", "failed", "tied",
        "P(first)", "rank 95%", "test_ssim", "gain vs persistence dB")
#: ... in the table of tests and best trials.
TESTS = ("p vs best", "best", "best run")
#: Costs: summary's, then the board's other cost means (column, heading, format).
COSTS = (("n_params", "params", ",d"), ("samples_per_second_mean", "samples/s", ".1f"),
         ("train_seconds_mean", "train s", ".1f"), ("epochs_done_mean", "epochs", ".1f"),
         ("flops_mean", "FLOPs/sample", ",.0f"), ("latency_ms_mean", "latency ms", ".2f"),
         ("peak_memory_mb_mean", "peak MiB", ",.1f"))
#: Metric means shown elsewhere: per class (per-class section), per rollout step (rollout).
_ELSEWHERE = re.compile(r"_iou_class_\d+_mean$|_step_\d+_mean$")
METRICS_PER_TABLE = 6
KEYS = ("rank", "dataset", "model", "loss")
NAMES = ("model", "loss")


@register_section("leaderboard", title="Leaderboard")
def render(ctx: ReportContext) -> str:
    """Configurations ranked by the mean of the sweep's metric over their finished trials,
    each failed trial counting as the metric's worst value."""
    board = ctx.leaderboard
    within_loss = "ranked_within_loss" in board and bool(board["ranked_within_loss"].any())
    n_base = int(board["baseline"].fillna(False).astype(bool).sum()) if "baseline" in board \
        else 0
    return (
        f"<p>Ranked by <b>{esc(ctx.metric_label())}</b>"
        + (" within each loss function (loss values of different functions do not compare)"
           if within_loss else "")
        + ". Each row pools the finished trials (completed, or stopped by patience or the "
        "time budget) of one architecture x loss over its seeds and samples: <i>mean ± "
        "std</i> (sample std, ddof=1), its 95% confidence interval (Student t over those "
        "trials, clipped to the metric's range; blank with a single trial, marked n&lt;5 "
        "when wide), <i>n</i> the number of finished trials, <i>failed</i> those that "
        "raised or diverged: they are not in the mean, but the rank scores each as the "
        f"metric's worst value. {MEANING} "
        + (f"The {n_base} <i>baseline</i> rows (shaded) are what a trained model must beat "
           "with no training: <i>persistence</i> repeats the last input frame, "
           "<i>mean_frame</i> predicts the mean training frame; they are not ranked, and "
           "<i>gain vs persistence dB</i> is each row's PSNR minus persistence's. "
           if n_base else "")
        + "Under the table: <i>best</i>, the best trial's value and its MLflow run, the "
        "costs (means over the finished trials) and the other metrics. Click a heading to "
        "sort the table by it, type in the filter to keep the rows that match (a word, or "
        "<code>column:text</code> such as <code>loss:dice</code>)."
        + (" Each dataset is ranked on its own, one table each." if len(ctx.datasets) > 1
           else "") + "</p>"
        + ctx.per_dataset(_tables)
    )


def _tables(ctx: ReportContext) -> str:
    """The main table of ``ctx``'s board (one dataset's) and the tables folded under it."""
    board = ctx.leaderboard
    shown = lb.summary(board).drop(columns=["sweep", "dataset"], errors="ignore")
    keys = [k for k in KEYS if k in shown]
    baseline = board["baseline"].fillna(False).astype(bool).to_list() \
        if "baseline" in board else [False] * len(board)
    shown["rank"] = ["baseline" if b else r for b, r in zip(baseline, shown["rank"], strict=True)]
    classes = ["baseline" if b else "" for b in baseline]
    main = [c.format(metric=ctx.metric) for c in MAIN]
    main = [c for c in main if c in shown]

    def details(summary: str, body: str) -> str:
        return f"<details><summary>{summary}</summary>{body}</details>"

    costs = pd.DataFrame({h: [_fmt(v, f) for v in board[c]]
                          for c, h, f in COSTS if c in board and board[c].notna().any()})
    folded = details(
        "Tests and best trial of every row: p vs best, the best trial's value and its run",
        table(shown[keys + [c for c in TESTS if c in shown]], code_columns=("best run",),
              wrap_columns=NAMES, row_classes=classes))
    if len(costs.columns):
        folded += details(
            "Cost of every row: " + ", ".join(esc(c) for c in costs.columns)
            + " (means over the finished trials)",
            table(pd.concat([shown[keys], costs], axis=1), wrap_columns=NAMES,
                  row_classes=classes))
    others = [c for c in board if c.endswith("_mean") and c != f"{ctx.metric}_mean"
              and c.startswith(("val_", "test_"))
              and not _ELSEWHERE.search(c) and board[c].notna().any()]
    if others:
        parts = []
        for i in range(0, len(others), METRICS_PER_TABLE):
            chunk = others[i:i + METRICS_PER_TABLE]
            values = pd.DataFrame({c.removesuffix("_mean"): [_fmt(v, ".4f") for v in board[c]]
                                   for c in chunk})
            parts.append(table(pd.concat([shown[keys], values], axis=1), wrap_columns=NAMES,
                               row_classes=classes))
        folded += details("The other metrics of every row (means over the finished trials): "
                          + ", ".join(esc(c.removesuffix("_mean")) for c in others),
                          "".join(parts))
    return table(shown[main], wrap_columns=NAMES, row_classes=classes, interactive=True) \
        + folded


def _fmt(value: object, spec: str) -> str:
    """``value`` formatted with ``spec`` ("" for a missing one)."""
    if value is None or pd.isna(value):
        return ""
    return format(int(value) if spec.endswith("d") else float(value), spec)
