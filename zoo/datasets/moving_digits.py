"""``moving_digits``: sequences of handwritten digits moving and bouncing (after Moving MNIST).

Each sequence holds ``digits_per_sequence`` digits from scikit-learn's set, each
moving in a straight line at constant speed and bouncing off the canvas edges
(Srivastava et al. 2015, "Unsupervised Learning of Video Representations using
LSTMs"). Train, validation and test sequences use disjoint pools of source digits.

Targets: ``target="mask"`` gives per-frame segmentation masks (T, H, W, 11);
``target="next_frame"`` gives the following frames (T, H, W, 1) in [0, 1], i.e.
y[t] = x[t + 1], for next-frame prediction.
"""

from __future__ import annotations

import logging

import numpy as np

from zoo.datasets import glyphs
from zoo.datasets.arrays import SplitArrays
from zoo.datasets.digits import check_digit_options
from zoo.datasets.options import check_choice, check_int
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)

TARGETS = ("mask", "next_frame")


def trajectories(
    rng: np.random.Generator, n: int, digits: int, frames: int, limit: tuple[int, int],
    speed: float,
) -> np.ndarray:
    """Bouncing top-left corners, int (n, frames, digits, 2), each within [0, limit]."""
    bound = np.array(limit, np.float64)
    pos = rng.uniform(0, 1, size=(n, digits, 2)) * bound
    angle = rng.uniform(0, 2 * np.pi, size=(n, digits))
    magnitude = rng.uniform(0.5 * speed, speed, size=(n, digits, 1))
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * magnitude
    corners = np.empty((n, frames, digits, 2), np.int64)
    for t in range(frames):
        corners[:, t] = np.clip(np.rint(pos), 0, bound)
        pos = pos + velocity
        # Reflect off the edges: mirror the position and reverse that velocity component.
        low, high = pos < 0, pos > bound
        pos = np.where(low, -pos, np.where(high, 2 * bound - pos, pos))
        velocity = np.where(low | high, -velocity, velocity)
    return corners


def compose_sequences(
    rng: np.random.Generator, pool: np.ndarray, n: int, *, frames: int, height: int, width: int,
    digits_per_sequence: int, digit_size: int, speed: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sequences: frames (n, T, H, W) float32, masks (n, T, H, W) uint8, sources (n, d)."""
    d = digits_per_sequence
    indices, images, classes = glyphs.pick(rng, pool, (n, d), digit_size)
    corners = trajectories(rng, n, d, frames, (height - digit_size, width - digit_size), speed)
    x, y = glyphs.render(
        np.repeat(images, frames, axis=0),
        np.repeat(classes, frames, axis=0),
        corners.reshape(n * frames, d, 2),
        height, width,
    )
    return x.reshape(n, frames, height, width), y.reshape(n, frames, height, width), indices


@register_dataset(
    "moving_digits",
    kind="sequence",
    options={"height": 32, "width": 32, "frames": 8, "train": 256, "val": 64, "test": 64,
             "digits_per_sequence": 2, "digit_size": 12, "speed": 2.0, "target": "mask",
             "val_digits": 0.25, "test_digits": 0.2},
)
def build_moving_digits(
    *, seed: int, height: int, width: int, frames: int, train: int, val: int, test: int,
    digits_per_sequence: int, digit_size: int, speed: float, target: str, val_digits: float,
    test_digits: float,
) -> SplitArrays:
    """Sequences of handwritten digits bouncing around (Moving MNIST), masks or next frames."""
    name = "moving_digits"
    height, width, digit_size, val_digits, test_digits = check_digit_options(
        name, height, width, digit_size, val_digits, test_digits)
    target = check_choice(name, "target", target, TARGETS)
    if not float(speed) > 0:
        raise ValueError(f"dataset {name!r}: option speed={speed!r} must be > 0 (pixels per frame)")
    frames = check_int(name, "frames", frames)
    params = {"height": height, "width": width, "digit_size": digit_size, "speed": float(speed),
              "digits_per_sequence": check_int(name, "digits_per_sequence", digits_per_sequence),
              # next_frame needs one frame more: the target of the last input frame.
              "frames": frames + (target == "next_frame")}
    pools = glyphs.split_sources(seed, val_digits, test_digits)
    splits = []
    for stream, (split, n) in enumerate((("train", train), ("val", val), ("test", test))):
        n = check_int(name, split, n)
        x, y, _ = compose_sequences(np.random.default_rng([seed, stream]), pools[stream], n,
                                    **params)
        if target == "next_frame":
            splits += [x[:, :-1, ..., None], x[:, 1:, ..., None]]
        else:
            splits += [x[..., None], y]
        log.info("moving_digits: generated %d %s sequences of %d frames", n, split, frames)
    test_arrays = {"x_test": splits[4], "y_test": splits[5]}
    if target == "next_frame":
        return SplitArrays(*splits[:4], n_classes=1, class_names=["frame"], kind="sequence",
                           task="next_frame", **test_arrays)
    return SplitArrays(*splits[:4], n_classes=glyphs.N_CLASSES, class_names=glyphs.CLASS_NAMES,
                       kind="sequence", **test_arrays)
