"""``shapes``: synthetic geometric shapes on textured, noisy backgrounds.

Each image holds 1..``objects`` shapes (circle, square, triangle, diamond, cross,
ring, ellipse: as many kinds as ``classes - 1``), later ones occluding earlier
ones; a pixel's label is the kind of the shape on top (0 = background). With
``classes=1`` every shape is foreground and y is a binary mask. Generated with
vectorised NumPy in chunks, deterministic by seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from zoo.datasets.arrays import SplitArrays
from zoo.datasets.options import check_int, split_rng
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)

_CHUNK = 256  # images generated at once: bounds the (chunk, H, W) temporaries

# Each maps offsets from the centre (dy, dx) and the radius r, all broadcast to
# (n, H, W), to the boolean mask of the shape.
_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda dy, dx, r: dy**2 + dx**2 <= r**2,
    "square": lambda dy, dx, r: np.maximum(np.abs(dy), np.abs(dx)) <= 0.85 * r,
    "triangle": lambda dy, dx, r: (dy >= -r) & (dy <= 0.75 * r) & (np.abs(dx) <= 0.6 * (dy + r)),
    "diamond": lambda dy, dx, r: np.abs(dy) + np.abs(dx) <= r,
    "cross": lambda dy, dx, r: ((np.abs(dy) <= r / 3) & (np.abs(dx) <= r))
    | ((np.abs(dx) <= r / 3) & (np.abs(dy) <= r)),
    "ring": lambda dy, dx, r: (dy**2 + dx**2 <= r**2) & (dy**2 + dx**2 >= (0.55 * r) ** 2),
    "ellipse": lambda dy, dx, r: (dx / r) ** 2 + (dy / (0.5 * r)) ** 2 <= 1,
}
SHAPE_NAMES = tuple(_SHAPES)


def _texture(rng: np.random.Generator, n: int, h: int, w: int, c: int) -> np.ndarray:
    """Smooth random backgrounds (n, h, w, c) in [0.05, 0.45]: a few plane waves plus a tint."""
    yy = np.arange(h, dtype=np.float32)[None, :, None] / h
    xx = np.arange(w, dtype=np.float32)[None, None, :] / w
    field = np.zeros((n, h, w), np.float32)
    for _ in range(3):
        fy, fx = rng.uniform(-4, 4, size=(2, n, 1, 1)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
        field += np.cos(2 * np.pi * (fy * yy + fx * xx) + phase)
    field = (field / 3 + 1) / 2  # [0, 1]
    tint = rng.uniform(0.6, 1.0, size=(n, 1, 1, c)).astype(np.float32)
    return 0.05 + 0.4 * field[..., None] * tint


def generate_shapes(
    rng: np.random.Generator, n: int, *, height: int, width: int, channels: int,
    classes: int, objects: int, noise: float, min_radius: float, max_radius: float,
    split: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, H, W, C) float32 in [0, 1] and labels (n, H, W) uint8 in [0, K)."""
    kinds = SHAPE_NAMES[: max(classes - 1, 1)]
    x = np.empty((n, height, width, channels), np.float32)
    y = np.empty((n, height, width), np.uint8)
    yy = np.arange(height, dtype=np.float32)[None, :, None]
    xx = np.arange(width, dtype=np.float32)[None, None, :]
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        image = _texture(rng, m, height, width, channels)
        label = np.zeros((m, height, width), np.uint8)
        count = rng.integers(1, objects + 1, size=m)
        for slot in range(objects):
            present = (count > slot)[:, None, None]
            r = rng.uniform(min_radius, max_radius, size=(m, 1, 1)).astype(np.float32)
            cy = rng.uniform(0, height, size=(m, 1, 1)).astype(np.float32)
            cx = rng.uniform(0, width, size=(m, 1, 1)).astype(np.float32)
            kind = rng.integers(0, len(kinds), size=(m, 1, 1))
            colour = rng.uniform(0, 1, size=(m, 1, 1, channels)).astype(np.float32)
            # Lift the brightest channel so shapes stand out from the darker texture.
            bright = rng.uniform(0.6, 1.0, size=(m, 1, 1)).astype(np.float32)
            np.put_along_axis(colour, colour.argmax(-1)[..., None], bright[..., None], -1)
            dy, dx = yy - cy, xx - cx
            mask = np.zeros((m, height, width), bool)
            for k, shape in enumerate(kinds):
                mask |= (kind == k) & _SHAPES[shape](dy, dx, r)
            mask &= present
            image = np.where(mask[..., None], colour, image)
            # Class k + 1 for shape kind k; a single foreground class when classes == 1.
            label = np.where(mask, (kind + 1).astype(np.uint8) if classes > 1 else 1, label)
        image += rng.normal(0, noise, size=image.shape).astype(np.float32)
        x[start:start + m] = np.clip(image, 0, 1)
        y[start:start + m] = label
        if n > _CHUNK:
            log.info("shapes: generated %d/%d %s images", start + m, n, split)
    return x, y


@register_dataset(
    "shapes",
    options={"height": 64, "width": 64, "channels": 3, "classes": 4, "train": 512, "val": 128,
             "test": 128, "split_seed": 0, "objects": 3, "noise": 0.05, "min_radius": None,
             "max_radius": None},
    help={"objects": "at most this many shapes per image (1..objects, drawn)",
          "noise": "standard deviation of the Gaussian pixel noise",
          "min_radius": "smallest shape radius in pixels (default: a tenth of the side)",
          "max_radius": "largest shape radius in pixels (default: a quarter of the side)"},
)
def build_shapes(
    *, seed: int, height: int, width: int, channels: int, classes: int, train: int, val: int,
    test: int, split_seed: int, objects: int, noise: float, min_radius: float | None,
    max_radius: float | None,
) -> SplitArrays:
    """Synthetic shapes (circle, square, triangle, ...) on textured noisy backgrounds, any size."""
    height = check_int("shapes", "height", height, 4)
    width = check_int("shapes", "width", width, 4)
    channels = check_int("shapes", "channels", channels)
    classes = check_int("shapes", "classes", classes, 1, len(SHAPE_NAMES) + 1)
    train = check_int("shapes", "train", train)
    val = check_int("shapes", "val", val)
    test = check_int("shapes", "test", test)
    objects = check_int("shapes", "objects", objects)
    if not 0 <= float(noise) < 1:
        raise ValueError(f"dataset 'shapes': option noise={noise!r} must lie in [0, 1)")
    side = min(height, width)
    lo = float(min_radius) if min_radius is not None else max(1.5, side / 10)
    hi = float(max_radius) if max_radius is not None else max(lo, side / 4)
    if not 0 < lo <= hi:
        raise ValueError(
            f"dataset 'shapes': need 0 < min_radius <= max_radius, got {lo} and {hi}"
        )
    params = {"height": height, "width": width, "channels": channels, "classes": classes,
              "objects": objects, "noise": float(noise), "min_radius": lo, "max_radius": hi}
    # Separate streams per split: val and test do not change when train grows; the test
    # stream is keyed by split_seed, so every trial seed is tested on the same images.
    x_train, y_train = generate_shapes(np.random.default_rng([seed, 0]), train, split="train",
                                       **params)
    x_val, y_val = generate_shapes(np.random.default_rng([seed, 1]), val, split="val", **params)
    x_test, y_test = generate_shapes(split_rng("shapes", split_seed, 2), test, split="test",
                                     **params)
    names = ["foreground"] if classes == 1 else ["background", *SHAPE_NAMES[: classes - 1]]
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=classes, class_names=names,
                       x_test=x_test, y_test=y_test)
