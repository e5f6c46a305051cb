"""``folder``: a user's directory of images and class-index masks.

Layouts (CONTRACT.md)::

    PATH/images/NAME.png|jpg   PATH/masks/NAME.png        split by test_fraction, val_fraction
    PATH/train/images/...      PATH/train/masks/...       fixed splits
    PATH/val/images/...        PATH/val/masks/...
    PATH/test/images/...       PATH/test/masks/...

The training pool is ``PATH/train/`` when it exists, else ``PATH`` itself. A
``val/`` or ``test/`` folder next to it is a fixed split; a split without its
folder is drawn from the pool: the test split first with ``split_seed`` (so it is the
same for every trial seed and does not move when ``val_fraction`` changes), then the
validation split from the rest with the trial's seed.

A mask's pixel value is the class index of that pixel (0 = background). Images of
another size are resized bilinearly, masks with nearest neighbour so they keep
valid indices. Files are decoded with PIL in a thread pool (PIL releases the GIL
while decoding), with a progress line in the log every few hundred files.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.datasets.arrays import SplitArrays
from zoo.datasets.options import (
    check_choice,
    check_fraction,
    check_int,
    holdout_indices,
    split_rng,
)
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_SUFFIXES = (".png",)
PROGRESS_EVERY = 500  # files between progress log lines
_NAME = "folder"


def _error(message: str) -> ValueError:
    return ValueError(f"dataset {_NAME!r}: {message}")


def _listing(directory: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Stem -> file for the non-hidden files of ``directory`` with one of ``suffixes``."""
    files: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes:
            continue
        if path.stem in files:
            raise _error(f"two files named {path.stem!r} in {directory}: "
                         f"{files[path.stem].name} and {path.name}")
        files[path.stem] = path
    return files


def find_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs under ``root/images`` and ``root/masks``, sorted by name.

    Raises:
        ValueError: a missing directory, no images, an image without its mask or
            a mask without its image (naming the file).
    """
    image_dir, mask_dir = root / "images", root / "masks"
    for directory in (image_dir, mask_dir):
        if not directory.is_dir():
            raise _error(f"missing directory {directory}; expected {root}/images/NAME.png|jpg "
                         f"with {root}/masks/NAME.png")
    images = _listing(image_dir, IMAGE_SUFFIXES)
    masks = _listing(mask_dir, MASK_SUFFIXES)
    if not images and not masks:
        raise _error(f"no images in {image_dir} (looked for {', '.join(IMAGE_SUFFIXES)})")
    for stem in sorted(set(images) - set(masks)):
        raise _error(f"image {images[stem]} has no mask; expected {mask_dir / (stem + '.png')}")
    for stem in sorted(set(masks) - set(images)):
        raise _error(f"mask {masks[stem]} has no image; expected {image_dir / stem}.png|jpg")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()  # decode now, so a truncated file fails here, naming itself
    except (OSError, SyntaxError, ValueError) as exc:
        raise _error(f"cannot read {path}: {exc}") from None
    return image


def read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Image at ``path`` as uint8 (H, W, channels), resized bilinearly to ``size`` (H, W)."""
    image = _open(path).convert("L" if channels == 1 else "RGB")
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, np.uint8)
    return array[..., None] if channels == 1 else array


def read_mask(path: Path, size: tuple[int, int], classes: int | None) -> np.ndarray:
    """Class-index mask at ``path`` as uint8 (H, W), resized to ``size`` with nearest neighbour.

    Raises:
        ValueError: unreadable, colour (not single-channel) or a class index
            outside [0, classes), naming the file.
    """
    mask = _open(path)
    array = np.asarray(mask)
    if array.ndim == 3:
        # RGB(A) masks are accepted only when grey: every colour channel equal.
        colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if (colour != colour[..., :1]).any():
            raise _error(f"mask {path} is a colour image (mode {mask.mode}); save class "
                         f"indices as a single-channel (L or P mode) PNG")
        array = colour[..., 0]
    array = array.astype(np.int64)
    top = int(array.max(initial=0))
    limit = max(classes, 2) if classes is not None else 256
    if array.min(initial=0) < 0 or top >= limit:
        raise _error(f"mask {path} has class index {top} out of range; allowed 0..{limit - 1} "
                     f"(classes={classes})")
    array = array.astype(np.uint8)
    if array.shape != size:
        array = np.asarray(Image.fromarray(array).resize((size[1], size[0]), Image.NEAREST))
    return array


