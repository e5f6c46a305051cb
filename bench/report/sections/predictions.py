"""Sample predictions of each architecture's best run: input, ground truth, prediction."""

from __future__ import annotations

from bench.report.context import ReportContext
from bench.report.files import table_png
from bench.report.html import esc, figure, note, png_img
from bench.report.registry import register_section
from bench.results.predictions import DPI, TITLE_POINTS


@register_section("predictions", title="Sample predictions")
def render(ctx: ReportContext) -> str:
    """For each architecture, its best trial's validation samples as the sweep saved them
    (input, ground truth, prediction)."""
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    done = ctx.finished
    cells, missing = [], []
    for model in dict.fromkeys(ctx.board["model"].astype(str)):  # best first
        rows = ctx.board[(ctx.board["model"] == model) & (ctx.board["count"] > 0)]
        if rows.empty:
            missing.append(f"<b>{esc(model)}</b>: no finished trial")
            continue
        best = rows.iloc[0]  # the board is sorted by rank: this is the model's best loss
        trial = done[done["trial_id"].astype(str) == str(best["best_trial_id"])]
        rel = trial["predictions_png"].iloc[0] if "predictions_png" in trial and len(trial) \
            else None
        what = (f"{esc(model)} / {esc(best['loss'])}, trial <code>{esc(best['best_trial_id'])}"
                f"</code>, {esc(ctx.metric)} = {best[f'{ctx.metric}_best']:.4f}")
        # Only a PNG inside the results folder is read (a results folder is data).
        found = table_png(ctx.results_dir, rel, column="predictions_png",
                          row=f"trial {best['best_trial_id']}")
        if found.data is None:
            missing.append(f"{what}: {esc(found.skipped)}")
            continue
        # Drawn by bench.results.predictions: its titles are its smallest text.
        img = png_img(found.data, f"predictions of {model}",
                      min_font_px=TITLE_POINTS * DPI / 72)
        cells.append(figure(img, what))
    out = f'<div class="gallery">{"".join(cells)}</div>' if cells else ""
    if missing:
        out += note("Missing pictures:<br>" + "<br>".join(missing))
    return out
