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
from zoo.datasets.mask_values import (
    IGNORED,
    MAX_VALUE,
    census,
    class_lut,
    mask_coding,
    warn_missing_classes,
)
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


def _targets(path: Path, key: str, y: np.ndarray, x: np.ndarray,
             ignore: bool) -> tuple[np.ndarray, int | None, str]:
    """y as (array, K if known from a last axis, format).

    Formats: ``indices`` (stored values, int64, x's shape without channels; their meaning
    is ``mask_values``'), ``onehot`` (one-hot y turned into class indices, ``IGNORED``
    where a row is all zero), ``float`` (probabilities (..., K) kept as they are: soft
    labels, or a one-channel mask or frame in [0, 1]).
    """
    spatial = x.shape[:-1]
    if y.shape == spatial:
        if not np.issubdtype(y.dtype, np.integer) and not np.array_equal(y, np.round(y)):
            raise _error(path, f"{key} has shape {y.shape} of class indices but holds "
                               f"non-integers")
        if y.size and y.min() < 0:
            raise _error(path, f"{key} holds negative class index {int(y.min())}")
        if y.size and y.max() > MAX_VALUE:
            raise _error(path, f"{key} holds class index {int(y.max())}; at most {MAX_VALUE}")
        return y.astype(np.int64, copy=False), None, "indices"
    if y.shape[:-1] == spatial and y.shape[-1] >= 1:
        if y.size and (np.isnan(y).any() if y.dtype.kind == "f" else False):
            raise _error(path, f"{key} holds NaN")
        low, high = (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)
        if y.shape[-1] == 1:
            if low < 0 or high > 1:
                kind = "integers" if np.issubdtype(y.dtype, np.integer) else "values"
                raise _error(path, f"{key} is a one-channel target {y.shape} of {kind} "
                                   f"{low:g}..{high:g}, outside [0, 1]; for class indices "
                                   f"store {key}[..., 0] (without the last axis), for a mask "
                                   f"in 0/255 divide it by 255")
            return y.astype(np.float32, copy=False), 1, "float"
        return _one_hot(path, key, y, ignore, low)
    if x.ndim == 4 and y.shape[:3] == (x.shape[0], x.shape[2], x.shape[3]):
        raise _error(path, f"x has shape {x.shape}, channels first, while {key} is {y.shape}; "
                           f"store x channels last: x.transpose(0, 2, 3, 1)")
    raise _error(path, f"{key} has shape {y.shape}, which does not match x {x.shape}; "
                       f"expected {spatial} (class indices) or {(*spatial, 'K')} (one-hot)")


def _one_hot(path: Path, key: str, y: np.ndarray, ignore: bool,
             low: float) -> tuple[np.ndarray, int, str]:
    """One-hot (or soft) y (..., K): indices when one-hot, else float; all-zero rows ignored."""
    k = int(y.shape[-1])
    sums = y.sum(-1, dtype=np.float64)
    empty = sums == 0
    if low < 0 or (sums > 1 + 1e-3).any() or ((sums < 1 - 1e-3) & ~empty).any():
        raise _error(path, f"{key} {y.shape} is neither one-hot nor probabilities: rows must "
                           f"be >= 0 and sum to 1")
    if empty.any() and not ignore:
        first = int(np.flatnonzero(empty.reshape(len(y), -1).any(1))[0])
        raise _error(path, f"{key} has {int(empty.sum()):,} pixels whose one-hot row is all "
                           f"zero (first in sample {first}); set ignore_index (any value, e.g. "
                           f"255) to leave them out of losses and metrics")
    if np.isin(y, (0, 1)).all():
        if empty.any() and k > IGNORED:
            raise _error(path, f"{key} has {k} classes; with ignored pixels at most {IGNORED}")
        indices = y.argmax(-1).astype(np.uint8 if k <= 256 else np.int32)
        indices[empty] = IGNORED  # one-hot encodes it back as an all-zero row
        return indices, k, "onehot"
    # Soft labels stay as they are: an argmax would make a uniform row class 0.
    return y.astype(np.float32, copy=False), k, "float"


def _fixed_split(file: Path, arrays: dict[str, np.ndarray], split: str, x: np.ndarray,
                 form: str, k: int | None, ignore: bool
                 ) -> tuple[np.ndarray, np.ndarray] | None:
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
    y_split, k_split, form_split = _targets(file, y_key, arrays[y_key], x_split, ignore)
    if form == "float" and form_split == "onehot" and k == k_split:
        y_split = arrays[y_key].astype(np.float32)  # soft y, hard y_val: both as they are
    elif form_split != form or (k and k_split and k != k_split):
        raise _error(file, f"y and {y_key} must be in the same format (indices or one-hot, "
                           f"same K)")
    return x_split, y_split


