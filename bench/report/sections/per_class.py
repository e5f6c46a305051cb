"""Per-class IoU of the top configurations."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.report.context import ReportContext
from bench.report.html import PAGE_INCHES, figure, figure_img, note, table
from bench.report.registry import register_section

TOP = 5
BARS_UP_TO = 6  # classes drawn as grouped bars; more become a configurations x classes heat map
CLASSES_AS_COLUMNS = 12  # more classes: the table turns, a row per class
_CLASS = re.compile(r"^(?:val|test)_iou_class_(\d+)$")


def class_columns(columns: list[str], split: str = "val") -> list[str]:
    """The ``{split}_iou_class_k`` columns, ordered by k."""
    found = [(int(m.group(1)), c) for c in columns
             if (m := _CLASS.match(c)) and c.startswith(f"{split}_")]
    return [c for _, c in sorted(found)]


@register_section("per_class", title="Per-class IoU")
def render(ctx: ReportContext) -> str:
    """IoU of each class (mean over finished trials) for the top configurations: where the
    mean hides a class the model never finds."""
    if not class_columns(list(ctx.trials.columns)) and not class_columns(
            list(ctx.trials.columns), "test"):
        return ""  # no per-class IoU recorded (not segmentation): the section is left out
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    # The split the leaderboard ranks on: test when it reports the test metric.
    split = "test" if ctx.metric.startswith("test_") else "val"
    done = ctx.finished
    cols = [c for c in class_columns(list(ctx.trials.columns), split)
            if done[c].notna().any()] or class_columns(list(ctx.trials.columns))
    split = cols[0].split("_", 1)[0] if cols else split
    top = ctx.board[ctx.board["count"] > 0].head(TOP)
    if not cols:
        return note("The trials have no val_iou_class_k columns (no per-class IoU recorded).")
    if top.empty:
        return note("No finished trial: no per-class IoU to show.")
    rows = []
    for _, r in top.iterrows():
        g = done[(done["model"] == r["model"]) & (done["loss"] == r["loss"])
                 & (done["dataset"] == r["dataset"])]
        rows.append({"configuration": f"#{r['rank']} {r['model']} / {r['loss']}",
                     **{c: float(g[c].astype(float).mean()) for c in cols}})
    frame = pd.DataFrame(rows)
    # Names from the dataset (cases.parquet), else "class k".
    labels = [ctx.class_label(int(_CLASS.match(c).group(1))) for c in cols]
    values = frame[cols].to_numpy(dtype=float)
    n, k = values.shape
    # A figure wider than the page (PAGE_INCHES at the report's 110 dpi) is shrunk and its
    # labels with it (issue 14: 11 classes were ~5 px). Many classes become a heat map.
    fig = _heat_map(values, labels, list(frame["configuration"])) if k > BARS_UP_TO \
        else _bars(values, labels, list(frame["configuration"]))
    shown = frame.rename(columns=dict(zip(cols, labels, strict=True)))
    for c in labels:
        shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    if k > CLASSES_AS_COLUMNS:  # a column per class would run off the page
        shown = shown.set_index("configuration").T.rename_axis("class").reset_index()
    return figure(figure_img(fig, "per-class IoU of the top configurations"),
                  f"Top {n} configurations by {ctx.metric}: IoU per class on the {split} "
                  + ("split." if ctx.class_names() else "split; class 0 is the background.")) \
        + table(shown, wrap_columns=("configuration",))


def _bars(values: np.ndarray, labels: list[str], names: list[str]) -> Figure:
    """Grouped bars: ``values`` (n configurations, k classes), within the page's width."""
    n, k = values.shape
    fig = Figure(figsize=(min(PAGE_INCHES, max(6.0, 0.9 * k * n / 2 + 3)), 3.6),
                 layout="constrained")  # the legend right of the axes, inside the figure
    ax = fig.add_subplot()
    width = 0.8 / n
    for i in range(n):
        ax.bar(np.arange(k) + (i - (n - 1) / 2) * width, np.nan_to_num(values[i]), width,
               label=names[i], color=f"C{i}")
    ax.set_xticks(range(k), labels)
    ax.set_ylabel("IoU")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    return fig


def _heat_map(values: np.ndarray, labels: list[str], names: list[str]) -> Figure:
    """Configurations (rows) x classes (columns), each cell's IoU written in it; the width
    stays within the page and the height grows with the configurations."""
    n, k = values.shape
    fig = Figure(figsize=(min(PAGE_INCHES, 3.5 + 0.75 * k), 1.2 + 0.45 * n),
                 layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(k), [label.removeprefix("class ") for label in labels], fontsize=9,
                  rotation=30 if max(map(len, labels)) > 4 else 0, ha="right"
                  if max(map(len, labels)) > 4 else "center")
    ax.set_yticks(range(n), names, fontsize=9)
    ax.set_xlabel("class")
    cell = fig.get_figwidth() / (k + 5)  # inches a class gets, roughly
    for i in range(n):
        for j in range(k):
            if np.isfinite(values[i, j]) and cell >= 0.4:  # else only the table has numbers
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] < 0.5 else "black")
    fig.colorbar(image, ax=ax, label="IoU", fraction=0.03)
    return fig
