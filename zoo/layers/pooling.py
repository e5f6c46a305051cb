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


class _Windowed(keras.layers.Layer):
    """Shared config of the two layers: a non-overlapping ``pool_size`` window."""

    def __init__(self, pool_size: int | tuple[int, int] = (2, 2), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pool_size(type(self).__name__, pool_size)

    @property
    def window(self) -> int:
        """Number of elements in one window."""
        return self.pool_size[0] * self.pool_size[1]

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
        # (B, H, W, C) -> (B, Ho, Wo, C, ph * pw): one row per window, row-major inside.
        windows = ops.reshape(inputs, (-1, h // ph, ph, w // pw, pw, c))
        windows = ops.transpose(windows, (0, 1, 3, 5, 2, 4))
        windows = ops.reshape(windows, (-1, h // ph, w // pw, c, ph * pw))
        peak = ops.max(windows, axis=-1, keepdims=True)
        hits = ops.cast(ops.equal(windows, peak), "int32")
        # Keep the first maximum only, so tied windows do not unpool twice.
        first = ops.logical_and(ops.equal(hits, 1), ops.equal(ops.cumsum(hits, axis=-1), 1))
        indices = ops.cast(ops.argmax(ops.cast(first, "int32"), axis=-1), "int32")
        # Sum of the one selected element: routes the gradient to it alone.
        pooled = ops.sum(ops.where(first, windows, ops.zeros_like(windows)), axis=-1)
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
        # One-hot over the window, scaled by the value: (B, Ho, Wo, C, ph * pw).
        spread = ops.one_hot(indices, self.window, dtype=values.dtype) * values[..., None]
        spread = ops.reshape(spread, (-1, ho, wo, c, ph, pw))
        spread = ops.transpose(spread, (0, 1, 4, 2, 5, 3))
        return ops.reshape(spread, (-1, ho * ph, wo * pw, c))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, h, w, c = input_shape[0]
        ph, pw = self.pool_size
        return (b, None if h is None else h * ph, None if w is None else w * pw, c)
