"""A PNG of a few validation samples: input, ground truth and prediction side by side
(next frames: the last input frame, and the absolute error as a fourth panel)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

#: The pictures' resolution and their titles' size: the report shows them at their own
#: size, where a title is TITLE_POINTS * DPI / 72 = 10 px tall.
DPI = 80
TITLE_POINTS = 9


#: Each panel's cell, in pixels: an image is scaled by a whole factor (nearest neighbour,
#: as ``imshow(interpolation="nearest")``) to fit it, then centred; gaps between cells.
PANEL_PX = 144
GAP_PX = 8
TITLE_PX = 18


def _picture(array: np.ndarray, task: str) -> tuple[np.ndarray, str, float | None, float | None]:
    """One (H, W, K) target or prediction as ``(image, colour map, vmin, vmax)``.

    K >= 2: class labels by argmax (``tab10`` over 0..9; indices past 9 take 9's colour);
    K == 1: a binary mask for segmentation (threshold 0.5, as the metrics do) or the
    greyscale frame itself for next-frame prediction.
    """
    if array.shape[-1] >= 2:
        return array.argmax(-1), "tab10", 0.0, 9.0
    frame = array[..., 0]
    if task == "segmentation":
        frame = (frame >= 0.5).astype(np.float32)
    return frame, "gray", 0.0, 1.0


def _input_picture(x: np.ndarray) -> tuple[np.ndarray, str | None, float | None, float | None]:
    """One (H, W, C) input: RGB as is (clipped to [0, 1]), anything else its first channel
    in grey over its own range."""
    if x.shape[-1] == 3:
        return np.clip(x, 0.0, 1.0), None, None, None
    return x[..., 0], "gray", None, None


def _rgb(image: np.ndarray, cmap: str | None, vmin: float | None,
         vmax: float | None) -> np.ndarray:
    """(h, w) values through ``cmap`` on [vmin, vmax] (its own range when None; outside it
    the end colours), or (h, w, 3) RGB as is: (h, w, 3) uint8."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    if cmap is None:
        return (np.asarray(image, dtype=np.float64) * 255).round().astype(np.uint8)
    values = np.asarray(image, dtype=np.float64)
    norm = Normalize(vmin=vmin, vmax=vmax, clip=True)
    colours = colormaps[cmap](norm(values), bytes=True)  # NaN: the "bad" colour
    return colours[..., :3]


def _fit(rgb: np.ndarray, size: int = PANEL_PX) -> np.ndarray:
    """``rgb`` (h, w, 3) scaled by a whole factor to fit a ``size`` square: repeated
    pixels when small, every n-th pixel when large (nearest neighbour either way)."""
    longest = max(rgb.shape[:2])
    if longest > size:
        step = -(-longest // size)
        return rgb[::step, ::step]
    factor = size // longest
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def save_predictions_png(
    x: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, task: str, path: str | Path
) -> Path:
    """Write a grid of ``len(x)`` rows (input | ground truth | prediction [| |error|]).

    Next frames (``task="next_frame"``) show the latest input frame and a fourth panel,
    the absolute error |truth - prediction| on [0, 1]. The panels are composed as one
    image under a strip of titles that matplotlib draws once per process
    (``_title_strip``), and Pillow writes the PNG: 0.01 s at every trial's end, against
    0.1 s for drawing the whole picture as a figure and 0.16-0.2 s for a grid of
    ``imshow`` Axes; the pixels are the figure's.

    Args:
        x: inputs, (N, H, W, C) or, for sequences, (N, T, H, W, C) (the last frame is shown).
        y_true, y_pred: targets and predictions, (N, H', W', K) or (N, T, H', W', K).
        task: ``segmentation`` or ``next_frame`` (how K == 1 outputs are drawn).
        path: where the PNG goes.
    """
    from PIL import Image

    if x.ndim == 5:  # sequences: show the last frame
        x, y_true, y_pred = x[:, -1], y_true[:, -1], y_pred[:, -1]
    next_frame = task == "next_frame"
    if next_frame:  # the latest input frame (the last of the frames stacked as channels)
        x = x[..., -1:]
    titles = ("input", "ground truth", "prediction") + (("absolute error",) if next_frame
                                                        else ())
    rows, width = len(x), _grid_width(len(titles))
    height = TITLE_PX + rows * (PANEL_PX + GAP_PX)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    canvas[:TITLE_PX] = _title_strip(titles)
    for i in range(rows):
        panels = [_input_picture(x[i]), _picture(y_true[i], task), _picture(y_pred[i], task)]
        if next_frame:
            error = np.abs(y_true[i][..., 0] - y_pred[i][..., 0])
            panels.append((error, "magma", 0.0, 1.0))
        for j, panel in enumerate(panels):
            image = _fit(_rgb(*panel))
            h, w = image.shape[:2]
            top = TITLE_PX + i * (PANEL_PX + GAP_PX) + (PANEL_PX - h) // 2
            left = GAP_PX + j * (PANEL_PX + GAP_PX) + (PANEL_PX - w) // 2
            canvas[top:top + h, left:left + w] = image
    path = Path(path)
    Image.fromarray(canvas).save(path, format="PNG", dpi=(DPI, DPI))
    return path


def _grid_width(cols: int) -> int:
    """Pixels across a picture of ``cols`` panels: the panels and a gap around each."""
    return cols * PANEL_PX + (cols + 1) * GAP_PX


@lru_cache(maxsize=4)
def _title_strip(titles: tuple[str, ...]) -> np.ndarray:
    """The (TITLE_PX, width, 3) uint8 strip of ``titles``, each centred over its column,
    in dark ink on white: drawn by matplotlib (its font, at ``TITLE_POINTS``) once per
    process and set of titles, then reused for every picture."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = _grid_width(len(titles))
    fig = Figure(figsize=(width / DPI, TITLE_PX / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    for j, title in enumerate(titles):
        centre = GAP_PX + j * (PANEL_PX + GAP_PX) + PANEL_PX / 2
        fig.text(centre / width, 3 / TITLE_PX, title, ha="center", va="bottom",
                 fontsize=TITLE_POINTS)
    canvas.draw()
    strip = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    strip.flags.writeable = False  # shared by every call: nobody may draw on it
    return strip
