"""Accuracy against cost (parameters, FLOPs, latency, memory, training time), with the Pareto
front marked: one plot per cost the trials recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import esc, figure, note, table
from bench.report.interactive import plotly_div
from bench.report.registry import register_section

# The cost axes (column, label), lower is cheaper; one plot each that the leaderboard has.
COSTS = (("n_params", "parameters"), ("flops_mean", "forward FLOPs per sample"),
         ("latency_ms_mean", "latency, batch 1 (ms)"), ("peak_memory_mb_mean", "peak memory (MiB)"),
         ("train_seconds_mean", "training time (s)"))
COLUMNS_PER_ROW = 2  # two plots a row fit the page at their own size (issue 14)
LABEL_PX = 11  # the labels' text, CSS px
TOP_LABELS = 5  # the leaderboard's top rows keep their labels; at 50 configurations the rest
                # would overprint into an unreadable pile (issue 14)


def labelled(on_front: np.ndarray, rank: np.ndarray, top: int = TOP_LABELS) -> np.ndarray:
    """Mask (n,) of the points that get a text label: the Pareto front and ranks 1..``top``.

    ``on_front``: bool (n,); ``rank``: the leaderboard's rank (n,), NaN for unranked rows.
    """
    rank = np.asarray(rank, dtype=float)
    return np.asarray(on_front, dtype=bool) | (np.nan_to_num(rank, nan=np.inf) <= top)


def pareto_front(cost: np.ndarray, value: np.ndarray, mode: str) -> np.ndarray:
    """Mask (n,) of the points no other point beats: none is as cheap and better or
    cheaper and as good. ``cost``, ``value``: shape (n,), finite."""
    score = value if mode == "max" else -value
    front = np.zeros(cost.shape, dtype=bool)
    best = -np.inf
    # Cheapest first (ties: best first); a point is on the front if it beats every cheaper one.
    for i in np.lexsort((-score, cost)):
        if score[i] > best:
            front[i], best = True, score[i]
    return front


@register_section("cost", title="Accuracy vs cost")
def render(ctx: ReportContext) -> str:
    """Each configuration's mean metric (bars: ± std) against what it costs; the line joins
    the Pareto front, the configurations nothing else beats on both at once."""
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    mean, std = f"{ctx.metric}_mean", f"{ctx.metric}_std"
    board = ctx.board[np.isfinite(ctx.board[mean].astype(float))]
    usable = [(c, label) for c, label in COSTS
              if c in board and board[c].astype(float).notna().any()]
    if board.empty or not usable:
        return note("No finished trial with a recorded cost: nothing to plot.")
    ncols = min(COLUMNS_PER_ROW, len(usable))
    nrows = -(-len(usable) // ncols)
    height = 60 + 380 * nrows
    # 100 px between rows: room for an x axis' numbers and title.
    fig = make_subplots(rows=nrows, cols=ncols, horizontal_spacing=0.1,
                        vertical_spacing=100 / height)
    on_front = pd.DataFrame(False, index=board.index, columns=[label for _, label in usable])
    names = ctx.config_labels()
    for k, (col, label) in enumerate(usable):
        r, c = k // ncols + 1, k % ncols + 1
        b = board[board[col].astype(float).notna()]
        x, y = b[col].to_numpy(dtype=float), b[mean].to_numpy(dtype=float)
        err = b[std].fillna(0).to_numpy(dtype=float)
        on = pareto_front(x, y, ctx.mode)
        on_front.loc[b.index[on], label] = True
        ranks = b["rank"].to_numpy(dtype=float) if "rank" in b else np.full(len(b), np.nan)
        show = labelled(on, ranks)
        titles = [_point_title(b.iloc[i], ctx, label, x[i], bool(on[i])) for i in range(len(b))]
        text = [str(names.get(i, "")) if s else "" for i, s in zip(b.index, show, strict=True)]
        log = x.min() > 0 and x.max() / x.min() > 20
        mid = np.log10(x).mean() if log else x.mean()
        where = ["top left" if (np.log10(v) if log else v) > mid else "top right" for v in x]
        for part, colour, name in ((~on, "#8c959f", "configuration"),
                                   (on, "#cf222e", "Pareto front")):
            if not part.any():
                continue
            fig.add_trace(go.Scatter(
                x=x[part], y=y[part], mode="markers+text", name=name, legendgroup=name,
                showlegend=k == 0, marker={"color": colour, "size": 8},
                error_y={"type": "data", "array": err[part], "color": colour,
                         "thickness": 1, "width": 2},
                text=[t for t, p in zip(text, part, strict=True) if p],
                textposition=[w for w, p in zip(where, part, strict=True) if p],
                textfont={"size": LABEL_PX, "color": "#424a53"},
                hovertext=[t for t, p in zip(titles, part, strict=True) if p],
                hovertemplate="%{hovertext}<extra></extra>"), row=r, col=c)
        order = np.argsort(x[on])
        fig.add_trace(go.Scatter(x=x[on][order], y=y[on][order], mode="lines",
                                 line={"shape": "hv", "color": "#cf222e", "width": 1.2},
                                 hoverinfo="skip", showlegend=False), row=r, col=c)
        fig.update_xaxes(title_text=label, type="log" if log else "linear", row=r, col=c)
        fig.update_yaxes(title_text=f"mean {ctx.metric}", row=r, col=c)
    fig.update_layout(legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
                      margin={"t": 30})
    front = board[on_front.any(axis=1)]
    rows = pd.DataFrame({
        "model": front["model"], "loss": front["loss"],
        ctx.metric: front[mean].map(lambda v: f"{v:.4f}"),
        "params": front["n_params"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        "train s": front["train_seconds_mean"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
        **{f"front of {label}": on_front.loc[front.index, label].map({True: "yes", False: ""})
           for _, label in usable},
    })
    axes = ", ".join(label for _, label in usable)
    slug = "".join(ch if ch.isalnum() else "-" for ch in ctx.datasets[0])
    return (figure(plotly_div(fig, f"cost-{slug}", height=height),
                   f"One plot per cost: {esc(axes)} (means over the trials). "
                   f"Labelled: the Pareto front and the top {TOP_LABELS} of the leaderboard; "
                   "hover a point for its configuration and numbers, drag to zoom. "
                   f"{esc(ctx.metric_label())}.")
            + "<p>The configurations on a front:</p>" + table(rows))


def _point_title(row: pd.Series, ctx: ReportContext, cost: str, x: float, front: bool) -> str:
    """A point's hover text: its configuration, rank, metric (mean ± std, n) and cost."""
    rank = row.get("rank")
    rank = f"#{int(rank)} " if pd.notna(rank) else ""
    std = row.get(f"{ctx.metric}_std")
    spread = f" ± {std:.4f}" if pd.notna(std) else ""
    where = f" on {row['dataset']}" if len(ctx.datasets) > 1 else ""
    value = f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
    return (f"{rank}{row['model']} / {row['loss']}{where}: {ctx.metric} "
            f"{row[f'{ctx.metric}_mean']:.4f}{spread} (n={row['count']}); {cost} {value}"
            + ("; on the Pareto front" if front else ""))
