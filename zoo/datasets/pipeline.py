"""From in-memory arrays to ``tf.data`` pipelines: encoding, labelled fraction, augmentation.

Order of the stages (the ``tf.data`` performance guide's advice): slice -> encode
(parallel map) -> cache (when it fits in memory) -> shuffle (train) -> augment
(parallel map, fresh randomness every epoch) -> batch -> prefetch(AUTOTUNE).
Every random choice is seeded, so the same seed gives the same elements in the
same order.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

# Arrays larger than this are streamed through a generator instead of
# ``from_tensor_slices``, which would copy them into the graph (2 GiB proto limit).
_SLICE_LIMIT_BYTES = 1 << 30


def labelled_weights(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sample weights (n,) float32: exactly ``round(fraction * n)`` ones, the rest zeros.

    Which samples keep their labels is drawn with ``seed``; at least one sample
    stays labelled whenever ``fraction > 0`` and ``n > 0``.
    """
    n_labelled = min(n, round(fraction * n))
    if fraction > 0 and n > 0:
        n_labelled = max(1, n_labelled)
    weights = np.zeros(n, np.float32)
    chosen = np.random.default_rng([seed, 0x1ABE1]).choice(n, size=n_labelled, replace=False)
    weights[chosen] = 1.0
    return weights


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest machine
        return 8 << 30


def encoded_bytes(x: np.ndarray, y: np.ndarray, n_classes: int) -> int:
    """Bytes the encoded (float32 x, float32 one-hot y) split takes in memory."""
    n = len(x)
    per_x = int(np.prod(x.shape[1:])) * 4
    per_y = int(np.prod(y.shape[1:])) * 4 * (n_classes if np.issubdtype(y.dtype, np.integer) else 1)
    return n * (per_x + per_y)


def _slices(arrays: tuple[np.ndarray, ...]) -> tf.data.Dataset:
    if sum(a.nbytes for a in arrays) <= _SLICE_LIMIT_BYTES:
        return tf.data.Dataset.from_tensor_slices(arrays)
    signature = tuple(tf.TensorSpec(a.shape[1:], tf.as_dtype(a.dtype)) for a in arrays)

    def generate():
        for i in range(len(arrays[0])):
            yield tuple(a[i] for a in arrays)

    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _encoder(n_classes: int, integer_labels: bool, weighted: bool):
    """The map function turning stored (x, y[, w]) into model-ready float32 tensors."""

    def encode(x, y, w=None):
        scale = 1 / 255 if x.dtype == tf.uint8 else 1.0
        x = tf.cast(x, tf.float32) * scale
        if integer_labels:
            if n_classes == 1:
                y = tf.cast(y > 0, tf.float32)[..., tf.newaxis]
            else:
                y = tf.one_hot(tf.cast(y, tf.int32), n_classes, dtype=tf.float32)
        else:
            y = tf.cast(y, tf.float32)
        if not weighted:
            return x, y
        # Unlabelled samples carry an all-zero target besides their zero weight.
        return x, y * w, w

    return encode


