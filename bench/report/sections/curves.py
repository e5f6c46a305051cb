"""Learning curves per configuration: mean and spread over seeds, from history.

One interactive chart per metric: the top :data:`TOP_K` configurations drawn, every other
one in the legend, a click away; hovering a point shows its configuration, epoch, mean,
std and seeds. The curves are reduced to one mean and std per configuration x epoch in
pandas (one groupby), so the cost grows with the rows, not with a figure per panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import esc, note
from bench.report.interactive import plotly_div
from bench.report.registry import register_section

TOP_K = 8  # curves drawn at first; the rest are listed in the legend, hidden until picked
HEIGHT_PX = 460


@register_section("curves", title="Learning curves")
def render(ctx: ReportContext) -> str:
    """Per epoch, the mean over seeds (line) and mean ± std (band) of each configuration's
    trials; failed trials included up to where they stopped."""
    if ctx.history.empty or "epoch" not in ctx.history:
        return ""  # nothing to show: the section is left out
    return ctx.per_dataset(_render)


def curve_stats(ctx: ReportContext, col: str) -> pd.DataFrame:
    """Mean, std and count of ``col`` per board row and epoch: columns ``row`` (the board's
    index label), ``epoch``, ``mean``, ``std``, ``count``; rows in the board's order."""
    h = ctx.history[["trial_id", "epoch", col]].dropna(subset=[col])
    rows = ctx.trial_rows()
    h = h.assign(row=h["trial_id"].astype(str).map(rows)).dropna(subset=["row"])
    stats = h.groupby(["row", "epoch"], sort=False)[col].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    order = {idx: k for k, idx in enumerate(ctx.board.index)}
    return stats.sort_values(["row", "epoch"], key=lambda s: s.map(order) if s.name == "row"
                             else s, kind="stable").reset_index(drop=True)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    h = ctx.history
    # History has validation metrics per epoch; the test split is scored once, at the end.
    metric = "val_" + ctx.metric.removeprefix("test_") if ctx.metric.startswith("test_") \
        else ctx.metric
    out = []
    slug = "".join(ch if ch.isalnum() else "-" for ch in ctx.datasets[0])
    for col in dict.fromkeys([metric, "val_loss"]):
        if col in h and h[col].notna().any():
            stats = curve_stats(ctx, col)
            if stats.empty:
                continue
            out.append(_chart(ctx, stats, col, f"curves-{slug}-{col}"))
    if not out:
        return note(f"history.parquet has no {esc(metric)} or val_loss values for this "
                    "sweep's configurations.")
    n = ctx.board.shape[0]
    shown = min(TOP_K, n)
    return (f"<p>The top {shown} of {n} configurations are drawn; click a name in the legend "
            "to show or hide it (double-click: only it), drag to zoom, double-click the plot "
            "to zoom back.</p>" + "".join(out))


def _chart(ctx: ReportContext, stats: pd.DataFrame, col: str, div_id: str) -> str:
    """One chart of ``col``: a line per board row (top ``TOP_K`` shown), bands for those."""
    import plotly.graph_objects as go

    labels = ctx.config_labels()
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    fig = go.Figure()
    for k, (row, g) in enumerate(stats.groupby("row", sort=False)):
        top = k < TOP_K
        colour = colours[k % len(colours)]
        e = g["epoch"].to_numpy(dtype=float)
        m = g["mean"].to_numpy(dtype=float)
        s = g["std"].fillna(0).to_numpy(dtype=float)
        name = str(labels.get(row, row))
        if top:  # the band: one closed polygon, under its line
            fig.add_trace(go.Scatter(
                x=np.concatenate([e, e[::-1]]), y=np.concatenate([m + s, (m - s)[::-1]]),
                fill="toself", fillcolor=colour, opacity=0.15, line={"width": 0},
                hoverinfo="skip", showlegend=False, legendgroup=name))
        # The hover text comes from the figure's template: at 500 configurations a copy
        # per line would add half a megabyte to the file.
        # Short lists of 4-decimal numbers: shorter in the file than base64 arrays.
        fig.add_trace(go.Scatter(
            x=e.astype(int).tolist(), y=np.round(m, 4).tolist(), mode="lines+markers",
            name=name, legendgroup=name if top else None,
            line={"color": colour, "width": 2 if top else 1.5},
            visible=True if top else "legendonly",
            customdata=[[round(float(a), 4), int(b)] for a, b in zip(s, g["count"],
                                                                      strict=True)]))
    hover = ("<b>%{fullData.name}</b><br>epoch %{x}<br>" + esc(col)
             + " %{y:.4f} ± %{customdata[0]:.4f}<br>%{customdata[1]} seeds<extra></extra>")
    fig.update_layout(
        template={"data": {"scatter": [{"hovertemplate": hover, "marker": {"size": 5}}]}},
        title={"text": f"validation {col} per epoch (mean ± std over seeds)", "x": 0},
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": col}},
        legend={"title": {"text": "configuration (click to show)"}, "itemclick": "toggle",
                "itemdoubleclick": "toggleothers"})
    return plotly_div(fig, div_id, height=HEIGHT_PX)
