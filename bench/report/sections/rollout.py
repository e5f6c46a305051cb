"""Next-frame rollout: test PSNR 1, 2, ... n steps ahead, predictions fed back as input."""

from __future__ import annotations

import re

import pandas as pd
from matplotlib.figure import Figure

from bench.report.context import ReportContext
from bench.report.html import figure, figure_img, note, table
from bench.report.registry import register_section

STEP_COLUMN = re.compile(r"^test_psnr_step_(\d+)$")


def step_means(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean test PSNR per model x loss (rows) and step ahead (columns 1..n), over trials."""
    steps = sorted((int(m.group(1)), c) for c in trials
                   if (m := STEP_COLUMN.match(c)) and trials[c].notna().any())
    if not steps:
        return pd.DataFrame()
    means = trials.groupby(["model", "loss"], sort=True)[[c for _, c in steps]].mean()
    means.columns = [k for k, _ in steps]
    return means


@register_section("rollout", title="Rollout: next frames predicted from predictions")
def render(ctx: ReportContext) -> str:
    """Mean test PSNR (dB) of each model x loss at 1..n steps ahead, each prediction fed
    back as the next input; a line falling fast marks a model whose predictions blur."""
    if step_means(ctx.finished).empty:
        return ""  # not next-frame prediction, or nothing tested: the section is left out
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    means = step_means(ctx.finished)
    if means.empty:
        return note("No rollout: the sweep is not next-frame prediction, or no trial was "
                    "tested (test_psnr_step_k columns).")
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for (model, loss), row in means.iterrows():
        ax.plot(row.index, row.to_numpy(dtype=float), marker="o", label=f"{model} · {loss}")
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("test PSNR (dB)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    shown = means.round(2).reset_index()
    shown.columns = ["model", "loss", *(f"step {k}" for k in means.columns)]
    return (figure(figure_img(fig, "test PSNR by steps ahead"),
                   "Step 1 is the ordinary next-frame prediction; step k feeds k - 1 "
                   "predictions back (sequence models frame by frame with their state, image "
                   "models by shifting their window of stacked frames).")
            + table(shown))
