"""U-Net (Ronneberger, Fischer and Brox 2015, arXiv:1505.04597) and a shallow variant.

Contracting path: ``depth`` levels of two 3x3 convolutions then 2x2 max pooling,
the filters doubling at each level (64 → 1024 in the paper); a bottleneck of two
3x3 convolutions, with dropout at the end of the contracting path as in the
paper. Expanding path: a 2x2 up-convolution (``Conv2DTranspose``, stride 2)
halving the filters, concatenation with the encoder's feature map of the same
level (the skip), then two 3x3 convolutions; a 1x1 convolution classifies each
pixel. Two departures from the paper, both from the Universal-Models seed:
'same' padding, so the output has the input's size (the paper's valid
convolutions crop the output), and batch normalisation after every 3x3
convolution. With the defaults, 3 input channels and 2 classes the network has
31.05M parameters (the paper's 31.03M plus batch normalisation).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from zoo.models.blocks import (
    check_bool,
    check_divisible,
    check_fraction,
    check_int,
    conv_bn_relu,
    depth_divisor,
    segmentation_head,
)
from zoo.models.registry import register_model

__all__ = ["build_unet", "build_unet_shallow", "unet"]

_PAPER = "Ronneberger, Fischer, Brox 2015, U-Net, arXiv:1505.04597"
_MAX_DEPTH = 6


def unet(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    base_filters: int,
    depth: int,
    dropout: float,
    batch_norm: bool,
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net; the registered ``unet`` and ``unet_shallow`` differ only in defaults.

    Args:
        input_height, input_width: multiples of ``2 ** depth``.
        input_channels: channels of the input.
        n_classes: 1 → sigmoid, otherwise softmax.
        base_filters: filters of the first level; level ``i`` has
            ``base_filters * 2 ** i``, the bottleneck ``base_filters * 2 ** depth``.
        depth: number of down-samplings (levels of the contracting path), 1 to 6.
        dropout: dropout rate at the end of the contracting path, in [0, 1).
        batch_norm: batch normalisation after every 3x3 convolution.
        name: the model's name.

    Returns:
        A model mapping ``(B, H, W, C)`` to ``(B, H, W, n_classes)``.

    Raises:
        ValueError: an option out of range, or a size not a multiple of ``2 ** depth``.
    """
    check_int(name, "base_filters", base_filters, 1)
    check_int(name, "depth", depth, 1, _MAX_DEPTH)
    check_fraction(name, "dropout", dropout)
    check_bool(name, "batch_norm", batch_norm)
    check_divisible(
        name, input_height, input_width, 2**depth, f"depth={depth} halves them {depth} times"
    )

    def double_conv(x: Any, filters: int, prefix: str) -> Any:
        x = conv_bn_relu(x, filters, batch_norm=batch_norm, name=f"{prefix}_conv1")
        return conv_bn_relu(x, filters, batch_norm=batch_norm, name=f"{prefix}_conv2")

    inputs = keras.Input((input_height, input_width, input_channels), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = double_conv(x, base_filters * 2**level, f"enc{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)
    x = double_conv(x, base_filters * 2**depth, "bottleneck")
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        prefix = f"dec{level + 1}"
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"{prefix}_upconv")(x)
        x = layers.Concatenate(name=f"{prefix}_concat")([skips[level], x])
        x = double_conv(x, filters, prefix)
    outputs = segmentation_head(x, n_classes)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "unet",
    kind="image",
    divisor=depth_divisor(_MAX_DEPTH),
    options={"base_filters": 64, "depth": 4, "dropout": 0.5, "batch_norm": True},
    paper=_PAPER,
)
def build_unet(
    input_height: int, input_width: int, input_channels: int, n_classes: int, **options: Any
) -> keras.Model:
    """U-Net as in the paper: 64 base filters, 4 down-samplings, skips, up-convolutions (~31M).

    See ``unet`` for the options; the divisor is ``2 ** depth`` (16 by default).
    """
    return unet(input_height, input_width, input_channels, n_classes, **options, name="unet")


@register_model(
    "unet_shallow",
    kind="image",
    divisor=depth_divisor(_MAX_DEPTH),
    options={"base_filters": 16, "depth": 3, "dropout": 0.0, "batch_norm": True},
    paper=_PAPER,
)
def build_unet_shallow(
    input_height: int, input_width: int, input_channels: int, n_classes: int, **options: Any
) -> keras.Model:
    """Small U-Net: 3 down-samplings, 16 base filters, no dropout (~0.48M); quick sweeps.

    The same network as ``unet`` with a quarter of the filters and one level
    fewer (about 1/64 of the parameters); the divisor is ``2 ** depth`` (8 by default).
    """
    return unet(
        input_height, input_width, input_channels, n_classes, **options, name="unet_shallow"
    )