@register_dataset(
    "npz", options={"path": None, "classes": None, "val_fraction": 0.2, "test_fraction": 0.2,
                    "split_seed": 0, "task": "segmentation",
                    "ignore_index": None, "values": None, "binary": False},
    help={"path": "the .npz file: x, y and optionally x_val, y_val, x_test, y_test",
          "classes": "number of classes K (default: from y)",
          "val_fraction": "share of x, y split off for validation when there is no x_val",
          "test_fraction": "share of x, y held out for testing (drawn first, with split_seed) "
                           "when there is no x_test",
          "ignore_index": "class-index y: value of pixels to leave out of every loss and "
                          "metric (e.g. 255); one-hot y: any value, to ignore all-zero rows",
          "values": "class-index y: map of stored values to classes, e.g. {255: 1}",
          "binary": "class-index y: a value above half the largest found is foreground",
          "task": "segmentation, or next_frame: y the next frames, float (..., 1) in [0, 1] "
                  "(x e.g. the last k frames stacked as channels), scored by PSNR/SSIM"},
)
def build_npz(
    *, seed: int, path: str | os.PathLike | None, classes: int | None, val_fraction: float,
    test_fraction: float, split_seed: int, task: str, ignore_index: int | None,
    values: dict | None, binary: bool,
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
    if classes is not None:
        classes = check_int(_NAME, "classes", classes)
    coding = mask_coding(_NAME, classes, ignore_index, values, binary)
    ignore = coding.ignore_index is not None
    y, k, form = _targets(file, "y", y_raw, x, ignore)
    if form != "indices" and (coding.values or coding.binary):
        raise _error(file, "options values and binary apply to class-index y (x's shape "
                           "without channels), not to one-hot or float y")
    fixed = {split: _fixed_split(file, arrays, split, x, form, k, ignore)
             for split in ("val", "test")}
    # Splits without their own keys are drawn from x, y: test first, with split_seed, so
    # the test set stays put when the trial seed or val_fraction changes.
    fractions = {split: check_fraction(_NAME, f"{split}_fraction", fraction)
                 for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if fixed[split] is None}
    parts = holdout_indices(_NAME, len(x), fractions, np.random.default_rng([seed, 0x4E]),
                            split_rng(_NAME, split_seed, 0x4E))
    split_arrays = {name: (x[idx], y[idx]) for name, idx in parts.items()}
    split_arrays.update({name: pair for name, pair in fixed.items() if pair is not None})
    order = ("train", "val", "test")

    if form == "indices":
        def where(value: int) -> str:
            """The first sample holding ``value``, by key and index."""
            keys = {"train": "y", "val": "y_val" if fixed["val"] else "y",
                    "test": "y_test" if fixed["test"] else "y"}
            for name in order:
                hits = np.flatnonzero((split_arrays[name][1] == value).reshape(
                    len(split_arrays[name][1]), -1).any(1))
                if len(hits):
                    index = parts[name][hits[0]] if keys[name] == "y" else hits[0]
                    return f"{file} {keys[name]}[{int(index)}]"
            return str(file)

        lut, classes = class_lut(_NAME, coding, census([split_arrays[n][1] for n in order],
                                                        regions=False), where, regions=False)
        split_arrays = {n: (xs, lut[ys]) for n, (xs, ys) in split_arrays.items()}
    else:
        if classes is not None and k != classes:
            raise _error(file, f"y has {k} classes on its last axis but option classes={classes}")
        classes = k
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (split_arrays[n] for n in order)
    kind = "image" if x.ndim == 4 else "sequence"
    if task == "next_frame" and (form != "float" or classes != 1):
        raise _error(file, "task next_frame needs y as frames, float (..., 1) in [0, 1]")
    names = ["foreground"] if classes == 1 else ["background", *(f"class_{k}" for k in
                                                                 range(1, classes))]
    if y_train.dtype.kind in "ui":
        warn_missing_classes(_NAME, names, classes, {"train": y_train, "val": y_val,
                                                     "test": y_test})
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=classes, class_names=names,
                       kind=kind, task=task, x_test=x_test, y_test=y_test)
