"""``moving_digits``: sequences of handwritten digits moving and bouncing (after Moving MNIST).

Each sequence holds ``digits_per_sequence`` digits from scikit-learn's set, each
moving in a straight line at constant speed and bouncing off the canvas edges
(Srivastava et al. 2015, "Unsupervised Learning of Video Representations using
LSTMs"). Train, validation and test sequences use disjoint pools of source digits.

Targets: ``target="mask"`` gives per-frame segmentation masks (T, H, W, 11);
``target="next_frame"`` gives the following frames (T, H, W, 1) in [0, 1], i.e.
y[t] = x[t + 1], for next-frame prediction.

Layouts: ``layout="sequence"`` gives x (T, H, W, 1) for the recurrent models;
``layout="channels"`` (next frames only) gives image models a sliding window: every
``stack`` consecutive frames stacked as channels, x (H, W, stack), and the frame after
them as y (H, W, 1), so each sequence of ``frames`` inputs yields ``frames - stack + 1``
samples.
"""

from __future__ import annotations

import logging

import numpy as np

from zoo.datasets import glyphs
from zoo.datasets.arrays import SplitArrays
from zoo.datasets.digits import check_digit_options
from zoo.datasets.options import check_choice, check_int, split_rng
from zoo.datasets.registry import register_dataset

log = logging.getLogger(__name__)

TARGETS = ("mask", "next_frame")
LAYOUTS = ("sequence", "channels")


def stack_frames(frames: np.ndarray, stack: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of ``stack`` frames as channels, each with the frame after it.

    Args:
        frames: (N, F, H, W) frames of N sequences.
        stack: k, frames per window, 1 <= k < F.

    Returns:
        ``(x, y)``: x (N * (F - k), H, W, k), window ``t`` of sequence ``n`` at index
        ``n * (F - k) + t`` holding frames ``t .. t + k - 1`` (oldest first, so the last
        channel is the latest frame); y (N * (F - k), H, W, 1), frame ``t + k``.
    """
    n, f, h, w = frames.shape
    windows = f - stack
    # (N, windows, k, H, W): window t is frames[:, t:t + k].
    index = np.arange(windows)[:, None] + np.arange(stack)[None, :]
    x = frames[:, index].reshape(n * windows, stack, h, w).transpose(0, 2, 3, 1)
    y = frames[:, stack:].reshape(n * windows, h, w, 1)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


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
             "split_seed": 0, "digits_per_sequence": 2, "digit_size": 12, "speed": 2.0,
             "target": "mask", "val_digits": 0.25, "test_digits": 0.2, "layout": "sequence",
             "stack": 3},
    help={"frames": "frames per sequence (T)",
          "digits_per_sequence": "digits moving in each sequence",
          "digit_size": "side in pixels of an upscaled digit",
          "speed": "largest speed in pixels per frame",
          "target": "y: mask (per-frame segmentation) or next_frame (the following frames)",
          "layout": "x: sequence (T, H, W, 1) for recurrent models, or channels (next_frame "
                    "only): the last `stack` frames as channels (H, W, stack), y the next "
                    "frame, for image models",
          "stack": "frames stacked as channels with layout channels (at most frames)"},
)
def build_moving_digits(
    *, seed: int, height: int, width: int, frames: int, train: int, val: int, test: int,
    split_seed: int, digits_per_sequence: int, digit_size: int, speed: float, target: str,
    val_digits: float, test_digits: float, layout: str, stack: int,
) -> SplitArrays:
    """Sequences of handwritten digits bouncing around (Moving MNIST), masks or next frames."""
    name = "moving_digits"
    height, width, digit_size, val_digits, test_digits = check_digit_options(
        name, height, width, digit_size, val_digits, test_digits)
    target = check_choice(name, "target", target, TARGETS)
    if not float(speed) > 0:
        raise ValueError(f"dataset {name!r}: option speed={speed!r} must be > 0 (pixels per frame)")
    frames = check_int(name, "frames", frames)
    layout = check_choice(name, "layout", layout, LAYOUTS)
    if layout == "channels":
        if target != "next_frame":
            raise ValueError(f"dataset {name!r}: option layout='channels' stacks frames to "
                             f"predict the next one; it needs target: next_frame")
        stack = check_int(name, "stack", stack)
        if stack > frames:
            raise ValueError(f"dataset {name!r}: option stack={stack} asks for more stacked "
                             f"frames than a sequence has (frames={frames})")
    params = {"height": height, "width": width, "digit_size": digit_size, "speed": float(speed),
              "digits_per_sequence": check_int(name, "digits_per_sequence", digits_per_sequence),
              # next_frame needs one frame more: the target of the last input frame.
              "frames": frames + (target == "next_frame")}
    pools = glyphs.split_sources(seed, val_digits, test_digits, split_seed)
    splits = []
    for stream, (split, n) in enumerate((("train", train), ("val", val), ("test", test))):
        n = check_int(name, split, n)
        # The test sequences come from split_seed: the same for every trial seed.
        rng = (split_rng(name, split_seed, stream) if split == "test"
               else np.random.default_rng([seed, stream]))
        x, y, _ = compose_sequences(rng, pools[stream], n, **params)
        if layout == "channels":
            splits += list(stack_frames(x, stack))
        elif target == "next_frame":
            splits += [x[:, :-1, ..., None], x[:, 1:, ..., None]]
        else:
            splits += [x[..., None], y]
        log.info("moving_digits: generated %d %s sequences of %d frames", n, split, frames)
    test_arrays = {"x_test": splits[4], "y_test": splits[5]}
    if target == "next_frame":
        return SplitArrays(*splits[:4], n_classes=1, class_names=["frame"],
                           kind="image" if layout == "channels" else "sequence",
                           task="next_frame", **test_arrays)
    return SplitArrays(*splits[:4], n_classes=glyphs.N_CLASSES, class_names=glyphs.CLASS_NAMES,
                       kind="sequence", **test_arrays)
