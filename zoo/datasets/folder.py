"""``folder``: a user's directory of images and masks, loaded as the user saw them.

Layouts (CONTRACT.md; docs/own-data.md says what a folder may hold)::

    PATH/images/NAME.png|jpg|tif|bmp|webp   PATH/masks/NAME.png|tif|bmp
    PATH/train/images/...      PATH/train/masks/...       fixed splits
    PATH/val/images/...        PATH/val/masks/...         (or valid/, Roboflow's name)
    PATH/test/images/...       PATH/test/masks/...

The training pool is ``PATH/train/`` when it exists, else ``PATH`` itself. A
``val/`` (or ``valid/``) or ``test/`` folder next to it is a fixed split; a split without its
folder is drawn from the pool: the test split first with ``split_seed`` (so it is the
same for every trial seed and does not move when ``val_fraction`` changes), then the
validation split from the rest with the trial's seed.

Names pair after Unicode normalisation (NFC: a Mac's NFD names match). Images and masks
are turned upright by their EXIF orientation, and a mask must have its image's size.
Images of another size than the dataset's (``height`` x ``width``, by default the most
common size) are resized bilinearly, masks with nearest neighbour. 16-bit greyscale
images are scaled by their bit depth (the smallest 2^b - 1 above every value found),
not clipped. What a mask value means (class index, ignored, a value map, binary) is
``mask_values``'; its checks see every split, so K does not depend on the seed. Files are
decoded with PIL in a thread pool (PIL releases the GIL while decoding), with a progress
line in the log every few hundred files.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.datasets import image_files
from zoo.datasets.arrays import SplitArrays
from zoo.datasets.image_files import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    LOSSY_SUFFIXES,
    MASK_SUFFIXES,
    OTHER_IMAGE_SUFFIXES,
    Header,
    size_text,
)
from zoo.datasets.mask_values import census, class_lut, mask_coding, warn_missing_classes
from zoo.datasets.options import (
    check_choice,
    check_fraction,
    check_int,
    holdout_indices,
    split_rng,
)
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)

PROGRESS_EVERY = 500  # files between progress log lines
VAL_FOLDERS = ("val", "valid", "validation")  # valid/: Roboflow's exports
_NAME = "folder"

Pair = tuple[Path, Path]


def _error(message: str) -> ValueError:
    return ValueError(f"dataset {_NAME!r}: {message}")


def _key(stem: str) -> str:
    """The name files pair by: NFC, so a Mac's decomposed (NFD) name matches its twin."""
    return unicodedata.normalize("NFC", stem)


def _listing(directory: Path, kind: str) -> dict[str, Path]:
    """Name key -> file for the image (or mask) files of ``directory``.

    Hidden files and files that are not images (notes, annotations) are skipped; an
    image format that is not read, or a lossy mask, is refused naming the file.
    """
    readable = IMAGE_SUFFIXES if kind == "image" else MASK_SUFFIXES
    files: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or not path.is_file():
            continue
        if suffix not in readable:
            if kind == "mask" and suffix in LOSSY_SUFFIXES:
                raise _error(f"mask {path}: unsupported format `{suffix}` for masks (lossy "
                             f"compression changes class values at edges); save masks as "
                             f"{', '.join(MASK_SUFFIXES)}")
            if suffix in OTHER_IMAGE_SUFFIXES or (kind == "mask" and suffix in IMAGE_SUFFIXES):
                raise _error(f"{kind} {path}: unsupported format `{suffix}`; convert it to "
                             f"one of {', '.join(readable)}")
            continue
        key = _key(path.stem)
        if key in files:
            raise _error(f"two files named {path.stem!r} in {directory}: "
                         f"{files[key].name} and {path.name}")
        files[key] = path
    return files


def _near_miss(key: str, directory: Path) -> str:
    """``"; found NAME, whose name differs in case"`` for a file named like ``key``, or ``""``."""
    wanted = key.casefold()
    for path in sorted(directory.iterdir()):
        if not path.name.startswith(".") and _key(path.stem).casefold() == wanted:
            return f"; found {path.name}, whose name differs in case"
    return ""


