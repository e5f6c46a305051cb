"""Accuracy against cost (parameters, FLOPs, latency, memory, training time), with the Pareto
front marked: one plot per cost the trials recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from bench.report.context import ReportContext
from bench.report.html import esc, figure, figure_img, note, table
from bench.report.registry import register_section

# The cost axes (column, label), lower is cheaper; one plot each that the leaderboard has.
COSTS = (("n_params", "parameters"), ("flops_mean", "forward FLOPs per sample"),
         ("latency_ms_mean", "latency, batch 1 (ms)"), ("peak_memory_mb_mean", "peak memory (MiB)"),
         ("train_seconds_mean", "training time (s)"))
COLUMNS_PER_ROW = 3
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
    mean, std = f"{ctx.metric}_mean", f"{ctx.metric}_std"
    board = ctx.board[np.isfinite(ctx.board[mean].astype(float))]
    usable = [(c, label) for c, label in COSTS
              if c in board and board[c].astype(float).notna().any()]
    if board.empty or not usable:
        return note("No finished trial with a recorded cost: nothing to plot.")
    ncols = min(COLUMNS_PER_ROW, len(usable))
    nrows = -(-len(usable) // ncols)
    fig = Figure(figsize=(5.8 * ncols, 4.6 * nrows), layout="constrained")
    on_front = pd.DataFrame(False, index=board.index, columns=[label for _, label in usable])
    for k, (col, label) in enumerate(usable):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        b = board[board[col].astype(float).notna()]
        x, y = b[col].to_numpy(dtype=float), b[mean].to_numpy(dtype=float)
        err = b[std].fillna(0).to_numpy(dtype=float)
        on = pareto_front(x, y, ctx.mode)
        on_front.loc[b.index[on], label] = True
        ax.errorbar(x[~on], y[~on], yerr=err[~on], fmt="o", color="#8c959f", ecolor="#d0d7de",
                    capsize=2, label="configuration")
        ax.errorbar(x[on], y[on], yerr=err[on], fmt="o", color="#cf222e", ecolor="#ff8182",
                    capsize=2, label="Pareto front")
        order = np.argsort(x[on])
        ax.step(x[on][order], y[on][order], where="post", color="#cf222e", lw=1.2)
        if x.min() > 0 and x.max() / x.min() > 20:
            ax.set_xscale("log")
        # Labels stay inside the axes: those of points in the right part point left.
        ax.margins(x=0.08, y=0.12)
        ax.autoscale_view()
        f = np.log10 if ax.get_xscale() == "log" else (lambda v: v)
        lo_x, hi_x = (f(v) for v in ax.get_xlim())
        placed: list[tuple[float, float, bool]] = []  # labels so far: x, y (pixels), side
        ranks = b["rank"].to_numpy(dtype=float) if "rank" in b else np.full(len(b), np.nan)
        show = labelled(on, ranks)
        for i in np.argsort(-y):  # top down, so a crowded label moves below its neighbours
            if not show[i]:
                continue
            left = (f(x[i]) - lo_x) / (hi_x - lo_x) > 0.55
            px, py = ax.transData.transform((x[i], y[i]))
            dy = 3.0
            # Same side, near in x and y: step down a line (fontsize 7 ≈ 10 px at 110 dpi).
            while any(side == left and abs(qx - px) < 80 and abs(qy - (py + dy)) < 10
                      for qx, qy, side in placed):
                dy -= 9.0
            placed.append((px, py + dy, left))
            ann = ax.annotate(f"{b['model'].iloc[i]} / {b['loss'].iloc[i]}", (x[i], y[i]),
                              textcoords="offset points", xytext=(-6 if left else 6, dy),
                              ha="right" if left else "left", fontsize=7, color="#424a53")
            ann.set_in_layout(False)
        ax.xaxis.set_major_formatter(FuncFormatter(_short))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(f"mean {ctx.metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
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
    return (figure(figure_img(fig, f"{ctx.metric} against {axes}"),
                   f"One plot per cost: {esc(axes)} (means over the trials). "
                   f"Labelled: the Pareto front and the top {TOP_LABELS} of the leaderboard. "
                   f"{esc(ctx.metric_label())}.")
            + "<p>The configurations on a front:</p>" + table(rows))


def _short(value: float, _pos: int) -> str:
    """Axis numbers as 950, 1.2k, 45k, 3.4M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
