"""From in-memory arrays to ``tf.data`` pipelines: encoding, labelled fraction, augmentation.

Fixed splits (validation, test, an unshuffled train set): slice -> encode (parallel
map) -> cache (when it fits in memory) -> batch -> prefetch(AUTOTUNE).

A shuffled or augmented train set is a function of (seed, epoch): every iteration
of the dataset is one epoch, numbered from ``initial_epoch``; that epoch's sample
order is a stateless permutation keyed by (seed, epoch) and each sample's
augmentation is keyed by (seed, epoch, position). Per epoch: order -> gather the
stored sample (parallel map) -> encode -> augment -> batch -> prefetch. So a run
resumed at epoch k (``initial_epoch=k``) sees in its epoch k what an uninterrupted
run sees in its epoch k, and the same seed always gives the same elements.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

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
                # An index >= K (an ignored pixel) gives the all-zero row losses skip.
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


# Independent streams of randomness drawn from one dataset seed.
_ORDER, _AUGMENT, _LABELLED_ORDER, _LABELLED_AUGMENT, _UNLABELLED_ORDER, _UNLABELLED_AUGMENT = (
    range(6))


def _key(seed: int, stream: int, epoch: tf.Tensor, index: tf.Tensor | int = 0) -> tf.Tensor:
    """Stateless seed pair (2,) int64, distinct for each (seed, stream, epoch, index)."""
    first = tf.constant(seed * 16 + stream, tf.int64)
    return tf.stack([first, tf.cast(epoch, tf.int64) * (1 << 32) + tf.cast(index, tf.int64)])


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
    initial_epoch: int = 0,
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
        shuffle: a new order every epoch, a function of (seed, epoch).
        augment: random flips and 90-degree rotations (rotations when H == W),
            the same for x, y and every frame of a sequence; a function of
            (seed, epoch, position in the epoch).
        seed: seeds shuffling and augmentation.
        drop_remainder: drop the last short batch (stateful models need full batches).
        cache_limit_bytes: cache encoded elements of a fixed (unshuffled,
            unaugmented) dataset when they take at most this much memory; defaults
            to a quarter of the machine's memory.
        labelled_per_batch: with ``weights``, ``batch_size`` and ``shuffle``: every
            batch holds this many labelled samples (weight > 0), cycling through
            them reshuffled on each pass (the passes restart every epoch), then
            ``batch_size - labelled_per_batch`` unlabelled ones; an epoch is one
            pass over the unlabelled samples. The batches of a semi-supervised model
            then all weigh the supervised cost alike, however few the labels (the
            Ladder paper's batches). 0: off. Ignored (nothing to mix) when
            ``batch_size`` is None.
        initial_epoch: the epoch (from 0) the first iteration of a shuffled or
            augmented dataset gives; each further iteration gives the next epoch.
            Keras' ``fit`` iterates once per epoch (Keras 3.15: building the model
            from the first batch reuses the first epoch's iterator), so
            ``fit(ds, epochs=E, initial_epoch=k)`` on a dataset made with
            ``initial_epoch=k`` sees epochs k..E-1 as an uninterrupted run does.

    Returns:
        The dataset; elements are float32 x (..., C), y (..., K) and scalar weight.
    """
    if labelled_per_batch and batch_size is not None:
        return _mixed_batches(
            x, y, n_classes=n_classes, weights=weights, batch_size=batch_size,
            labelled_per_batch=labelled_per_batch, shuffle=shuffle, augment=augment, seed=seed,
            drop_remainder=drop_remainder, cache_limit_bytes=cache_limit_bytes,
            initial_epoch=initial_epoch,
        )
    if shuffle or augment:
        arrays = _stored(x, y, weights)
        fetch = _fetcher(arrays, _encoder(n_classes, np.issubdtype(y.dtype, np.integer),
                                          weights is not None))
        indices = np.arange(len(x))

        def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
            order = _order(indices, seed, _ORDER, epoch, shuffle)
            return _elements(order, fetch, x, augment, seed, _AUGMENT, epoch)

        ds = _epochs(initial_epoch, one_epoch)
    else:
        ds = _encoded(x, y, n_classes, weights, cache_limit_bytes)
    if batch_size is None:
        return ds
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _stored(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    return (x, y) if weights is None else (x, y, weights.astype(np.float32))


def _encoded(x: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray | None,
             cache_limit_bytes: int | None) -> tf.data.Dataset:
    """Model-ready elements in stored order, cached when they fit in ``cache_limit_bytes``."""
    ds = _slices(_stored(x, y, weights))
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


def _fetcher(arrays: tuple[np.ndarray, ...], encode: Callable) -> Callable:
    """A map function from a sample index (int64 scalar) to that sample, encoded."""
    if sum(a.nbytes for a in arrays) <= _SLICE_LIMIT_BYTES:
        tensors = tuple(tf.constant(a) for a in arrays)

        def fetch(i):
            return encode(*(tf.gather(t, i) for t in tensors))

        return fetch
    dtypes = [tf.as_dtype(a.dtype) for a in arrays]

    def read(j: np.ndarray) -> list[np.ndarray]:
        return [a[j] for a in arrays]

    def fetch_large(i):
        # Too large to hand to TensorFlow as constants: read from NumPy by index.
        parts = tf.numpy_function(read, [i], dtypes, stateful=False)
        for part, a in zip(parts, arrays, strict=True):
            part.set_shape(a.shape[1:])
        return encode(*parts)

    return fetch_large


def _epochs(initial_epoch: int, one_epoch: Callable[[tf.Tensor], tf.data.Dataset]
            ) -> tf.data.Dataset:
    """A dataset whose k-th iteration (from 0) yields ``one_epoch(initial_epoch + k)``."""
    counter = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
    # Every new iterator runs this map once, so the iterations number the epochs.
    epoch = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: counter.assign_add(1) - 1)
    ds = epoch.flat_map(one_epoch)
    ds._zoo_epoch_counter = counter  # the counter lives as long as the dataset
    return ds