def read_pairs(
    pairs: list[tuple[Path, Path]], size: tuple[int, int], channels: int, classes: int | None,
    split: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``pairs`` in parallel: images uint8 (N, H, W, C) and masks uint8 (N, H, W)."""
    n = len(pairs)
    x = np.empty((n, *size, channels), np.uint8)
    y = np.empty((n, *size), np.uint8)

    def read(i: int) -> int:
        image_path, mask_path = pairs[i]
        x[i] = read_image(image_path, size, channels)
        y[i] = read_mask(mask_path, size, classes)
        return i

    workers = min(16, (os.cpu_count() or 1) + 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(read, range(n)), start=1):
            if done % PROGRESS_EVERY == 0 or (done == n and n >= PROGRESS_EVERY):
                log.info("folder: read %d/%d %s image/mask pairs", done, n, split)
    return x, y


@register_dataset(
    "folder",
    options={"path": None, "height": None, "width": None, "channels": 3, "classes": None,
             "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
    help={"path": "directory with images/ and masks/, or train/ (and val/, test/) laid out "
                  "the same way",
          "height": "resize to this height (default: the first image's)",
          "width": "resize to this width (default: the first image's)",
          "classes": "number of classes K (default: the largest mask index plus one)",
          "val_fraction": "share of the training pool split off for validation when there "
                          "is no val/ folder",
          "test_fraction": "share of the training pool held out for testing (drawn first, "
                           "with split_seed) when there is no test/ folder"},
)
def build_folder(
    *, seed: int, path: str | os.PathLike | None, height: int | None, width: int | None,
    channels: int, classes: int | None, val_fraction: float, test_fraction: float,
    split_seed: int,
) -> SplitArrays:
    """Your images and class-index masks: PATH/images + PATH/masks, or PATH/train, val, test.

    ``height`` and ``width`` default to the size of the first image (by name);
    ``classes`` defaults to the largest index found in the masks plus one.
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
    if (root / "train").is_dir():
        pool = find_pairs(root / "train")
    elif (root / "images").is_dir() or (root / "masks").is_dir():
        pool = find_pairs(root)
    else:
        raise _error(f"{root} has neither images/ and masks/ nor train/ (with val/, test/) "
                     f"subfolders")
    first = pool[0][0]
    fixed = {split: find_pairs(root / split) for split in ("val", "test")
             if (root / split).is_dir()}
    fractions = {split: check_fraction(_NAME, f"{split}_fraction", fraction)
                 for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if split not in fixed}
    parts = holdout_indices(_NAME, len(pool), fractions, np.random.default_rng([seed, 0xF01D]),
                            split_rng(_NAME, split_seed, 0xF01D))
    pairs = {**{split: [pool[i] for i in idx] for split, idx in parts.items()}, **fixed}

    if height is None or width is None:
        # The first image by name sets the size, whatever the seed's split.
        first_w, first_h = _open(first).size  # PIL sizes are (width, height)
        height = first_h if height is None else height
        width = first_w if width is None else width
    size = (check_int(_NAME, "height", height), check_int(_NAME, "width", width))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        read_pairs(pairs[split], size, channels, classes, split)
        for split in ("train", "val", "test"))
    if classes is None:
        # Inferred from the data: the largest index seen, and at least two classes.
        classes = max(2, int(max(y_train.max(), y_val.max(), y_test.max())) + 1)
    names = ["foreground"] if classes == 1 else ["background", *(f"class_{k}" for k in
                                                                 range(1, classes))]
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=classes, class_names=names,
                       x_test=x_test, y_test=y_test)
