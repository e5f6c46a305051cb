"""Per-case test scores: model outputs and targets to label maps, then ``zoo.case_metrics``.

A case is one test image; a sequence of T frames gives T cases (N*T in all), numbered in
order. Rows are one per case x class with ``dice``, ``iou``, ``nsd`` and ``hd95`` (NaN
where the class is absent from both the truth and the prediction of that case).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common.names import CASE_METRICS


def label_maps(y: np.ndarray) -> np.ndarray:
    """Integer label maps (N, H, W) of targets or outputs (N, H, W, K) or (N, T, H, W, K).

    K >= 2: argmax over classes; K == 1: 1 where y >= 0.5 (the metrics' threshold).
    Sequences become N*T frames, frame t of sequence n at index n*T + t.
    """
    y = np.asarray(y)
    y = y.reshape(-1, *y.shape[-3:])
    if y.shape[-1] >= 2:
        return y.argmax(-1).astype(np.int32)
    return (y[..., 0] >= 0.5).astype(np.int32)


def case_frame(truth: np.ndarray, pred: np.ndarray, n_classes: int, class_names: list[str],
               tolerance: float) -> pd.DataFrame:
    """One row per case x class (``CASE_COLUMNS``) from targets and outputs (..., K).

    Args:
        truth, pred: (N, H, W, K) or (N, T, H, W, K) targets and model outputs.
        n_classes: K; K == 1 scores the foreground only (class_index 1).
        class_names: the dataset's names, one per class (one name when K == 1).
        tolerance: NSD tolerance in pixels.
    """
    from zoo.case_metrics import case_scores, truth_labels

    # Truth pixels a dataset ignores (``ignore_index``: all-zero target rows) are scored
    # nowhere, the prediction there included; argmax would call them background.
    truth_maps = truth_labels(np.asarray(truth).reshape(-1, *np.shape(truth)[-3:]))
    scores = case_scores(truth_maps, label_maps(pred), n_classes, tolerance)
    index = np.asarray(scores["class_index"], dtype=np.int64)
    if n_classes == 1:  # only the foreground is scored; it is the dataset's one name
        names = [class_names[-1] if class_names else "foreground"] * len(index)
    else:
        names = [class_names[k] if k < len(class_names) else str(k) for k in index]
    frame = pd.DataFrame({"case": np.asarray(scores["case"], dtype=np.int64),
                          "class_index": index, "class_name": names})
    for metric in CASE_METRICS:
        frame[metric] = np.asarray(scores[metric], dtype=np.float64)
    frame["class_name"] = frame["class_name"].astype("string")
    return frame


def case_mean_column(metric: str) -> str:
    """``test_case_<metric>_fg``: the per-trial mean of a per-case score over the
    foreground classes."""
    return f"test_case_{metric}_fg"


def case_means(frame: pd.DataFrame | None) -> dict[str, float]:
    """``test_case_<metric>_fg``: the mean over the non-NaN case x class rows of the
    foreground classes (NaN when none, or no frame).

    Class 0 (the background) is left out, as MONAI's ``include_background=False`` and
    nnU-Net do: with K >= 2 classes its near-perfect scores would swamp the objects'. A
    K == 1 frame scores the foreground only (``class_index`` 1), so nothing is left out.
    """
    rows = frame[frame["class_index"] != 0] if frame is not None and len(frame) else None
    means = {}
    for metric in CASE_METRICS:
        values = rows[metric].dropna() if rows is not None else []
        means[case_mean_column(metric)] = float(np.mean(values)) if len(values) else math.nan
    return means


def predict_cases(predict: Callable[[Any], Any],
                  dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(targets, outputs) of every element of a batched ``(x, y[, w])`` dataset, in order;
    ``predict`` maps a batch of inputs to the model's outputs."""
    truths, preds = [], []
    for batch in dataset:
        truths.append(np.asarray(batch[1]))
        preds.append(np.asarray(predict(batch[0])))
    return np.concatenate(truths), np.concatenate(preds)


def write_cases(frame: pd.DataFrame, path: Path) -> Path:
    """Save the rows to travel back with the trial's final checkpoint."""
    frame.to_parquet(path, index=False)
    return path
