"""``testnet``: a tiny encoder-decoder for smoke tests and quick sweeps.

Three encoder blocks (Conv-BN-ReLU, then 2x2 max pooling) and three decoder
blocks (2x up-sampling, then Conv-BN-ReLU), no skip connections, as the
Universal-Models seed describes it: the smallest network that still learns a
segmentation, so a whole sweep runs in seconds on a CPU.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo.models.blocks import check_bool, check_int, conv_bn_relu, segmentation_head
from zoo.models.registry import register_model

__all__ = ["build_testnet"]

_BLOCKS = 3  # each halves the size once: divisor 2 ** 3 = 8


@register_model(
    "testnet",
    kind="image",
    divisor=2**_BLOCKS,
    options={"base_filters": 16, "batch_norm": True},
)
def build_testnet(
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    *,
    base_filters: int,
    batch_norm: bool,
) -> keras.Model:
    """Tiny 3-block encoder-decoder with batch normalisation; fast smoke-test model.

    Encoder filters are ``base_filters * (1, 2, 4)``, the decoder mirrors them.

    Args:
        input_height, input_width: multiples of 8.
        input_channels: channels of the input.
        n_classes: 1 → sigmoid, otherwise softmax.
        base_filters: filters of the first block.
        batch_norm: batch normalisation after every convolution.

    Returns:
        A model mapping ``(B, H, W, C)`` to ``(B, H, W, n_classes)``.
    """
    check_int("testnet", "base_filters", base_filters, 1)
    check_bool("testnet", "batch_norm", batch_norm)
    filters = [base_filters * 2**i for i in range(_BLOCKS)]

    inputs = keras.Input((input_height, input_width, input_channels), name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = conv_bn_relu(x, f, batch_norm=batch_norm, name=f"enc{i}_conv")
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    for i, f in zip(range(_BLOCKS, 0, -1), reversed(filters), strict=True):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        x = conv_bn_relu(x, f, batch_norm=batch_norm, name=f"dec{i}_conv")
    outputs = segmentation_head(x, n_classes)
    return keras.Model(inputs, outputs, name="testnet")
