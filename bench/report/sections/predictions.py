"""Sample predictions of each architecture's best run: input, ground truth, prediction."""

from __future__ import annotations

import re

from bench.report.context import ReportContext
from bench.report.files import table_png
from bench.report.html import esc, figure, note, png_img
from bench.report.registry import register_section
from bench.results.predictions import DPI, TITLE_POINTS

MAX_MODELS = 12  # architectures with a picture; more would make the report tens of MB
_CLASS = re.compile(r"^(?:val|test)_iou_class_(\d+)$")


def mask_colours(n_classes: int) -> list[str]:
    """The colour (``#rrggbb``) each class index 0..n-1 is drawn in by
    :func:`bench.results.predictions.save_predictions_png`: matplotlib's ``tab10`` over
    0..9 for two or more classes (indices past 9 share 9's colour); a one-channel mask is
    grey, black the background and white the foreground."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, to_hex

    if n_classes <= 1:
        return ["#000000", "#ffffff"]
    cmap, norm = colormaps["tab10"], Normalize(vmin=0, vmax=9, clip=True)
    return [to_hex(cmap(norm(k))) for k in range(n_classes)]


def legend(ctx: ReportContext) -> str:
    """The colour key of the masks (ground truth and prediction), with the dataset's class
    names; "" when the trials record no classes (next frames: the pictures are frames)."""
    indices = sorted({int(m.group(1)) for c in ctx.trials if (m := _CLASS.match(c))}
                     | set(ctx.class_names()))
    if not indices:
        return ""
    n = max(indices) + 1
    colours = mask_colours(n)
    names = [ctx.class_label(k) for k in range(max(n, 2))]
    items = "".join(f'<span><span class="swatch" style="background:{c}"></span>'
                    f"{esc(name)}</span>" for c, name in zip(colours, names, strict=False))
    shared = " (classes past the tenth share its colour)" if n > 10 else ""
    return (f'<div class="legend" role="list" aria-label="mask colours"><b>Mask colours'
            f"{shared}:</b>{items}</div>")


@register_section("predictions", title="Sample predictions")
def render(ctx: ReportContext) -> str:
    """For each architecture, its best trial's validation samples as the sweep saved them
    (input, ground truth, prediction), and the colour of each class in the masks."""
    return ctx.per_dataset(_render)


def _render(ctx: ReportContext) -> str:
    """The section for one dataset's part of the sweep (all of it, for one dataset)."""
    done = ctx.finished
    cells, missing = [], []
    models = list(dict.fromkeys(ctx.board["model"].astype(str)))  # best first
    for model in models[:MAX_MODELS]:
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
    out = f'<div class="gallery">{"".join(cells)}</div>' + legend(ctx) if cells else ""
    if len(models) > MAX_MODELS:
        out += (f"<p>The best {MAX_MODELS} of {len(models)} architectures are shown; every "
                "trial's picture is in MLflow and under the results folder "
                "(<code>predictions_png</code> in trials.parquet).</p>")
    if missing:
        out += note("Missing pictures:<br>" + "<br>".join(missing))
    return out
