"""scikit-learn's handwritten digits as glyphs to paint on canvases.

Shared by ``digits`` and ``moving_digits``: the 1,797 source digits are split into
disjoint train, validation and test pools *before* any canvas is painted, so no
source digit ever appears in two splits.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

N_CLASSES = 11  # background + the ten digits
CLASS_NAMES = ["background", *(str(d) for d in range(10))]
INK_THRESHOLD = 0.35  # upscaled intensity above which a pixel belongs to the digit


@lru_cache(maxsize=1)
def source_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits as float32 (1797, 8, 8) in [0, 1] and their labels (1797,)."""
    path = digits_file()
    if path is None:  # a scikit-learn that keeps them elsewhere: its own loader
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, target = bunch.images, bunch.target
    else:
        table = np.loadtxt(path, delimiter=",")  # (1797, 65): 64 pixels 0..16, the label
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    return (images / 16.0).astype(np.float32), target.astype(np.int64)


def digits_file() -> Path | None:
    """scikit-learn's ``datasets/data/digits.csv.gz`` (what ``load_digits`` reads), found
    without importing scikit-learn: its import takes 0.8-1 s of CPU on 2 cores, the read
    0.005 s, in every process that builds a digits dataset (the spec check's among them).
    None when scikit-learn is not installed or keeps no such file."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def split_sources(seed: int, val_fraction: float, test_fraction: float,
                  split_seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted (train, val, test) indices into ``source_digits()``.

    The test pool is drawn first with ``split_seed`` alone, so it is the same for
    every trial ``seed`` and every ``val_fraction``; the validation pool is then drawn
    from the rest with ``seed``, and training keeps what is left.

    Raises:
        ValueError: the fractions leave the training pool empty.
    """
    n = len(source_digits()[1])
    n_val = max(1, round(n * val_fraction))
    n_test = max(1, round(n * test_fraction))
    if n_val + n_test >= n:
        raise ValueError(f"val_digits={val_fraction} with test_digits={test_fraction} leaves "
                         f"no source digit for training")
    test = np.random.default_rng([split_seed, 0xD161, 0x7E57]).permutation(n)[:n_test]
    rest = np.setdiff1d(np.arange(n), test)
    order = rest[np.random.default_rng([seed, 0xD161]).permutation(len(rest))]
    return np.sort(order[n_val:]), np.sort(order[:n_val]), np.sort(test)


@lru_cache(maxsize=4)
def upscaled(size: int) -> np.ndarray:
    """Every source digit resized bicubically: float32 (1797, size, size) in [0, 1]."""
    images = source_digits()[0]
    out = np.empty((len(images), size, size), np.float32)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image, mode="F").resize((size, size), Image.BICUBIC))
    out = np.clip(out, 0, 1)
    out.setflags(write=False)  # cached and shared: nobody may paint on it
    return out


def render(
    glyphs: np.ndarray, classes: np.ndarray, corners: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Paint glyphs onto blank canvases.

    Args:
        glyphs: (n, d, s, s) float32 glyph images, d glyphs per canvas.
        classes: (n, d) class of each glyph (1..10).
        corners: (n, d, 2) int top-left (row, col) of each glyph, inside the canvas.
        height, width: canvas size.

    Returns:
        x (n, height, width) float32 in [0, 1] (overlaps take the maximum ink) and
        y (n, height, width) uint8 class indices (later glyphs on top).
    """
    n, d, s, _ = glyphs.shape
    x = np.zeros((n, height, width), np.float32)
    y = np.zeros((n, height, width), np.uint8)
    for i in range(n):
        for j in range(d):
            r, c = corners[i, j]
            glyph = glyphs[i, j]
            np.maximum(x[i, r:r + s, c:c + s], glyph, out=x[i, r:r + s, c:c + s])
            patch = y[i, r:r + s, c:c + s]
            patch[glyph > INK_THRESHOLD] = classes[i, j]
    return x, y


def pick(rng: np.random.Generator, pool: np.ndarray, shape: tuple[int, ...],
         size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw source digits from ``pool``: (indices, glyphs (*shape, size, size), classes 1..10)."""
    indices = rng.choice(pool, size=shape)
    return indices, upscaled(size)[indices], source_digits()[1][indices] + 1
