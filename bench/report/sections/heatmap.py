"""Architecture x loss heat map of the sweep's metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from bench.report.context import ReportContext
from bench.report.html import PAGE_INCHES, figure, figure_img
from bench.report.registry import register_section


def row_order(grid: pd.DataFrame, mode: str) -> pd.Index:
    """The rows (architectures) of ``grid`` (models x losses, NaN: no value) best first, by
    each row's best cell: its largest value for ``mode == "max"``, its smallest for
    ``"min"``, so the eye finds the winners at the top. Rows without a value go last."""
    best = grid.max(axis=1) if mode == "max" else grid.min(axis=1)
    return best.sort_values(ascending=(mode == "min"), na_position="last", kind="stable").index


@register_section("heatmap", title="Architecture x loss")
def render(ctx: ReportContext) -> str:
    """Mean of the metric per architecture (rows) and loss (columns); grey: no finished trial."""
    out = []
    col = f"{ctx.metric}_mean"
    for dataset in ctx.datasets:
        board = ctx.board[ctx.board["dataset"].astype(str) == dataset]
        grid = board.pivot_table(index="model", columns="loss", values=col, aggfunc="first",
                                 dropna=False)
        grid = grid.loc[row_order(grid, ctx.mode)]
        values = grid.to_numpy(dtype=float)
        h, w = values.shape
        # Within the page at its own size (a shrunk picture shrinks its numbers): many
        # losses get narrower cells, smaller numbers and steeper names.
        cell = min(1.5, (PAGE_INCHES - 3.2) / max(w, 1))
        fontsize, digits = (9, 3) if cell >= 0.6 else (7, 3) if cell >= 0.45 else (7, 2)
        fig = Figure(figsize=(min(PAGE_INCHES, max(4.5, cell * w + 3.2)),
                              max(2.2, 0.5 * h + 1.6)), layout="constrained")
        ax = fig.add_subplot()
        cmap = colormaps["viridis" if ctx.mode == "max" else "viridis_r"].with_extremes(
            bad="#dddddd")
        im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
        ax.set_xticks(range(w), [str(c) for c in grid.columns], rotation=20 if cell >= 1.2
                      else 45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(h), [str(i) for i in grid.index])
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for i in range(h):
            for j in range(w):
                v = values[i, j]
                text = "n/a" if not np.isfinite(v) else f"{v:.{digits}f}"
                light = np.isfinite(v) and ((v < mid) == (ctx.mode == "max"))
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if light else "black")
        fig.colorbar(im, ax=ax, label=f"mean {ctx.metric}")
        ax.set_title(dataset, fontsize=10)
        out.append(figure(figure_img(fig, f"heat map of {ctx.metric} on {dataset}"),
                          f"Mean {ctx.metric_label()} on <b>{dataset}</b>."))
    return "".join(out)
