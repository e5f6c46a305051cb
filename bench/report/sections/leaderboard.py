"""The ranked leaderboard: mean ± std over seeds, 95% CI, count, best run, cost."""

from __future__ import annotations

from bench import leaderboard as lb
from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.registry import register_section


@register_section("leaderboard", title="Leaderboard")
def render(ctx: ReportContext) -> str:
    """Configurations ranked by the mean of the sweep's metric over their finished trials."""
    shown = lb.summary(ctx.board).drop(columns=["sweep"])
    if len(ctx.datasets) == 1:
        shown = shown.drop(columns=["dataset"])
    return (
        f"<p>Ranked by <b>{esc(ctx.metric_label())}</b>. Each row pools the finished trials "
        "of one architecture x loss over its seeds and samples: <i>mean ± std</i> "
        "(sample std, ddof=1), its 95% confidence interval (Student t over those trials; "
        "blank with a single trial), <i>n</i> the number of finished trials, "
        "<i>failed</i> those that raised or diverged (not counted), <i>best</i> the best "
        "trial's value and its MLflow run. Cost columns are means over the finished trials."
        "</p>"
        + table(shown, code_columns=("best run",))
    )
