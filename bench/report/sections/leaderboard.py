"""The ranked leaderboard: mean ± std over seeds, 95% CI, paired tests against the best, cost."""

from __future__ import annotations

from bench import leaderboard as lb
from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.registry import register_section

#: What the statistics columns mean, in one sentence (also the CLI's stderr line).
MEANING = (
    "<i>p vs best</i> is a paired test of the row against rank 1 over the seeds both ran "
    "(Wilcoxon signed-rank from 6 seeds, else a paired t-test), Holm-corrected across the "
    "rows; <i>tied</i> says p ≥ 0.05, that is the data cannot tell the row from the best; "
    "<i>P(first)</i> is the share of 2,000 bootstrap resamples of the seeds in which the row "
    "ranks first, and <i>rank 95%</i> the ranks it takes in 95% of them."
)


@register_section("leaderboard", title="Leaderboard")
def render(ctx: ReportContext) -> str:
    """Configurations ranked by the mean of the sweep's metric over their finished trials,
    each failed trial counting as the metric's worst value."""
    within_loss = "ranked_within_loss" in ctx.board and bool(ctx.board["ranked_within_loss"]
                                                             .any())
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
        f"metric's worst value. {MEANING} <i>best</i> is the best trial's value and its "
        "MLflow run. Cost columns are means over the finished trials."
        + (" Each dataset is ranked on its own, one table each." if len(ctx.datasets) > 1
           else "") + "</p>"
        + ctx.per_dataset(_table)
    )


def _table(ctx: ReportContext) -> str:
    """The summary table of ``ctx``'s board (one dataset's)."""
    shown = lb.summary(ctx.board).drop(columns=["sweep", "dataset"])
    return table(shown, code_columns=("best run",))
