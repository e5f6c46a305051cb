"""Architecture x loss heat map of the sweep's metric (interactive: hover a cell for its
numbers). Beyond :data:`MAX_ROWS` architectures only the best are drawn; the leaderboard
table above holds every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import esc
from bench.report.interactive import SMALL_FONT_PX, plotly_div
from bench.report.registry import register_section

MAX_ROWS = 40  # architectures drawn; more would make a chart thousands of pixels tall
ROW_PX, CELL_TEXT_UP_TO = 26, 400  # numbers written in the cells up to this many cells


def row_order(grid: pd.DataFrame, mode: str) -> pd.Index:
    """The rows (architectures) of ``grid`` (models x losses, NaN: no value) best first, by
    each row's best cell: its largest value for ``mode == "max"``, its smallest for
    ``"min"``, so the eye finds the winners at the top. Rows without a value go last."""
    best = grid.max(axis=1) if mode == "max" else grid.min(axis=1)
    return best.sort_values(ascending=(mode == "min"), na_position="last", kind="stable").index


@register_section("heatmap", title="Architecture x loss")
def render(ctx: ReportContext) -> str:
    """Mean of the metric per architecture (rows) and loss (columns); blank: no finished
    trial."""
    import plotly.graph_objects as go

    out = []
    col = f"{ctx.metric}_mean"
    for k, dataset in enumerate(ctx.datasets):
        board = ctx.board[ctx.board["dataset"].astype(str) == dataset]
        grid = board.pivot_table(index="model", columns="loss", values=col, aggfunc="first",
                                 dropna=False)
        order = row_order(grid, ctx.mode)
        n_models = len(order)
        grid = grid.loc[order[:MAX_ROWS]]
        values = grid.to_numpy(dtype=float)
        h, w = values.shape
        text = np.where(np.isfinite(values), np.char.mod("%.3f", np.nan_to_num(values)), "")
        fig = go.Figure(go.Heatmap(
            z=values, x=[str(c) for c in grid.columns], y=[str(i) for i in grid.index],
            colorscale="Viridis", reversescale=ctx.mode == "min",
            text=text, texttemplate="%{text}" if h * w <= CELL_TEXT_UP_TO else None,
            textfont={"size": SMALL_FONT_PX}, xgap=1, ygap=1, hoverongaps=False,
            colorbar={"title": {"text": f"mean {ctx.metric}", "side": "right"}},
            hovertemplate="%{y} / %{x}<br>mean " + esc(ctx.metric)
            + " %{z:.4f}<extra></extra>"))
        fig.update_layout(title={"text": dataset, "x": 0},
                          yaxis={"autorange": "reversed", "type": "category"},
                          xaxis={"type": "category", "tickangle": -20 if w <= 8 else -45},
                          margin={"l": 10, "r": 10, "t": 40, "b": 10})
        more = (f" The best {MAX_ROWS} of {n_models} architectures (by their best loss); "
                "the leaderboard table holds them all." if n_models > MAX_ROWS else "")
        out.append(f"<figure>{plotly_div(fig, f'heatmap-{k}', height=140 + ROW_PX * h)}"
                   f"<figcaption>Mean {esc(ctx.metric_label())} on <b>{esc(dataset)}</b>."
                   f"{more}</figcaption></figure>")
    return "".join(out)