def find_pairs(root: Path) -> list[Pair]:
    """(image, mask) pairs under ``root/images`` and ``root/masks``, sorted by name.

    Raises:
        ValueError: a missing directory, no images, an image without its mask or
            a mask without its image, a format not read (naming the file).
    """
    image_dir, mask_dir = root / "images", root / "masks"
    for directory in (image_dir, mask_dir):
        if not directory.is_dir():
            raise _error(f"missing directory {directory}; expected {root}/images/NAME.png|jpg "
                         f"with {root}/masks/NAME.png")
    images = _listing(image_dir, "image")
    masks = _listing(mask_dir, "mask")
    if not images and not masks:
        folders = sorted(p.name for p in image_dir.iterdir() if p.is_dir())
        if folders:
            raise _error(f"no images in {image_dir}, only the subfolders {', '.join(folders)}; "
                         f"lay splits out as {root}/train/images and {root}/train/masks (and "
                         f"val/, test/)")
        raise _error(f"no images in {image_dir} (looked for {', '.join(IMAGE_SUFFIXES)})")
    for key in sorted(set(images) - set(masks)):
        raise _error(f"image {images[key]} has no mask; expected "
                     f"{mask_dir / (images[key].stem + '.png')}{_near_miss(key, mask_dir)}")
    for key in sorted(set(masks) - set(images)):
        raise _error(f"mask {masks[key]} has no image; expected {image_dir / masks[key].stem}"
                     f".png|jpg{_near_miss(key, image_dir)}")
    return [(images[key], masks[key]) for key in sorted(images)]


def _parallel(function: Callable[[int], Any], n: int, what: str = "") -> list[Any]:
    """``[function(i) for i in range(n)]`` in a thread pool, logging progress."""
    workers = min(16, (os.cpu_count() or 1) + 4)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(function, range(n)), start=1):
            results.append(result)
            if what and (done % PROGRESS_EVERY == 0 or (done == n and n >= PROGRESS_EVERY)):
                log.info("folder: read %d/%d %s", done, n, what)
    return results


def read_headers(pairs: list[Pair], max_pixels: int) -> list[Header]:
    """Every image's header; a mask whose size differs from its image's is refused here."""

    def read(i: int) -> Header:
        image_path, mask_path = pairs[i]
        image = image_files.header(image_path, max_pixels)
        mask = image_files.header(mask_path, max_pixels)
        if mask.size != image.size:
            raise _error(f"mask {mask_path} is {size_text(mask.size)} but its image "
                         f"{image_path.name} is {size_text(image.size)} (as shown, after EXIF "
                         f"orientation); a mask must have its image's size")
        return image

    return _parallel(read, len(pairs))


def common_size(headers: list[Header]) -> tuple[int, int]:
    """The most common image size; refused when several sizes tie for it."""
    counts = Counter(h.size for h in headers)
    ranked = counts.most_common()
    found = ", ".join(f"{size_text(size)}: {n}" for size, n in ranked[:6])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        raise _error(f"images have {len(ranked)} sizes and none is the most common ({found}); "
                     f"set height and width")
    size = ranked[0][0]
    if len(ranked) > 1:
        log.warning("folder: images of %d sizes (%s); resizing all to the most common, %s "
                    "(set height and width to choose)", len(ranked), found, size_text(size))
    return size


