"""``Framewise``: a ``TimeDistributed`` that is right for any number of frames."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

__all__ = ["Framewise"]


@keras.saving.register_keras_serializable(package="zoo")
class Framewise(layers.TimeDistributed):
    """``TimeDistributed`` that folds time into the batch: right for any number of frames.

    Keras 3.15's ``TimeDistributed`` maps its layer over ``range(batch size)``
    instead of ``range(timesteps)`` when the time axis is not static, so a model
    with a free time axis traced on one sequence length silently returns that
    many frames for every other length (``predict`` on T=2 then T=5 gives 2
    frames). Reshaping (B, T, ...) to (B * T, ...) and back has no such case
    and runs the wrapped layer once per step instead of once per frame; batch
    normalisation then takes its statistics over all B * T frames.

    Input (B, T, *frame_shape) with a static frame shape; output
    (B, T, *layer_output_shape). Masks are not supported (no zoo model uses them).
    """

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if mask is not None:
            raise ValueError(f"Framewise layer {self.name!r} does not support masks")
        frame_shape = tuple(inputs.shape[2:])
        if None in frame_shape:
            raise ValueError(
                f"Framewise layer {self.name!r} needs a static frame shape, got {inputs.shape}"
            )
        batch_and_time = ops.shape(inputs)[:2]
        frames = ops.reshape(inputs, (-1, *frame_shape))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        outputs = self.layer.call(frames, **kwargs)
        return ops.reshape(outputs, (*batch_and_time, *outputs.shape[1:]))
