"""SegNet's pooling-index pair: ``MaxPoolingWithArgmax2D`` and ``MaxUnpooling2D``.

SegNet (Badrinarayanan et al. 2017) remembers, for every max-pooling window of
the encoder, *which* element was the maximum, and its decoder puts each value
back at that position (the other positions of the window get zero).

The usual TensorFlow recipe, ``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``,
has no XLA kernel, and Keras compiles with XLA by default where a GPU is present.
These layers compute the same thing from ``keras.ops`` only, so they compile:
the input is cut into its non-overlapping windows, the first maximum of each
window is found with an equality mask (ties keep the first element in row-major
order, as ``tf.nn.max_pool_with_argmax`` does on CPU), and its position inside
the window, ``dy * pool_width + dx``, is the index. Indices therefore have the
pooled shape and take values in ``[0, pool_height * pool_width)``.

Only ``channels_last`` inputs ``(B, H, W, C)`` with ``H`` and ``W`` multiples of
the pool size are supported (windows do not overlap: strides = pool size).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["MaxPoolingWithArgmax2D", "MaxUnpooling2D"]


def _pool_size(layer: str, pool_size: int | tuple[int, int]) -> tuple[int, int]:
    """``pool_size`` as a pair of positive ints; ``ValueError`` naming ``layer`` otherwise."""
    size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
    if len(size) != 2 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size
    ):
        raise ValueError(
            f"{layer} pool_size must be a positive int or a pair of positive ints, "
            f"got {pool_size!r}"
        )
    return size  # type: ignore[return-value]


def _check_4d(layer: str, shape: tuple, what: str = "input") -> None:
    if len(shape) != 4:
        raise ValueError(f"{layer} {what} must be 4-D (B, H, W, C), got shape {shape}")


def _positions(ph: int, pw: int) -> Any:
    """int32 ``(1, 1, ph, 1, pw, 1)``: the position ``dy * pw + dx`` of each window element."""
    return ops.reshape(ops.arange(ph * pw, dtype="int32"), (1, 1, ph, 1, pw, 1))


class _Windowed(keras.layers.Layer):
    """Shared config of the two layers: a non-overlapping ``pool_size`` window."""

    def __init__(self, pool_size: int | tuple[int, int] = (2, 2), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pool_size(type(self).__name__, pool_size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="zoo")
class MaxPoolingWithArgmax2D(_Windowed):
    """Max pooling that also returns where each maximum was.

    Maps ``x`` of shape ``(B, H, W, C)`` to ``[pooled, indices]``, both of shape
    ``(B, H / ph, W / pw, C)``: ``pooled`` has ``x``'s dtype, ``indices`` is
    int32, the position ``dy * pw + dx`` of the maximum inside its window (the
    first one in row-major order when several elements tie). The gradient of
    ``pooled`` flows to that element only, as with ``MaxPooling2D``.

    Args:
        pool_size: window (and stride) ``(ph, pw)``, or one int for both.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).

    Raises:
        ValueError: a bad ``pool_size``; at build time, an input that is not 4-D
            or whose height or width is not a multiple of the pool size.
    """

    def build(self, input_shape: tuple) -> None:
        _check_4d(type(self).__name__, input_shape)
        for axis, label in ((1, "height"), (2, "width")):
            size, pool = input_shape[axis], self.pool_size[axis - 1]
            if size is not None and size % pool:
                raise ValueError(
                    f"MaxPoolingWithArgmax2D input {label} {size} is not a multiple "
                    f"of pool_size {self.pool_size}"
                )

    def call(self, inputs: Any) -> list[Any]:
        ph, pw = self.pool_size
        _, h, w, c = ops.shape(inputs)
        ho, wo = h // ph, w // pw
        # Max pooling gives the values, and its gradient goes to the first maximum
        # of each window, as with MaxPooling2D.
        pooled = ops.max_pool(inputs, self.pool_size, strides=self.pool_size, padding="valid")
        # Window axes 2 and 4 of (B, Ho, ph, Wo, pw, C) line up with the pooled map.
        windows = ops.reshape(inputs, (-1, ho, ph, wo, pw, c))
        is_peak = ops.equal(windows, ops.reshape(pooled, (-1, ho, 1, wo, 1, c)))
        # The first maximum in row-major order is the smallest position holding the
        # peak (so tied windows unpool one element): a min-pool of those positions.
        # Reductions over axes 2 and 4 are slow in TensorFlow; pooling is not.
        position = ops.cast(_positions(ph, pw), "float32")
        candidates = ops.where(is_peak, position, float(ph * pw))
        candidates = ops.reshape(candidates, (-1, h, w, c))
        first = -ops.max_pool(-candidates, self.pool_size, strides=self.pool_size, padding="valid")
        indices = ops.cast(first, "int32")
        return [pooled, indices]

    def compute_output_spec(self, inputs: Any) -> list[keras.KerasTensor]:
        b, h, w, c = inputs.shape
        ph, pw = self.pool_size
        shape = (b, None if h is None else h // ph, None if w is None else w // pw, c)
        return [
            keras.KerasTensor(shape, dtype=inputs.dtype),
            keras.KerasTensor(shape, dtype="int32"),
        ]


@keras.saving.register_keras_serializable(package="zoo")
class MaxUnpooling2D(_Windowed):
    """Put each value back where ``MaxPoolingWithArgmax2D`` found its maximum.

    Called on ``[values, indices]``, both ``(B, Ho, Wo, C)`` (``indices`` from
    the matching ``MaxPoolingWithArgmax2D`` with the same ``pool_size``);
    returns ``(B, Ho * ph, Wo * pw, C)``, zero everywhere but at the recorded
    positions. Differentiable with respect to ``values``.

    Args:
        pool_size: window ``(ph, pw)`` of the pooling it undoes, or one int.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).

    Raises:
        ValueError: a bad ``pool_size``; at build time, inputs that are not a
            pair of 4-D tensors of the same shape.
    """

    def build(self, input_shape: Any) -> None:
        name = type(self).__name__
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"{name} takes [values, indices], got input shape {input_shape}")
        values, indices = (tuple(s) for s in input_shape)
        _check_4d(name, values, "values")
        _check_4d(name, indices, "indices")
        pairs = zip(values, indices, strict=True)
        if any(a is not None and b is not None and a != b for a, b in pairs):
            raise ValueError(
                f"{name} values {values} and indices {indices} must have the same shape"
            )

    def call(self, inputs: list[Any]) -> Any:
        values, indices = inputs
        ph, pw = self.pool_size
        _, ho, wo, c = ops.shape(values)
        # Broadcast each value over its window, (B, Ho, ph, Wo, pw, C), keeping it
        # only at its recorded position; then merge the window axes back into H, W.
        values = ops.reshape(values, (-1, ho, 1, wo, 1, c))
        indices = ops.reshape(indices, (-1, ho, 1, wo, 1, c))
        spread = ops.where(
            ops.equal(indices, _positions(ph, pw)), values, ops.zeros((), values.dtype)
        )
        return ops.reshape(spread, (-1, ho * ph, wo * pw, c))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, h, w, c = input_shape[0]
        ph, pw = self.pool_size
        return (b, None if h is None else h * ph, None if w is None else w * pw, c)
