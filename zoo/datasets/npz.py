"""``npz``: arrays from a NumPy ``.npz`` file.

Keys: ``x`` and ``y``, optionally ``x_val`` and ``y_val`` (else ``val_fraction`` of
the samples are split off) and ``x_test`` and ``y_test`` (else ``test_fraction`` of
the samples are split off, drawn first with ``split_seed``, the same for every trial
seed; validation is then drawn from the rest with the trial's seed). x is (N, H, W),
(N, H, W, C) or, for sequences, (N, T, H, W, C); uint8 in [0, 255] or float in
[0, 1]. y is either class-index masks (x's shape without channels, integers) or
per-pixel targets with a last axis of K (one-hot for K >= 2, a binary mask or frame for K == 1).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from zoo.datasets.arrays import SplitArrays
from zoo.datasets.info import DATASET_TASKS
from zoo.datasets.options import (
    check_choice,
    check_fraction,
    check_int,
    holdout_indices,
    split_rng,
)
from zoo.datasets.registry import register_dataset

_NAME = "npz"


def _error(path: Path, message: str) -> ValueError:
    return ValueError(f"dataset {_NAME!r}: {path}: {message}")


def _inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """x with a channel axis, checked for rank and value range.

    Rank 3 is (N, H, W) greyscale, rank 4 (N, H, W, C), rank 5 (N, T, H, W, C):
    sequences need their channel axis, as (N, T, H, W) would read as images.
    """
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim not in (4, 5):
        raise _error(path, f"{key} has shape {x.shape}; expected (N, H, W[, C]) or "
                           f"(N, T, H, W, C)")
    if np.issubdtype(x.dtype, np.floating):
        if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
            raise _error(path, f"{key} holds floats outside [0, 1]; scale it or store uint8")
        return x.astype(np.float32, copy=False)
    if x.dtype != np.uint8:
        raise _error(path, f"{key} has dtype {x.dtype}; expected uint8 or float in [0, 1]")
    return x


def _targets(path: Path, key: str, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int | None]:
    """(y as class indices or float (..., 1), K if known from a one-hot axis)."""
    spatial = x.shape[:-1]
    if y.shape == spatial:
        if not np.issubdtype(y.dtype, np.integer) and not np.array_equal(y, np.round(y)):
            raise _error(path, f"{key} has shape {y.shape} of class indices but holds "
                               f"non-integers")
        if y.size and y.min() < 0:
            raise _error(path, f"{key} holds negative class index {int(y.min())}")
        return y.astype(np.int64, copy=False), None
    if y.shape[:-1] == spatial and y.shape[-1] >= 1:
        if y.shape[-1] == 1:
            return y.astype(np.float32, copy=False), 1
        # One-hot: store the index, the pipeline re-expands it (K times less memory).
        return y.argmax(-1), int(y.shape[-1])
    raise _error(path, f"{key} has shape {y.shape}, which does not match x {x.shape}; "
                       f"expected {spatial} (class indices) or {(*spatial, 'K')} (one-hot)")


def _fixed_split(file: Path, arrays: dict[str, np.ndarray], split: str, x: np.ndarray,
                 y: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x_<split>, y_<split>)`` read and checked against the training x, y; None if absent."""
    x_key, y_key = f"x_{split}", f"y_{split}"
    if (x_key in arrays) != (y_key in arrays):
        raise _error(file, f"{x_key} and {y_key} must be given together")
    if x_key not in arrays:
        return None
    x_split = _inputs(file, x_key, arrays[x_key])
    if x_split.shape[1:] != x.shape[1:]:
        raise _error(file, f"{x_key} has shape {x_split.shape}, x has {x.shape}; "
                           f"samples must match")
    if len(x_split) != len(arrays[y_key]):
        raise _error(file, f"{x_key} has {len(x_split)} samples but {y_key} has "
                           f"{len(arrays[y_key])}")
    y_split, k_split = _targets(file, y_key, arrays[y_key], x_split)
    if y_split.dtype.kind != y.dtype.kind or (k and k_split and k != k_split):
        raise _error(file, f"y and {y_key} must be in the same format (indices or one-hot, "
                           f"same K)")
    return x_split, y_split


