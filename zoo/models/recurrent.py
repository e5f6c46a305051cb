"""ConvLSTM sequence models: segmentation of video and next-frame prediction.

Every model maps ``(B, T, H, W, C)`` to ``(B, T, out_h, out_w, n_classes)``. The
per-frame layers are wrapped in ``Framewise`` (a ``TimeDistributed`` that works
for any number of frames, see its docstring) and the recurrent ones are
``ConvLSTM2D(return_sequences=True)``, so the weights do not depend on ``T``:
one set of weights runs on sequences of any length, and weights trained on
whole sequences load into the ``stateful=True, timesteps=1, batchsize=B`` build
of the same model, which then predicts frame by frame (clear its state with
``zoo.reset_states(model)``). Both builds create the same layers in the same
order, which is what lets ``.weights.h5`` files move between them (they are
keyed by layer position, not by layer name).

The architectures follow the seed (Universal-Models): its ``lstm_unet``,
``lstm_shallow``, ``lstm_full`` and ``lstm_next_frame``, with the ConvLSTMs'
ReLU activations. Departures, all fixes: in ``lstm_full`` the first pooling
takes the output of the first two convolutions (the seed pooled the raw input,
leaving those convolutions unconnected); ``lstm_next_frame`` builds and trains
(the seed's refused to build) with a serialisable ``DepthToSpace`` layer and a
batch normalisation after each ConvLSTM (without it the five gated ReLU
ConvLSTMs shrink activations about 1e5-fold at initialisation).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from zoo.layers.depth_to_space import DepthToSpace
from zoo.layers.time_distributed import Framewise
from zoo.models.blocks import BN_MOMENTUM
from zoo.models.registry import register_model

# ---------------------------------------------------------------- helpers


def _check_positive_int(model: str, option: str, value: Any, multiple_of: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % multiple_of:
        need = "a positive int" if multiple_of == 1 else f"a positive multiple of {multiple_of}"
        raise ValueError(f"model {model!r} option {option} must be {need}, got {value!r}")


def _sequence_input(
    model: str,
    height: int,
    width: int,
    channels: int,
    *,
    stateful: bool,
    timesteps: int | None,
    batchsize: int | None,
) -> keras.KerasTensor:
    """The model input: ``(batchsize, timesteps, H, W, C)``.

    Stateless builds leave the batch axis free and the time axis free unless
    ``timesteps`` is given; stateful ConvLSTMs need both fixed (their state has
    one slot per sample).
    """
    if not isinstance(stateful, bool):
        raise ValueError(f"model {model!r} option stateful must be True or False, got {stateful!r}")
    for option, value in (("timesteps", timesteps), ("batchsize", batchsize)):
        if value is not None:
            _check_positive_int(model, option, value)
    batch = batchsize if stateful else None
    return keras.Input(batch_shape=(batch, timesteps, height, width, channels), name="frames")


def _conv(x: Any, filters: int, kernel: int, strides: int = 1) -> Any:
    """Per-frame ReLU convolution, 'same' padding."""
    conv = layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu")
    return Framewise(conv)(x)


def _batch_norm(x: Any) -> Any:
    return Framewise(layers.BatchNormalization(momentum=BN_MOMENTUM))(x)


def _pool(x: Any) -> Any:
    return Framewise(layers.MaxPooling2D(2))(x)


def _upsample(x: Any) -> Any:
    return Framewise(layers.UpSampling2D(2))(x)


def _conv_lstm(x: Any, filters: int, kernel: int, stateful: bool) -> Any:
    """A ConvLSTM that returns the whole sequence, so frames stay aligned with the input."""
    lstm = layers.ConvLSTM2D(
        filters,
        kernel,
        padding="same",
        activation="relu",
        return_sequences=True,
        stateful=stateful,
    )
    return lstm(x)


def _head(inputs: keras.KerasTensor, x: Any, n_classes: int, name: str) -> keras.Model:
    """Per-frame 1x1 classifier: sigmoid for one class, softmax over classes otherwise.

    The wrapper computes in float32 so that mixed-precision training keeps the
    probabilities (and the loss on them) in full precision.
    """
    activation = "sigmoid" if n_classes == 1 else "softmax"
    classifier = layers.Conv2D(n_classes, 1, padding="same", activation=activation)
    outputs = Framewise(classifier, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------- models


@register_model("lstm_unet", kind="sequence", divisor=8, options={"filters": 16})
def build_lstm_unet(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    filters: int,
    stateful: bool,
    timesteps: int | None,
    batchsize: int | None,
) -> keras.Model:
    """UNet on every frame with a ConvLSTM between encoder and decoder.

    Three poolings (height and width multiples of 8); the encoder has
    ``filters``, 2x, 4x and 8x ``filters`` channels, the bottleneck ConvLSTM
    4x ``filters``; skip connections concatenate encoder and decoder frames.

    Args:
        input_height, input_width, input_channels: frame size.
        n_classes: 1 (sigmoid) or more (softmax).
        filters: channels of the first stage.
        stateful, timesteps, batchsize: see ``zoo.get_model``.

    Returns:
        A model mapping (B, T, H, W, C) to (B, T, H, W, n_classes).
    """
    name = "lstm_unet"
    _check_positive_int(name, "filters", filters)
    inputs = _sequence_input(
        name,
        input_height,
        input_width,
        input_channels,
        stateful=stateful,
        timesteps=timesteps,
        batchsize=batchsize,
    )
    x = _batch_norm(_conv(inputs, filters, 3))
    skips = [x]
    for factor in (2, 4):
        x = _pool(x)
        x = _batch_norm(_conv(_conv(x, factor * filters, 3), factor * filters, 3))
        skips.append(x)
    x = _pool(x)
    x = _batch_norm(_conv(_conv(x, 8 * filters, 3), 8 * filters, 3))

    x = _conv_lstm(x, 4 * filters, 3, stateful)

    for factor, skip in zip((8, 4, 2), reversed(skips), strict=True):
        x = _upsample(x)
        x = _batch_norm(_conv(_conv(x, factor * filters, 3), factor * filters, 3))
        x = layers.Concatenate(axis=-1)([skip, x])
    x = _batch_norm(_conv(_conv(x, filters, 3), filters, 3))
    return _head(inputs, x, n_classes, name)


@register_model("lstm_shallow", kind="sequence", divisor=2, options={"filters": 16})
def build_lstm_shallow(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    filters: int,
    stateful: bool,
    timesteps: int | None,
    batchsize: int | None,
) -> keras.Model:
    """One pooling, one ConvLSTM at half resolution, one up-sampling.

    5x5 convolutions with ``filters`` and 2x ``filters`` channels around a
    ConvLSTM of ``filters`` channels; height and width must be even.

    Args:
        input_height, input_width, input_channels: frame size.
        n_classes: 1 (sigmoid) or more (softmax).
        filters: channels of the full-resolution convolutions.
        stateful, timesteps, batchsize: see ``zoo.get_model``.

    Returns:
        A model mapping (B, T, H, W, C) to (B, T, H, W, n_classes).
    """
    name = "lstm_shallow"
    _check_positive_int(name, "filters", filters)
    inputs = _sequence_input(
        name,
        input_height,
        input_width,
        input_channels,
        stateful=stateful,
        timesteps=timesteps,
        batchsize=batchsize,
    )
    x = _batch_norm(_conv(_conv(inputs, filters, 5), filters, 5))
    x = _pool(x)
    x = _conv(x, 2 * filters, 5)
    x = _conv_lstm(x, filters, 3, stateful)
    x = _batch_norm(_conv(x, 2 * filters, 5))
    x = _upsample(x)
    x = _batch_norm(_conv(_conv(x, filters, 5), filters, 5))
    return _head(inputs, x, n_classes, name)


@register_model("lstm_full", kind="sequence", divisor=4, options={"filters": 8})
def build_lstm_full(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    filters: int,
    stateful: bool,
    timesteps: int | None,
    batchsize: int | None,
) -> keras.Model:
    """Convolutional encoder, two stacked 5x5 ConvLSTMs at quarter resolution, decoder.

    Two poolings (height and width multiples of 4); convolutions have
    2x ``filters`` channels, the ConvLSTMs ``filters``.

    Args:
        input_height, input_width, input_channels: frame size.
        n_classes: 1 (sigmoid) or more (softmax).
        filters: channels of the ConvLSTMs (the convolutions have twice as many).
        stateful, timesteps, batchsize: see ``zoo.get_model``.

    Returns:
        A model mapping (B, T, H, W, C) to (B, T, H, W, n_classes).
    """
    name = "lstm_full"
    _check_positive_int(name, "filters", filters)
    inputs = _sequence_input(
        name,
        input_height,
        input_width,
        input_channels,
        stateful=stateful,
        timesteps=timesteps,
        batchsize=batchsize,
    )
    x = inputs
    for _ in range(2):
        x = _conv(_conv(x, 2 * filters, 3), 2 * filters, 3)
        x = _batch_norm(_pool(x))
    for _ in range(2):
        x = _batch_norm(_conv_lstm(x, filters, 5, stateful))
    x = _upsample(x)
    x = _conv(_conv(x, 2 * filters, 3), 2 * filters, 3)
    x = _upsample(x)
    x = _conv(_conv(x, 2 * filters, 3), filters, 3)
    return _head(inputs, x, n_classes, name)


@register_model(
    "lstm_next_frame", kind="sequence", divisor=8, task="next_frame", options={"filters": 8}
)
def build_lstm_next_frame(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    filters: int,
    stateful: bool,
    timesteps: int | None,
    batchsize: int | None,
) -> keras.Model:
    """Next-frame prediction: strided convolutions and ConvLSTMs, depth-to-space decoder.

    Output frame ``t`` is the prediction of input frame ``t + 1`` (the dataset
    supplies the shifted targets); use ``n_classes=1`` for greyscale frames in
    [0, 1]. Three stride-2 convolutions (height and width multiples of 8), each
    followed by a ConvLSTM with ``filters``, 2x and 4x ``filters`` channels;
    the decoder up-samples by ``DepthToSpace`` (4 channels become one pixel of
    a 2x2 block), so ``filters`` must be a multiple of 4.

    Args:
        input_height, input_width, input_channels: frame size.
        n_classes: channels predicted (1 sigmoid, more softmax).
        filters: channels of the first stage, a multiple of 4.
        stateful, timesteps, batchsize: see ``zoo.get_model``.

    Returns:
        A model mapping (B, T, H, W, C) to (B, T, H, W, n_classes).
    """
    name = "lstm_next_frame"
    _check_positive_int(name, "filters", filters, multiple_of=4)
    inputs = _sequence_input(
        name,
        input_height,
        input_width,
        input_channels,
        stateful=stateful,
        timesteps=timesteps,
        batchsize=batchsize,
    )
    x = _conv(inputs, filters, 5, strides=2)
    x = _batch_norm(_conv_lstm(x, filters, 5, stateful))
    x = _conv(x, 2 * filters, 3, strides=2)
    x = _batch_norm(_conv_lstm(x, 2 * filters, 5, stateful))
    x = _conv(x, 4 * filters, 3, strides=2)
    x = _batch_norm(_conv_lstm(x, 4 * filters, 5, stateful))
    # Each DepthToSpace doubles height and width and divides channels by 4.
    for stage_filters in (2 * filters, filters):
        x = Framewise(DepthToSpace(2))(x)
        x = _conv(x, stage_filters, 3)
        x = _batch_norm(_conv_lstm(x, stage_filters, 5, stateful))
    x = Framewise(DepthToSpace(2))(x)
    return _head(inputs, x, n_classes, name)
