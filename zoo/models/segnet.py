"""SegNet (Badrinarayanan, Kendall and Cipolla 2017, arXiv:1511.00561) and a shallow variant.

Encoder: the 13 convolutions of VGG16 in five blocks of 2-2-3-3-3 3x3
convolutions (64-128-256-512-512 filters), each followed by batch normalisation
and ReLU, each block ending in 2x2 max pooling that records where every maximum
was (``MaxPoolingWithArgmax2D``). Decoder: the mirror image; each block first
up-samples with those pooling indices (``MaxUnpooling2D``: every value goes back
to the position of its encoder maximum, zeros elsewhere, no learned
up-sampling), then applies as many 3x3 Conv-BN-ReLU as its encoder block, the
last one reducing the filters to those of the next block up. As in the authors'
Caffe model, the last decoder convolution is the 3x3 classifier (no batch
normalisation) followed by softmax (sigmoid for one class). 'same' padding: the
output has the input's size. With the defaults, 3 input channels and 2 classes
the network has 29.45M parameters.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from zoo.models.blocks import (
    check_divisible,
    check_int,
    conv_bn_relu,
    depth_divisor,
    segmentation_head,
)
from zoo.models.registry import register_model

__all__ = ["build_segnet", "build_segnet_shallow", "segnet"]

_PAPER = "Badrinarayanan, Kendall, Cipolla 2017, SegNet, arXiv:1511.00561"
# VGG16: convolutions per block and filters relative to the first block.
_VGG16_CONVS = (2, 2, 3, 3, 3)
_VGG16_WIDTHS = (1, 2, 4, 8, 8)


def segnet(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    base_filters: int,
    depth: int,
    kernel_size: int,
    name: str = "segnet",
) -> keras.Model:
    """Build a SegNet; the registered ``segnet`` and ``segnet_shallow`` differ only in defaults.

    Args:
        input_height, input_width: multiples of ``2 ** depth``.
        input_channels: channels of the input.
        n_classes: 1 → sigmoid, otherwise softmax.
        base_filters: filters of the first block (64 in the paper); block ``i``
            has ``base_filters * (1, 2, 4, 8, 8)[i]``.
        depth: number of encoder (and decoder) blocks, 1 to 5: the first
            ``depth`` blocks of VGG16.
        kernel_size: size of the square convolution kernels (3 in the paper).
        name: the model's name.

    Returns:
        A model mapping ``(B, H, W, C)`` to ``(B, H, W, n_classes)``.

    Raises:
        ValueError: an option out of range, or a size not a multiple of ``2 ** depth``.
    """
    check_int(name, "base_filters", base_filters, 1)
    check_int(name, "depth", depth, 1, len(_VGG16_CONVS))
    check_int(name, "kernel_size", kernel_size, 1)
    check_divisible(
        name, input_height, input_width, 2**depth, f"depth={depth} halves them {depth} times"
    )
    convs = _VGG16_CONVS[:depth]
    filters = [base_filters * w for w in _VGG16_WIDTHS[:depth]]

    inputs = keras.Input((input_height, input_width, input_channels), name="image")
    x = inputs
    indices = []
    for block, (n, f) in enumerate(zip(convs, filters, strict=True), start=1):
        for i in range(1, n + 1):
            x = conv_bn_relu(x, f, kernel_size, name=f"enc{block}_conv{i}")
        x, where = MaxPoolingWithArgmax2D(2, name=f"enc{block}_pool")(x)
        indices.append(where)
    for block in range(depth, 0, -1):
        n, f = convs[block - 1], filters[block - 1]
        x = MaxUnpooling2D(2, name=f"dec{block}_unpool")([x, indices[block - 1]])
        # Mirror of the encoder block: its convolutions in reverse order, so the
        # last one maps back to the channels of the block above (the classes at the top).
        for i in range(n, 1, -1):
            x = conv_bn_relu(x, f, kernel_size, name=f"dec{block}_conv{i}")
        if block > 1:
            x = conv_bn_relu(x, filters[block - 2], kernel_size, name=f"dec{block}_conv1")
    outputs = segmentation_head(x, n_classes, kernel_size=kernel_size)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "segnet",
    kind="image",
    divisor=depth_divisor(len(_VGG16_CONVS)),
    options={"base_filters": 64, "depth": 5, "kernel_size": 3},
    paper=_PAPER,
)
def build_segnet(
    input_height: int, input_width: int, input_channels: int, n_classes: int, **options: Any
) -> keras.Model:
    """SegNet as in the paper: VGG16 encoder, pooling-index unpooling decoder (~29.5M).

    See ``segnet`` for the options; the divisor is ``2 ** depth`` (32 by default).
    """
    return segnet(input_height, input_width, input_channels, n_classes, **options, name="segnet")


@register_model(
    "segnet_shallow",
    kind="image",
    divisor=depth_divisor(len(_VGG16_CONVS)),
    options={"base_filters": 32, "depth": 3, "kernel_size": 3},
    paper=_PAPER,
)
def build_segnet_shallow(
    input_height: int, input_width: int, input_channels: int, n_classes: int, **options: Any
) -> keras.Model:
    """Small SegNet: the first 3 VGG16 blocks at half width (~0.87M); quick sweeps.

    The same network as ``segnet`` with 32 base filters and 3 blocks (7 encoder
    convolutions); the divisor is ``2 ** depth`` (8 by default).
    """
    return segnet(
        input_height, input_width, input_channels, n_classes, **options, name="segnet_shallow"
    )
