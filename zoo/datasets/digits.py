"""``digits``: segmentation canvases of real handwritten digits (scikit-learn's 1,797).

A few digits, upscaled, are placed at random on a blank canvas; each pixel is
labelled with its digit's class (1..10 for digits 0..9, 0 for background). The
source digits are split into train, validation and test pools first (fractions
``val_digits`` and ``test_digits``; the test pool and canvases drawn with ``split_seed``,
the others with the trial's seed), so validation and test
canvases only show digits never seen in training, nor in each other.
"""

from __future__ import annotations

import logging

import numpy as np

from zoo.datasets import glyphs
from zoo.datasets.arrays import SplitArrays
from zoo.datasets.options import check_fraction, check_int, split_rng
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)


def compose_digits(
    rng: np.random.Generator, pool: np.ndarray, n: int, *, height: int, width: int,
    digits_per_image: int, digit_size: int, noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` canvases from the source digits in ``pool``.

    Returns:
        x (n, H, W, 1) float32 in [0, 1], y (n, H, W) uint8 in [0, 11) and the
        source-digit indices used, (n, digits_per_image).
    """
    shape = (n, digits_per_image)
    indices, images, classes = glyphs.pick(rng, pool, shape, digit_size)
    corners = np.stack([rng.integers(0, height - digit_size + 1, size=shape),
                        rng.integers(0, width - digit_size + 1, size=shape)], axis=-1)
    x, y = glyphs.render(images, classes, corners, height, width)
    if noise:
        x = np.clip(x + rng.normal(0, noise, size=x.shape).astype(np.float32), 0, 1)
    return x[..., None], y, indices


def check_digit_options(name: str, height: int, width: int, digit_size: int,
                        val_digits: float, test_digits: float
                        ) -> tuple[int, int, int, float, float]:
    """Validated (height, width, digit_size, val_digits, test_digits) for the digit datasets."""
    height = check_int(name, "height", height, 4)
    width = check_int(name, "width", width, 4)
    digit_size = check_int(name, "digit_size", digit_size, 4, min(height, width))
    val_digits = check_fraction(name, "val_digits", val_digits)
    test_digits = check_fraction(name, "test_digits", test_digits)
    if val_digits + test_digits >= 1:
        raise ValueError(f"dataset {name!r}: option test_digits={test_digits} with "
                         f"val_digits={val_digits} leaves no source digit for training")
    return height, width, digit_size, val_digits, test_digits


@register_dataset(
    "digits",
    options={"height": 32, "width": 32, "train": 512, "val": 128, "test": 128, "split_seed": 0,
             "digits_per_image": 2, "digit_size": 14, "noise": 0.0, "val_digits": 0.25,
             "test_digits": 0.2},
    help={"digits_per_image": "digits painted on each canvas",
          "digit_size": "side in pixels of an upscaled digit",
          "noise": "standard deviation of the Gaussian pixel noise"},
)
def build_digits(
    *, seed: int, height: int, width: int, train: int, val: int, test: int, split_seed: int,
    digits_per_image: int, digit_size: int, noise: float, val_digits: float, test_digits: float,
) -> SplitArrays:
    """Handwritten digits (scikit-learn) on a canvas, each pixel labelled with its digit."""
    height, width, digit_size, val_digits, test_digits = check_digit_options(
        "digits", height, width, digit_size, val_digits, test_digits)
    train = check_int("digits", "train", train)
    val = check_int("digits", "val", val)
    test = check_int("digits", "test", test)
    params = {"height": height, "width": width, "digit_size": digit_size, "noise": float(noise),
              "digits_per_image": check_int("digits", "digits_per_image", digits_per_image)}
    train_pool, val_pool, test_pool = glyphs.split_sources(seed, val_digits, test_digits,
                                                           split_seed)
    x_train, y_train, _ = compose_digits(np.random.default_rng([seed, 0]), train_pool, train,
                                         **params)
    x_val, y_val, _ = compose_digits(np.random.default_rng([seed, 1]), val_pool, val, **params)
    x_test, y_test, _ = compose_digits(split_rng("digits", split_seed, 2), test_pool, test,
                                       **params)
    log.info("digits: %d train / %d val / %d test canvases from %d / %d / %d source digits",
             train, val, test, len(train_pool), len(val_pool), len(test_pool))
    return SplitArrays(x_train, y_train, x_val, y_val, n_classes=glyphs.N_CLASSES,
                       class_names=glyphs.CLASS_NAMES, x_test=x_test, y_test=y_test)
