"""Accuracy against cost (parameters, FLOPs, latency, memory, training time), with the Pareto
front marked: one plot per cost the trials recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import Bbox

from bench.report.context import ReportContext
from bench.report.html import PAGE_PX, esc, figure, figure_svg, note, table
from bench.report.registry import register_section

# The cost axes (column, label), lower is cheaper; one plot each that the leaderboard has.
COSTS = (("n_params", "parameters"), ("flops_mean", "forward FLOPs per sample"),
         ("latency_ms_mean", "latency, batch 1 (ms)"), ("peak_memory_mb_mean", "peak memory (MiB)"),
         ("train_seconds_mean", "training time (s)"))
COLUMNS_PER_ROW = 2  # two plots a row fit the page at their own size (issue 14)
LABEL_POINTS = 8  # 10.7 CSS px when the drawing is shown at its size
MARKER_PX = 3.0  # half a marker's size, at the figure's 100 dpi
TOP_LABELS = 5  # the leaderboard's top rows keep their labels; at 50 configurations the rest
                # would overprint into an unreadable pile (issue 14)


#: One plot's labels: its axes, every point's (x, y) (n, 2), the labelled (x, y, text).
Labels = tuple[Axes, np.ndarray, list[tuple[float, float, str]]]


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
    mean, std = f"{ctx.metric}_mean", f"{ctx.metric}_std"
    board = ctx.board[np.isfinite(ctx.board[mean].astype(float))]
    usable = [(c, label) for c, label in COSTS
              if c in board and board[c].astype(float).notna().any()]
    if board.empty or not usable:
        return note("No finished trial with a recorded cost: nothing to plot.")
    ncols = min(COLUMNS_PER_ROW, len(usable))
    nrows = -(-len(usable) // ncols)
    # The SVG is shown at its own size, 96 px an inch, within the page.
    width = min(PAGE_PX / 96, 5.4 * ncols)
    fig = Figure(figsize=(width, 4.4 * nrows), layout="constrained")
    on_front = pd.DataFrame(False, index=board.index, columns=[label for _, label in usable])
    titles: dict[str, str] = {}  # each point's hover text, by the gid it is drawn with
    labels: list[Labels] = []  # per plot: its points, and the labelled ones top down
    for k, (col, label) in enumerate(usable):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        b = board[board[col].astype(float).notna()]
        x, y = b[col].to_numpy(dtype=float), b[mean].to_numpy(dtype=float)
        err = b[std].fillna(0).to_numpy(dtype=float)
        on = pareto_front(x, y, ctx.mode)
        on_front.loc[b.index[on], label] = True
        ax.errorbar(x[~on], y[~on], yerr=err[~on], fmt="none", ecolor="#d0d7de", capsize=2)
        ax.errorbar(x[on], y[on], yerr=err[on], fmt="none", ecolor="#ff8182", capsize=2)
        # One marker per point, each with its own id, so each gets its own hover title.
        for i in range(len(b)):
            gid = f"pt-{k}-{i}"
            ax.plot(x[i], y[i], "o", color="#cf222e" if on[i] else "#8c959f", gid=gid,
                    label=("Pareto front" if on[i] else "configuration"))
            titles[gid] = _point_title(b.iloc[i], ctx, label, x[i], bool(on[i]))
        order = np.argsort(x[on])
        ax.step(x[on][order], y[on][order], where="post", color="#cf222e", lw=1.2)
        if x.min() > 0 and x.max() / x.min() > 20:
            ax.set_xscale("log")
        ax.margins(x=0.08, y=0.12)
        ranks = b["rank"].to_numpy(dtype=float) if "rank" in b else np.full(len(b), np.nan)
        show = labelled(on, ranks)
        labels.append((ax, np.column_stack([x, y]),
                       [(x[i], y[i], f"{b['model'].iloc[i]} / {b['loss'].iloc[i]}")
                        for i in np.argsort(-y) if show[i]]))
        ax.xaxis.set_major_formatter(FuncFormatter(_short))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(f"mean {ctx.metric}")
        ax.grid(alpha=0.3)
        handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        ax.legend(handles.values(), handles.keys(), fontsize=8, loc="best")
    _place_labels(fig, labels)
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
    return (figure(figure_svg(fig, f"{ctx.metric} against {axes}", prefix="cost",
                              titles=titles),
                   f"One plot per cost: {esc(axes)} (means over the trials). "
                   f"Labelled: the Pareto front and the top {TOP_LABELS} of the leaderboard; "
                   "hover a point for its configuration and numbers. "
                   f"{esc(ctx.metric_label())}.")
            + "<p>The configurations on a front:</p>" + table(rows))


def _place_labels(fig: Figure, labels: list[Labels]) -> None:
    """Write each label beside its point, where it covers no other point, no label placed
    before it, nor the legend, and stays inside the axes: right of the point, else left, a
    line higher or lower at each try (labels are placed top down, so a crowded one moves
    below its neighbours); where no place is free, the one that covers least."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # runs the layout: the axes are where they will be drawn
    for ax, every, points in labels:
        frame = ax.get_window_extent(renderer)
        legend = ax.get_legend()
        taken = [legend.get_window_extent(renderer)] if legend else []
        if legend:  # "best" as the points alone put it: the labels must not move it
            corner = taken[0].transformed(ax.transAxes.inverted())
            legend.set_loc((corner.x0, corner.y0))
        r = MARKER_PX
        marks = [Bbox([[px - r, py - r], [px + r, py + r]])
                 for px, py in ax.transData.transform(every)]
        for x, y, text in points:
            own = ax.transData.transform((x, y))
            others = [m for m in marks if not m.contains(*own)]
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 3),
                              fontsize=LABEL_POINTS, color="#424a53")
            ann.set_in_layout(False)
            sides = (-1, 1) if own[0] > frame.x0 + 0.55 * frame.width else (1, -1)
            steps = [3 + 10 * ((j + 1) // 2) * (-1 if j % 2 else 1) for j in range(15)]
            best, best_cost = (sides[0], 3), np.inf
            for dy in steps:  # 3, -7, 13, -17, ...: a line further each try
                for side in sides:
                    ann.xyann = (6 * side, dy)
                    ann.set_horizontalalignment("left" if side > 0 else "right")
                    box = ann.get_window_extent(renderer)
                    inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and \
                        frame.y0 <= box.y0 and box.y1 <= frame.y1
                    # Covering a label is worse than covering a point; leaving the axes worst.
                    cost = (0 if inside else 100) + 10 * sum(box.overlaps(t) for t in taken) \
                        + sum(box.overlaps(m) for m in others)
                    if cost < best_cost:
                        best, best_cost = (side, dy), cost
                    if cost == 0:
                        break
                if best_cost == 0:
                    break
            ann.remove()
            # Moved away from its point: a thin line back to it.
            line = {"arrowstyle": "-", "color": "#afb8c1", "lw": 0.6, "shrinkA": 1,
                    "shrinkB": 4} if abs(best[1] - 3) > 10 else None
            ann = ax.annotate(text, (x, y), textcoords="offset points",
                              xytext=(6 * best[0], best[1]), arrowprops=line,
                              ha="left" if best[0] > 0 else "right", fontsize=LABEL_POINTS,
                              color="#424a53")
            ann.set_in_layout(False)
            taken.append(ann.get_window_extent(renderer))


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


def _short(value: float, _pos: int) -> str:
    """Axis numbers as 950, 1.2k, 45k, 3.4M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
