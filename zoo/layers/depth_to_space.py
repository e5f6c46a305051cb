"""``DepthToSpace``: sub-pixel up-sampling as a serialisable layer (not a Lambda).

Used by ``lstm_next_frame`` (wrapped in ``TimeDistributed``) to double the
resolution by moving channels into space, as in the original Universal-Models
next-frame network. A Lambda around ``keras.ops.depth_to_space`` would not load
with ``safe_mode=True``; this layer does, after ``import zoo``.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["DepthToSpace"]

_DATA_FORMATS = ("channels_last", "channels_first")


@keras.saving.register_keras_serializable(package="zoo")
class DepthToSpace(keras.layers.Layer):
    """Rearrange channels into ``block_size x block_size`` spatial blocks (pixel shuffle).

    Maps ``(B, H, W, C * r**2)`` to ``(B, H * r, W * r, C)`` for
    ``channels_last`` (``(B, C * r**2, H, W)`` to ``(B, C, H * r, W * r)`` for
    ``channels_first``), where ``r = block_size``. The inverse of
    ``keras.ops.space_to_depth``. No weights.

    Args:
        block_size: up-sampling factor ``r``, an int >= 2.
        data_format: ``"channels_last"`` or ``"channels_first"``; ``None`` uses
            ``keras.config.image_data_format()``.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).

    Raises:
        ValueError: a bad ``block_size`` or ``data_format``; at build time, an
            input that is not 4-D or whose channels are not a multiple of
            ``block_size ** 2``.
    """

    def __init__(self, block_size: int = 2, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 2:
            raise ValueError(f"DepthToSpace block_size must be an int >= 2, got {block_size!r}")
        data_format = data_format or keras.config.image_data_format()
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"DepthToSpace data_format must be one of {_DATA_FORMATS}, got {data_format!r}"
            )
        self.block_size = block_size
        self.data_format = data_format

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 4:
            raise ValueError(
                f"DepthToSpace {self.name!r} expects a 4-D input (batch, height, width, "
                f"channels); got shape {tuple(input_shape)} (wrap it in TimeDistributed "
                f"for sequences)"
            )
        channels = input_shape[self._channel_axis()]
        if channels is not None and channels % self.block_size**2:
            raise ValueError(
                f"DepthToSpace {self.name!r} needs channels divisible by "
                f"block_size**2 = {self.block_size**2}; got {channels}"
            )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return keras.ops.depth_to_space(inputs, self.block_size, data_format=self.data_format)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        r = self.block_size

        def up(dim: int | None) -> int | None:
            return None if dim is None else dim * r

        def down(dim: int | None) -> int | None:
            return None if dim is None else dim // r**2

        if self.data_format == "channels_last":
            b, h, w, c = input_shape
            return (b, up(h), up(w), down(c))
        b, c, h, w = input_shape
        return (b, down(c), up(h), up(w))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"block_size": self.block_size, "data_format": self.data_format})
        return config