def _order(indices: np.ndarray, seed: int, stream: int, epoch: tf.Tensor, shuffle: bool,
           epoch_pass: tf.Tensor | int = 0) -> tf.data.Dataset:
    """The sample indices ``indices``, permuted by a key of (seed, stream, epoch, pass)."""
    order = tf.constant(indices, tf.int64)
    if shuffle:
        order = tf.random.experimental.stateless_shuffle(
            order, seed=_key(seed, stream, epoch, epoch_pass))
    return tf.data.Dataset.from_tensor_slices(order)


def _elements(order: tf.data.Dataset, fetch: Callable, x: np.ndarray, augment: bool, seed: int,
              stream: int, epoch: tf.Tensor) -> tf.data.Dataset:
    """The samples of ``order``, encoded, each augmented by a draw keyed by (seed, stream,
    epoch, position in ``order``); one parallel map does it all."""
    if not augment:
        return order.map(fetch, num_parallel_calls=AUTOTUNE)
    transform = _augmenter(x.shape[-3] == x.shape[-2], x.ndim - 1)

    def apply(position, index):
        return transform(fetch(index), _key(seed, stream, epoch, position))

    return order.enumerate().map(apply, num_parallel_calls=AUTOTUNE)


def _mixed_batches(
    x: np.ndarray, y: np.ndarray, *, n_classes: int, weights: np.ndarray | None,
    batch_size: int, labelled_per_batch: int, shuffle: bool, augment: bool, seed: int,
    drop_remainder: bool, cache_limit_bytes: int | None, initial_epoch: int,
) -> tf.data.Dataset:
    """Batches of ``labelled_per_batch`` labelled samples (repeated) + the rest unlabelled."""
    if weights is None or not shuffle:
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
                            drop_remainder=drop_remainder, cache_limit_bytes=cache_limit_bytes,
                            initial_epoch=initial_epoch)
    fetch = _fetcher(_stored(x, y, weights), _encoder(n_classes, np.issubdtype(y.dtype, np.integer),
                                                      True))
    labelled_idx, unlabelled_idx = np.flatnonzero(labelled), np.flatnonzero(~labelled)
    rest = batch_size - labelled_per_batch

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        # Endless passes over the labelled samples, each reshuffled, so that a labelled
        # set smaller than labelled_per_batch still fills every batch.
        labelled_order = tf.data.Dataset.counter().flat_map(
            lambda p: _order(labelled_idx, seed, _LABELLED_ORDER, epoch, True, p))
        labelled_ds = _elements(labelled_order, fetch, x, augment, seed, _LABELLED_AUGMENT,
                                epoch)
        unlabelled_ds = _elements(_order(unlabelled_idx, seed, _UNLABELLED_ORDER, epoch, True),
                                  fetch, x, augment, seed, _UNLABELLED_AUGMENT, epoch)
        labelled_ds = labelled_ds.batch(labelled_per_batch, drop_remainder=True)
        unlabelled_ds = unlabelled_ds.batch(
            rest, drop_remainder=drop_remainder and len(unlabelled_idx) >= rest)
        return tf.data.Dataset.zip((labelled_ds, unlabelled_ds)).map(
            _concat, num_parallel_calls=AUTOTUNE)

    return _epochs(initial_epoch, one_epoch).prefetch(AUTOTUNE)


def _concat(first: tuple, second: tuple) -> tuple:
    return tuple(tf.concat([a, b], axis=0) for a, b in zip(first, second, strict=True))