@register_dataset(
    "npz", options={"path": None, "classes": None, "val_fraction": 0.2, "test_fraction": 0.2,
                    "split_seed": 0, "task": "segmentation"},
    help={"path": "the .npz file: x, y and optionally x_val, y_val, x_test, y_test",
          "classes": "number of classes K (default: from y)",
          "val_fraction": "share of x, y split off for validation when there is no x_val",
          "test_fraction": "share of x, y held out for testing (drawn first, with split_seed) "
                           "when there is no x_test",
          "task": "segmentation, or next_frame: y the next frames, float (..., 1) in [0, 1] "
                  "(x e.g. the last k frames stacked as channels), scored by PSNR/SSIM"},
)
def build_npz(
    *, seed: int, path: str | os.PathLike | None, classes: int | None, val_fraction: float,
    test_fraction: float, split_seed: int, task: str,
) -> SplitArrays:
    """Arrays x, y (optionally x_val, y_val and x_test, y_test) from a .npz file."""
    if path is None:
        raise ValueError(f"dataset {_NAME!r}: option path is required (a .npz file)")
    task = check_choice(_NAME, "task", task, DATASET_TASKS)
    file = Path(path).expanduser()
    if not file.is_file():
        raise _error(file, "no such file")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _error(file, f"cannot read: {exc}") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise _error(file, f"missing key {', '.join(missing)}; found {', '.join(arrays) or 'none'} "
                           f"(expected x, y and optionally x_val, y_val, x_test, y_test)")

    y_raw = arrays["y"]
    x = _inputs(file, "x", arrays["x"])
    if len(x) != len(y_raw):
        raise _error(file, f"x has {len(x)} samples but y has {len(y_raw)}")
    y, k = _targets(file, "y", y_raw, x)
    fixed = {split: _fixed_split(file, arrays, split, x, y, k) for split in ("val", "test")}
    # Splits without their own keys are drawn from x, y: test first, so the test set
    # stays put when val_fraction changes.
    fractions = {split: check_fraction(_NAME, f"{split}_fraction", fraction)
                 for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if fixed[split] is None}
    parts = holdout_indices(_NAME, len(x), fractions, np.random.default_rng([seed, 0x4E]),
                            split_rng(_NAME, split_seed, 0x4E))
    split_arrays = {name: (x[idx], y[idx]) for name, idx in parts.items()}
    split_arrays.update({name: pair for name, pair in fixed.items() if pair is not None})
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        split_arrays[name] for name in ("train", "val", "test"))
    every_y = (y_train, y_val, y_test)

    if classes is not None:
        classes = check_int(_NAME, "classes", classes)
        if k is not None and k != classes:
            raise _error(file, f"y has {k} classes on its last axis but option classes={classes}")
    else:
        indices = y.dtype.kind == "i"
        top = max(int(part.max(initial=0)) for part in every_y) if indices else 0
        classes = k if k is not None else max(2, top + 1)
    if y.dtype.kind == "i":
        top = max(int(part.max(initial=0)) for part in every_y)
        if top >= max(classes, 2):
            raise _error(file, f"class index {top} out of range; allowed 0..{max(classes, 2) - 1}")
        index_dtype = np.uint8 if classes <= 256 else np.int32  # compact in memory
        y_train, y_val, y_test = (part.astype(index_dtype) for part in every_y)
    kind = "image" if x.ndim == 4 else "sequence"
    if task == "next_frame" and (y.dtype.kind == "i" or classes != 1):
        raise _error(file, "task next_frame needs y as frames, float (..., 1) in [0, 1]")
    names = ["foreground"] if classes == 1 else ["background", *(f"class_{k}" for k in
                                                                 range(1, classes))]
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=classes, class_names=names,
                       kind=kind, task=task, x_test=x_test, y_test=y_test)
