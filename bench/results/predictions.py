"""A PNG of a few validation samples: input, ground truth and prediction side by side
(next frames: the last input frame, and the absolute error as a fourth panel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The pictures' resolution and their titles' size: the report shows them at their own
#: size, where a title is TITLE_POINTS * DPI / 72 = 10 px tall.
DPI = 80
TITLE_POINTS = 9


def _picture(array: np.ndarray, task: str) -> tuple[np.ndarray, dict]:
    """One (H, W, K) target or prediction as an image plus ``imshow`` keywords.

    K >= 2: class labels by argmax; K == 1: a binary mask for segmentation (threshold
    0.5, as the metrics do) or the greyscale frame itself for next-frame prediction.
    """
    if array.shape[-1] >= 2:
        return array.argmax(-1), {"cmap": "tab10", "vmin": 0, "vmax": 9, "interpolation": "nearest"}
    frame = array[..., 0]
    if task == "segmentation":
        frame = (frame >= 0.5).astype(np.float32)
    return frame, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, "interpolation": "nearest"}


def _input_picture(x: np.ndarray) -> tuple[np.ndarray, dict]:
    """One (H, W, C) input: RGB as is, anything else its first channel in grey."""
    if x.shape[-1] == 3:
        return np.clip(x, 0.0, 1.0), {}
    return x[..., 0], {"cmap": "gray"}


def save_predictions_png(
    x: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, task: str, path: str | Path
) -> Path:
    """Write a grid of ``len(x)`` rows (input | ground truth | prediction [| |error|]).

    Next frames (``task="next_frame"``) show the latest input frame and a fourth panel,
    the absolute error |truth - prediction| on [0, 1].

    Args:
        x: inputs, (N, H, W, C) or, for sequences, (N, T, H, W, C) (the last frame is shown).
        y_true, y_pred: targets and predictions, (N, H', W', K) or (N, T, H', W', K).
        task: ``segmentation`` or ``next_frame`` (how K == 1 outputs are drawn).
        path: where the PNG goes.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    import matplotlib.pyplot as plt

    if x.ndim == 5:  # sequences: show the last frame
        x, y_true, y_pred = x[:, -1], y_true[:, -1], y_pred[:, -1]
    next_frame = task == "next_frame"
    if next_frame:  # the latest input frame (the last of the frames stacked as channels)
        x = x[..., -1:]
    titles = ("input", "ground truth", "prediction") + (("absolute error",) if next_frame
                                                        else ())
    rows = len(x)
    fig, axes = plt.subplots(rows, len(titles), figsize=(2 * len(titles), 2 * rows),
                             squeeze=False)
    for i in range(rows):
        panels = [_input_picture(x[i]), _picture(y_true[i], task), _picture(y_pred[i], task)]
        if next_frame:
            error = np.abs(y_true[i][..., 0] - y_pred[i][..., 0])
            panels.append((error, {"cmap": "magma", "vmin": 0.0, "vmax": 1.0,
                                   "interpolation": "nearest"}))
        for ax, title, (image, style) in zip(axes[i], titles, panels, strict=True):
            ax.imshow(image, **style)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=TITLE_POINTS)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
