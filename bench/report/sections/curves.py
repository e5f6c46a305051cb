"""Learning curves per architecture x loss: mean and spread over seeds, from history."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from bench.report.context import ReportContext
from bench.report.html import PAGE_INCHES, figure, figure_img, note
from bench.report.registry import register_section

MAX_COLUMNS = 3


@register_section("curves", title="Learning curves")
def render(ctx: ReportContext) -> str:
    """Per epoch, the mean over seeds (line) and mean ± std (band) of each loss's trials,
    one panel per architecture; failed trials included up to where they stopped."""
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    h = ctx.history
    if h.empty or "epoch" not in h:
        return note("No history.parquet rows for this sweep: no learning curves.")
    out = []
    # History has validation metrics per epoch; the test split is scored once, at the end.
    metric = "val_" + ctx.metric.removeprefix("test_") if ctx.metric.startswith("test_") \
        else ctx.metric
    for col in dict.fromkeys([metric, "val_loss"]):
        if col in h and h[col].notna().any():
            out.append(figure(figure_img(_curves(ctx, col), f"learning curves of {col}"),
                              f"Validation <b>{col}</b> per epoch."))
    return "".join(out) or note(f"history.parquet has no {metric} or val_loss column.")


def _curves(ctx: ReportContext, col: str) -> Figure:
    h = ctx.history
    models = list(dict.fromkeys(ctx.board["model"].astype(str)))  # best first
    losses = sorted(h["loss_fn"].astype(str).unique())
    colors = {lo: f"C{i % 10}" for i, lo in enumerate(losses)}
    ncols = min(MAX_COLUMNS, len(models))
    nrows = math.ceil(len(models) / ncols)
    # Three panels a row fill the page at their own size (a shrunk picture shrinks its words).
    fig = Figure(figsize=(min(4.2 * ncols, PAGE_INCHES), 3.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models, strict=False):
        for loss in losses:
            g = h[(h["model"].astype(str) == model) & (h["loss_fn"].astype(str) == loss)]
            if g.empty:
                continue
            stats = g.groupby("epoch")[col].agg(["mean", "std", "count"])
            e = stats.index.to_numpy(dtype=float)
            m = stats["mean"].to_numpy(dtype=float)
            s = stats["std"].fillna(0).to_numpy(dtype=float)
            ax.plot(e, m, marker=".", color=colors[loss], label=loss)
            ax.fill_between(e, m - s, m + s, color=colors[loss], alpha=0.18, lw=0)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[:, 0]:
        ax.set_ylabel(col)
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend([seen[k] for k in losses if k in seen], [k for k in losses if k in seen],
               loc="outside lower center", ncols=min(4, len(losses)), fontsize=8)
    return fig
