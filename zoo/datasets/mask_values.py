"""From the values stored in masks to class indices: what the masks mean, not raw pixels.

Shared by ``folder`` and ``npz``. The stored value of a mask pixel becomes a class index
through, in order:

1. ``values``: a map ``{stored: class}`` (e.g. ``{255: 1}``); unmapped values stay as
   they are.
2. ``ignore_index``: pixels of this value are ignored (VOC's void border, 255): stored as
   ``IGNORED``, they become an all-zero one-hot row, which every zoo loss and metric
   leaves out (Keras' ``ignore_class``, the ignore label of MONAI and nnU-Net).
3. ``binary``: a pixel is foreground when its value is above half the largest value
   found in the masks (0/1, 0/255, anti-aliased or JPEG-compressed 0/255 masks alike).

Without ``classes``, ``values`` or ``binary`` the values must look like class indices:
not sparse ({0, 255}, {0, 127, 255}: fewer distinct values than half the largest),
and for image files every value forming a region somewhere (more than 1% of its
pixels with a 3x3 neighbourhood of only that value; anti-aliased edges and JPEG noise
do not). Otherwise one line
with the histogram of the values found and the options that fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IGNORED = 255  # stored class index of an ignored pixel: one-hot encodes it as all zeros
MAX_VALUE = 65535  # largest stored mask value (16-bit masks)
_CHUNK = 1 << 24  # mask pixels examined at once for regions


@dataclass(frozen=True)
class MaskCoding:
    """The options saying what mask values mean (validated by :func:`mask_coding`)."""

    classes: int | None = None
    ignore_index: int | None = None
    values: dict[int, int] = field(default_factory=dict)
    binary: bool = False


def _integer(dataset: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)  # YAML keys may come as strings
            else:
                raise TypeError
        except TypeError:
            raise ValueError(f"dataset {dataset!r}: option {name} must hold integers, "
                             f"got {value!r}") from None
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"dataset {dataset!r}: option {name} has {value}; allowed {low}..{high}")
    return value


def mask_coding(dataset: str, classes: int | None, ignore_index: Any, values: Any,
                binary: Any) -> MaskCoding:
    """Validated mask options; one-line ``ValueError`` naming the option otherwise."""
    if ignore_index is not None:
        ignore_index = _integer(dataset, "ignore_index", ignore_index, 0, MAX_VALUE)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"dataset {dataset!r}: option values must map stored mask values to "
                         f"classes, e.g. {{255: 1}}; got {values!r}")
    mapping = {_integer(dataset, "values", k, 0, MAX_VALUE):
               _integer(dataset, "values", v, 0, MAX_VALUE) for k, v in values.items()}
    if not isinstance(binary, bool):
        raise ValueError(f"dataset {dataset!r}: option binary must be true or false, "
                         f"got {binary!r}")
    if binary and classes not in (None, 1, 2):
        raise ValueError(f"dataset {dataset!r}: option binary gives 1 class (2 with "
                         f"ignore_index), not classes={classes}")
    if ignore_index is not None and classes == 1 and not binary:
        raise ValueError(f"dataset {dataset!r}: option ignore_index needs classes >= 2 (a "
                         f"one-channel sigmoid target cannot carry ignored pixels); use "
                         f"classes: 2")
    if ignore_index is not None and classes is not None and classes > IGNORED:
        raise ValueError(f"dataset {dataset!r}: option ignore_index allows at most "
                         f"{IGNORED} classes, got classes={classes}")
    return MaskCoding(classes, ignore_index, mapping, binary)


@dataclass(frozen=True)
class Census:
    """What the masks of a dataset hold: pixels and region pixels per stored value."""

    counts: np.ndarray  # (V,) pixels of each value
    cores: np.ndarray  # (V,) pixels of each value whose 3x3 neighbourhood is all that value


def census(masks: Sequence[np.ndarray], regions: bool = True) -> Census:
    """Histogram and (when ``regions``) region counts of the values of mask arrays (N, H, W)."""
    top = max((int(m.max()) for m in masks if m.size), default=0)
    counts = np.zeros(top + 1, np.int64)
    cores = np.zeros(top + 1, np.int64)
    for array in masks:
        if not array.size:
            continue
        counts += np.bincount(array.ravel(), minlength=top + 1)
        if not regions or array.shape[-1] < 3 or array.shape[-2] < 3:
            continue
        step = max(1, _CHUNK // max(1, array[0].size))
        for start in range(0, len(array), step):
            m = array[start:start + step]
            centre = m[..., 1:-1, 1:-1]
            same = np.ones(centre.shape, bool)
            for dy in (0, 1, 2):
                for dx in (0, 1, 2):
                    if (dy, dx) != (1, 1):
                        same &= m[..., dy:dy + centre.shape[-2], dx:dx + centre.shape[-1]] == centre
            cores += np.bincount(centre[same], minlength=top + 1)
    return Census(counts, cores)


def histogram(counts: np.ndarray, limit: int = 8) -> str:
    """``"0: 38,830 px, 255: 5,870 px"``, the largest ``limit`` values and how many more."""
    present = np.flatnonzero(counts)
    shown = sorted(present[np.argsort(-counts[present], kind="stable")][:limit])
    text = ", ".join(f"{int(v)}: {int(counts[v]):,} px" for v in shown)
    if len(present) > limit:
        text += f" and {len(present) - limit} more values"
    return text


FIX = ("set ignore_index: 255 if 255 marks pixels to leave out (VOC's void), values: "
       "{255: 1} to say which class a value is, binary: true for foreground/background "
       "masks, or classes: K if these are class indices")


def class_lut(dataset: str, coding: MaskCoding, found: Census,
              where: Callable[[int], str], regions: bool = True) -> tuple[np.ndarray, int]:
    """The look-up table stored value -> class index (``IGNORED`` for ignored) and K.

    Args:
        dataset: dataset name, for messages.
        coding: the options.
        found: the census of every mask of every split (so K does not depend on the seed).
        where: value -> the first file (or sample) holding it, for messages.
        regions: also refuse values that never fill a 3x3 region (image files, which
            go through editors and JPEG; not arrays a program wrote).

    Raises:
        ValueError: one line with the values found and the options that fix it: values
            that do not look like class indices (``classes`` unset), a class index out of
            range, no class left.
    """
    n = len(found.counts)
    mapped = np.arange(n, dtype=np.int64)
    for stored, klass in coding.values.items():
        if stored < n:
            mapped[stored] = klass
    ignored = mapped == coding.ignore_index if coding.ignore_index is not None else (
        np.zeros(n, bool))
    used = (found.counts > 0) & ~ignored
    values = np.unique(mapped[used])
    counts = np.bincount(mapped[used], weights=found.counts[used],
                         minlength=int(values.max(initial=0)) + 1).astype(np.int64)
    cores = np.bincount(mapped[used], weights=found.cores[used],
                        minlength=len(counts)).astype(np.int64)
    top = int(values.max(initial=0))
    if coding.binary:
        final = (mapped > top / 2).astype(np.int64)
        k = 2 if coding.ignore_index is not None else 1
    else:
        if coding.classes is None and not coding.values:
            _check_indices(dataset, counts, cores, where, regions)
        k = coding.classes if coding.classes is not None else max(2, top + 1)
        limit = max(k, 2)
        if top >= limit:
            raw = int(np.flatnonzero(used & (mapped == top))[0])
            raise ValueError(f"dataset {dataset!r}: mask {where(raw)} has class index {top} "
                             f"out of range; allowed 0..{limit - 1} (classes={coding.classes}); "
                             f"values found: {histogram(counts)}; {FIX}")
        if coding.ignore_index is not None and k > IGNORED:
            raise ValueError(f"dataset {dataset!r}: masks hold class {top}; with ignore_index "
                             f"at most {IGNORED} classes are allowed")
        final = mapped
    lut = np.where(ignored, IGNORED, final).astype(np.uint8 if k <= 256 else np.int32)
    return lut, k


def _check_indices(dataset: str, counts: np.ndarray, cores: np.ndarray,
                   where: Callable[[int], str], regions: bool) -> None:
    """Refuse values that do not look like class indices 0..K-1 (``classes`` unset)."""
    present = np.flatnonzero(counts)
    top = int(present.max(initial=0))
    if top >= 2 and len(present) <= (top + 1) / 2:
        raise ValueError(f"dataset {dataset!r}: masks hold sparse values ({histogram(counts)}; "
                         f"{len(present)} values up to {top}, e.g. {top} in {where(top)}), "
                         f"not class indices 0..K-1; {FIX}")
    # A real class fills a region somewhere; anti-aliased edges and JPEG noise do not.
    noise = [int(v) for v in present if regions and cores[v] <= 0.01 * counts[v]]
    if noise:
        named = ", ".join(map(str, noise[:6])) + (", ..." if len(noise) > 6 else "")
        raise ValueError(f"dataset {dataset!r}: masks hold values that never fill a 3x3 "
                         f"region ({named}; e.g. {noise[0]} in {where(noise[0])}), as "
                         f"anti-aliased edges and JPEG-compressed masks do; values found: "
                         f"{histogram(counts)}; re-export the masks losslessly, or {FIX}")


def encode(raw: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Class-index masks from stored masks through ``lut``."""
    return lut[raw]


def warn_missing_classes(dataset: str, class_names: Sequence[str], n_classes: int,
                         splits: dict[str, np.ndarray]) -> list[str]:
    """Warn (one line each) about classes of the validation or test split absent from training.

    Args:
        splits: ``{"train": y, "val": y, "test": y}`` class-index masks.

    Returns:
        The warning lines (also issued with ``warnings.warn``).
    """
    labels = 2 if n_classes == 1 else n_classes
    present = {}
    for split, y in splits.items():
        found = np.bincount(y.ravel().astype(np.int64), minlength=max(labels, IGNORED + 1))
        present[split] = found[:labels] > 0
    lines = []
    for k in range(labels):
        if present["train"][k]:
            continue
        others = [split for split in ("val", "test") if present[split][k]]
        if others:
            name = class_names[k] if n_classes > 1 else "foreground"
            only = "only in the test split" if others == ["test"] else f"in {' and '.join(others)}"
            lines.append(f"dataset {dataset!r}: class {k} ({name}) appears {only}, not in "
                         f"the training split; a model cannot learn it")
    for line in lines:
        warnings.warn(line, UserWarning, stacklevel=3)
    return lines