def read_pairs(
    pairs: list[Pair], headers: list[Header], size: tuple[int, int], channels: int,
    max_pixels: int, float_x: bool, split: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``pairs`` in parallel.

    Returns:
        Images (N, H, W, C), uint8, or float32 when ``float_x`` (8-bit images divided by
        255, 16-bit ones raw); the stored mask values uint16 (N, H, W); which images are
        16-bit (N,) bool.
    """
    n = len(pairs)
    x = np.empty((n, *size, channels), np.float32 if float_x else np.uint8)
    raw = np.empty((n, *size), np.uint16)
    deep = np.zeros(n, bool)

    def read(i: int) -> int:
        image_path, mask_path = pairs[i]
        image = image_files.read_image(image_path, size, channels, max_pixels)
        deep[i] = image.dtype == np.float32
        x[i] = image if deep[i] or not float_x else image / np.float32(255)
        mask = image_files.read_mask(mask_path, headers[i].size, max_pixels)
        if mask.shape != size:
            mask = np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
        raw[i] = mask
        return i

    _parallel(read, n, f"{split} image/mask pairs")
    return x, raw, deep


def _scale_deep(parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Scale the 16-bit images of every split by one bit depth, in place: 2^b - 1 >= max."""
    top = max((float(x[deep].max(initial=0)) for x, deep in parts), default=0.0)
    bits = max(8, math.ceil(math.log2(top + 1)))
    for x, deep in parts:
        if deep.any():
            x[deep] = np.clip(x[deep] / (2**bits - 1), 0, 1)
    if any(deep.any() for _, deep in parts):
        log.info("folder: 16-bit images scaled by 2^%d - 1 (largest value %d)", bits, top)


def shared_images(pairs: dict[str, list[Pair]], images: dict[str, np.ndarray]) -> list[str]:
    """Warn (one line) when the same picture is in two splits; return the line, if any.

    A copy of a training image in ``val/`` or ``test/`` (or twice in one folder, drawn into
    two splits) makes those scores optimistic. Pictures are compared by their pixels as read,
    at the sweep's size: a copy under another name or format matches, a re-compressed JPEG
    (other pixels) does not.

    Args:
        pairs: ``{split: [(image, mask), ...]}``, in the order of ``images[split]``.
        images: ``{split: (N, H, W, C) array}``.
    """
    first: dict[bytes, tuple[str, Path]] = {}
    shared: list[tuple[Path, Path]] = []
    for split in ("train", "val", "test"):
        for (image, _), x in zip(pairs[split], images[split], strict=True):
            digest = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest()
            seen = first.setdefault(digest, (split, image))
            if seen[0] != split:
                shared.append((seen[1], image))
    if not shared:
        return []
    examples = ", ".join(f"{a} = {b}" for a, b in shared[:2])
    line = (f"dataset {_NAME!r}: {len(shared)} image{'s' if len(shared) > 1 else ''} of one "
            f"split also in another ({examples}{', ...' if len(shared) > 2 else ''}); their "
            f"validation and test scores are optimistic: remove the copies")
    warnings.warn(line, UserWarning, stacklevel=3)
    return [line]


@register_dataset(
    "folder",
    options={"path": None, "height": None, "width": None, "channels": 3, "classes": None,
             "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0, "ignore_index": None,
             "values": None, "binary": False, "max_pixels": DEFAULT_MAX_PIXELS},
    help={"path": "directory with images/ and masks/, or train/ (and val/ or valid/, test/) "
                  "laid out the same way",
          "height": "resize to this height (default: the most common image size's)",
          "width": "resize to this width (default: the most common image size's)",
          "classes": "number of classes K (default: the largest mask value plus one, when the "
                     "values look like class indices)",
          "val_fraction": "share of the training pool split off for validation when there "
                          "is no val/ folder",
          "test_fraction": "share of the training pool held out for testing (drawn first, "
                           "with split_seed) when there is no test/ folder",
          "ignore_index": "mask value of pixels to leave out of every loss and metric "
                          "(e.g. 255, Pascal VOC's void border)",
          "values": "map of stored mask values to classes, e.g. {255: 1}",
          "binary": "masks are foreground/background: a value above half the largest found "
                    "is foreground (0/1, 0/255, anti-aliased or JPEG-compressed masks)",
          "max_pixels": "largest image (width x height) read; Pillow's guard against "
                        "decompression bombs, raise it for large scans"},
)
def build_folder(
    *, seed: int, path: str | os.PathLike | None, height: int | None, width: int | None,
    channels: int, classes: int | None, val_fraction: float, test_fraction: float,
    split_seed: int, ignore_index: int | None, values: dict | None, binary: bool,
    max_pixels: int,
) -> SplitArrays:
    """Your images and class-index masks: PATH/images + PATH/masks, or PATH/train, val, test.

    ``height`` and ``width`` default to the most common image size; ``classes`` to the
    largest mask value plus one, when the values look like class indices.
    """
    if path is None:
        raise _error("option path is required (a directory with images/ and masks/)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise _error(f"path {root} does not exist or is not a directory")
    if not any(root.iterdir()):
        raise _error(f"folder {root} is empty; expected images/ and masks/ (or train/ and val/)")
    channels = check_choice(_NAME, "channels", channels, (1, 3))
    if classes is not None:
        classes = check_int(_NAME, "classes", classes, 1, 256)
    coding = mask_coding(_NAME, classes, ignore_index, values, binary)
    max_pixels = check_int(_NAME, "max_pixels", max_pixels)
    if (root / "train").is_dir():
        pool = find_pairs(root / "train")
    elif (root / "images").is_dir() or (root / "masks").is_dir():
        pool = find_pairs(root)
    else:
        raise _error(f"{root} has neither images/ and masks/ nor train/ (with val/, test/) "
                     f"subfolders")
    val_dirs = [name for name in VAL_FOLDERS if (root / name).is_dir()]
    if len(val_dirs) > 1:
        raise _error(f"{root} has both {' and '.join(f'{d}/' for d in val_dirs)}; keep one "
                     f"validation folder")
    fixed = {split: find_pairs(root / folder) for split, folder in
             (("val", val_dirs[0] if val_dirs else None), ("test", "test"))
             if folder is not None and (root / folder).is_dir()}
    fractions = {split: check_fraction(_NAME, f"{split}_fraction", fraction)
                 for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if split not in fixed}
    parts = holdout_indices(_NAME, len(pool), fractions, np.random.default_rng([seed, 0xF01D]),
                            split_rng(_NAME, split_seed, 0xF01D))
    pairs = {**{split: [pool[i] for i in idx] for split, idx in parts.items()}, **fixed}

    with image_files.own_pixel_limit():
        headers = {split: read_headers(pairs[split], max_pixels) for split in pairs}
        every = [h for split in ("train", "val", "test") for h in headers[split]]
        if height is None or width is None:
            # Every split's images vote, so the size does not depend on the seed.
            common_h, common_w = common_size(every)
            height = common_h if height is None else height
            width = common_w if width is None else width
        size = (check_int(_NAME, "height", height), check_int(_NAME, "width", width))
        float_x = any(h.high_depth for h in every)
        read = {split: read_pairs(pairs[split], headers[split], size, channels, max_pixels,
                                  float_x, split) for split in ("train", "val", "test")}
    if float_x:
        _scale_deep([(x, deep) for x, _, deep in read.values()])
    shared_images(pairs, {split: x for split, (x, _, _) in read.items()})

    def where(value: int) -> str:
        """The first mask by name holding ``value``."""
        holders = [pairs[split][i][1] for split, (_, raw, _) in read.items()
                   for i in np.flatnonzero((raw == value).any(axis=(1, 2)))]
        return str(min(holders)) if holders else "(no mask)"

    lut, classes = class_lut(_NAME, coding, census([raw for _, raw, _ in read.values()]),
                             where)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        (read[split][0], lut[read[split][1]]) for split in ("train", "val", "test"))
    names = ["foreground"] if classes == 1 else ["background", *(f"class_{k}" for k in
                                                                 range(1, classes))]
    warn_missing_classes(_NAME, names, classes, {"train": y_train, "val": y_val,
                                                 "test": y_test})
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=classes, class_names=names,
                       x_test=x_test, y_test=y_test)