def _augmenter(square: bool, rank: int):
    """Random flips (and 90-degree turns when square) applied alike to x and y.

    ``rank`` is that of one x: 3 for (H, W, C), 4 for (T, H, W, C); for sequences
    the frames form the leading axis so every frame gets the same transform.
    """
    h_axis, w_axis = rank - 3, rank - 2

    def transform(t, flip_h, flip_w, turns):
        t = tf.cond(flip_h, lambda: tf.reverse(t, [h_axis]), lambda: t)
        t = tf.cond(flip_w, lambda: tf.reverse(t, [w_axis]), lambda: t)
        if square:
            t = tf.image.rot90(t, turns)
        return t

    def augment(element, seed):
        draws = tf.random.stateless_uniform([3], seed=seed, maxval=4, dtype=tf.int32)
        flip_h, flip_w, turns = draws[0] % 2 == 1, draws[1] % 2 == 1, draws[2]
        x, y, *rest = element
        return (transform(x, flip_h, flip_w, turns), transform(y, flip_h, flip_w, turns), *rest)

    return augment


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    weights: np.ndarray | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    cache_limit_bytes: int | None = None,
    labelled_per_batch: int = 0,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of (x, y) or (x, y, sample_weight) elements.

    Args:
        x: (N, H, W, C) or (N, T, H, W, C), uint8 (scaled to [0, 1]) or float in [0, 1].
        y: integer class indices with x's shape minus channels (made one-hot, or
            (..., 1) binary when ``n_classes == 1``), or float targets (..., K).
        n_classes: K.
        weights: optional (N,) float32 sample weights; the elements then carry
            them third and samples of weight 0 get an all-zero y.
        batch_size: None yields single elements; otherwise batches of this size.
        shuffle: reshuffle every epoch (with ``seed``); only with ``batch_size``.
        augment: random flips and 90-degree rotations (rotations when H == W),
            the same for x, y and every frame of a sequence.
        seed: seeds shuffling and augmentation.
        drop_remainder: drop the last short batch (stateful models need full batches).
        cache_limit_bytes: cache encoded elements when they take at most this
            much memory; defaults to a quarter of the machine's memory.
        labelled_per_batch: with ``weights``, ``batch_size`` and ``shuffle``: every
            batch holds this many labelled samples (weight > 0), cycling through
            them reshuffled on each pass, then ``batch_size - labelled_per_batch``
            unlabelled ones; an epoch is one pass over the unlabelled samples. The
            batches of a semi-supervised model then all weigh the supervised cost
            alike, however few the labels (the Ladder paper's batches). 0: off.

    Returns:
        The dataset; elements are float32 x (..., C), y (..., K) and scalar weight.
    """
    if labelled_per_batch:
        return _mixed_batches(
            x, y, n_classes=n_classes, weights=weights, batch_size=batch_size,
            labelled_per_batch=labelled_per_batch, shuffle=shuffle, augment=augment, seed=seed,
            drop_remainder=drop_remainder, cache_limit_bytes=cache_limit_bytes,
        )
    ds = _encoded(x, y, n_classes, weights, cache_limit_bytes)
    if batch_size is None:
        if augment:
            ds = _augment(ds, x, seed)
        return ds
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        ds = _augment(ds, x, seed)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _encoded(x: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray | None,
             cache_limit_bytes: int | None) -> tf.data.Dataset:
    """Single model-ready elements, cached when they fit in ``cache_limit_bytes``."""
    arrays = (x, y) if weights is None else (x, y, weights.astype(np.float32))
    ds = _slices(arrays)
    encode = _encoder(n_classes, np.issubdtype(y.dtype, np.integer), weights is not None)
    ds = ds.map(encode, num_parallel_calls=AUTOTUNE)
    if cache_limit_bytes is None:
        cache_limit_bytes = _memory_bytes() // 4
    size = encoded_bytes(x, y, n_classes)
    if size <= cache_limit_bytes:
        return ds.cache()
    log.info("not caching %.1f MiB of encoded data (limit %.1f MiB)",
             size / 2**20, cache_limit_bytes / 2**20)
    return ds


def _augment(ds: tf.data.Dataset, x: np.ndarray, seed: int) -> tf.data.Dataset:
    # One fresh stateless seed per element and epoch, reproducible from ``seed``.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    square = x.shape[-3] == x.shape[-2]
    augment = _augmenter(square, x.ndim - 1)
    return tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=AUTOTUNE)


def _mixed_batches(
    x: np.ndarray, y: np.ndarray, *, n_classes: int, weights: np.ndarray | None,
    batch_size: int | None, labelled_per_batch: int, shuffle: bool, augment: bool, seed: int,
    drop_remainder: bool, cache_limit_bytes: int | None,
) -> tf.data.Dataset:
    """Batches of ``labelled_per_batch`` labelled samples (repeated) + the rest unlabelled."""
    if weights is None or batch_size is None or not shuffle:
        raise ValueError("labelled_per_batch needs sample weights, a batch size and shuffling")
    if not 0 < labelled_per_batch < batch_size:
        raise ValueError(
            f"labelled_per_batch={labelled_per_batch} must lie in 1..batch_size-1 "
            f"(batch_size={batch_size})"
        )
    labelled = weights > 0
    if labelled.all() or not labelled.any():
        # Nothing to mix: plain batches (every sample labelled, or none is).
        return make_dataset(x, y, n_classes=n_classes, weights=weights, batch_size=batch_size,
                            shuffle=shuffle, augment=augment, seed=seed,
                            drop_remainder=drop_remainder, cache_limit_bytes=cache_limit_bytes)
    # Repeat before batching so that a labelled set smaller than labelled_per_batch
    # still fills every batch; each pass over it is reshuffled.
    n_labelled = int(labelled.sum())
    labelled_ds = _encoded(x[labelled], y[labelled], n_classes, weights[labelled],
                           cache_limit_bytes)
    labelled_ds = labelled_ds.shuffle(n_labelled, seed=seed, reshuffle_each_iteration=True)
    labelled_ds = labelled_ds.repeat()
    if augment:
        labelled_ds = _augment(labelled_ds, x, seed)
    labelled_ds = labelled_ds.batch(labelled_per_batch, drop_remainder=True)
    n_unlabelled = len(x) - n_labelled
    rest = batch_size - labelled_per_batch
    unlabelled_ds = make_dataset(
        x[~labelled], y[~labelled], n_classes=n_classes, weights=weights[~labelled],
        batch_size=rest, shuffle=True, augment=augment, seed=seed + 1,
        drop_remainder=drop_remainder and n_unlabelled >= rest,
        cache_limit_bytes=cache_limit_bytes,
    )

    def concat(first: tuple, second: tuple) -> tuple:
        return tuple(tf.concat([a, b], axis=0) for a, b in zip(first, second, strict=True))

    ds = tf.data.Dataset.zip((labelled_ds, unlabelled_ds)).map(concat,
                                                               num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
