"""Building blocks shared by the model families: conv blocks, the output head, option checks.

Every block works on image tensors ``(B, H, W, C)``; with ``time_distributed=True``
its convolution is wrapped in ``TimeDistributed`` so the same block works on
sequences ``(B, T, H, W, C)`` with weights shared over time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras import layers

from zoo.layers.time_distributed import Framewise

__all__ = [
    "check_bool",
    "BN_MOMENTUM",
    "check_divisible",
    "depth_divisor",
    "check_fraction",
    "check_int",
    "conv_bn_relu",
    "output_activation",
    "segmentation_head",
]


# Batch-norm running statistics follow the batches with this momentum. Keras's 0.99
# needs several hundred steps to forget its initial statistics, so the short trials a
# sweep runs would validate on unsettled ones (validation IoU falling back to
# background-only while training IoU rises); 0.9 is PyTorch's default (its 0.1).
BN_MOMENTUM = 0.9


def conv_bn_relu(
    x: Any,
    filters: int,
    kernel_size: int = 3,
    *,
    batch_norm: bool = True,
    time_distributed: bool = False,
    name: str | None = None,
) -> Any:
    """Conv2D ('same' padding) → BatchNormalization → ReLU.

    Args:
        x: ``(B, H, W, C)`` tensor, or ``(B, T, H, W, C)`` with ``time_distributed``.
        filters: output channels.
        kernel_size: square kernel size.
        batch_norm: add the batch normalisation; without it the convolution
            keeps its bias (with it the bias is redundant, BN's offset replaces it).
        time_distributed: wrap the convolution in ``TimeDistributed`` (batch
            normalisation and ReLU act on the last axis of any rank as they are).
        name: prefix of the layer names (``name``, ``name_bn``, ``name_relu``);
            ``None`` lets Keras choose.

    Returns:
        ``(B, H, W, filters)`` (or ``(B, T, H, W, filters)``).
    """

    def named(suffix: str) -> str | None:
        return None if name is None else f"{name}{suffix}"

    if time_distributed:
        # The wrapper carries the name the user sees.
        conv = layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm)
        x = Framewise(conv, name=named(""))(x)
    else:
        x = layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=not batch_norm, name=named("")
        )(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=named("_bn"))(x)
    return layers.Activation("relu", name=named("_relu"))(x)


def output_activation(n_classes: int) -> str:
    """``"sigmoid"`` for one class (binary mask, grey frame), else ``"softmax"``."""
    return "sigmoid" if n_classes == 1 else "softmax"


def segmentation_head(
    x: Any,
    n_classes: int,
    *,
    kernel_size: int = 1,
    time_distributed: bool = False,
    name: str = "output",
) -> Any:
    """Per-pixel classifier: Conv2D to ``n_classes`` with sigmoid or softmax, in float32.

    The layer (the ``TimeDistributed`` wrapper when there is one) has
    ``dtype="float32"`` so that, under a mixed-precision policy, the
    probabilities and the loss are computed in float32.

    Args:
        x: ``(B, H, W, C)`` or, with ``time_distributed``, ``(B, T, H, W, C)``.
        n_classes: 1 → sigmoid, 2 or more → softmax over the last axis.
        kernel_size: square kernel of the classifier convolution.
        time_distributed: wrap the convolution in ``TimeDistributed``.
        name: name of the output layer.

    Returns:
        ``(B, H, W, n_classes)`` (or ``(B, T, H, W, n_classes)``) probabilities.
    """
    activation = output_activation(n_classes)
    if time_distributed:
        conv = layers.Conv2D(n_classes, kernel_size, padding="same", activation=activation)
        return Framewise(conv, name=name, dtype="float32")(x)
    conv = layers.Conv2D(
        n_classes, kernel_size, padding="same", activation=activation,
        dtype="float32", name=name,
    )
    return conv(x)


def check_int(model: str, option: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an int in ``[minimum, maximum]``; ``ValueError`` naming both otherwise."""
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(f"model {model!r} option {option} must be an int {allowed}, got {value!r}")
    return value


def check_fraction(model: str, option: str, value: Any) -> float:
    """``value`` as a float if it is a number in ``[0, 1)``; ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"model {model!r} option {option} must be a number in [0, 1), got {value!r}"
        )
    return float(value)


def check_bool(model: str, option: str, value: Any) -> bool:
    """``value`` if it is a bool; ``ValueError`` otherwise."""
    if not isinstance(value, bool):
        raise ValueError(f"model {model!r} option {option} must be True or False, got {value!r}")
    return value


def check_divisible(model: str, height: int, width: int, divisor: int, why: str) -> None:
    """Raise ``ValueError`` unless ``height`` and ``width`` are multiples of ``divisor``.

    ``get_model`` already checks the registered divisor; builders call this when
    an option (such as ``depth``) changes how many times the input is halved.

    Args:
        model: registry name, for the message.
        height, width: input size.
        divisor: the multiple required.
        why: what sets the divisor, e.g. ``"depth=5 halves it 5 times"``.
    """
    for label, value in (("input_height", height), ("input_width", width)):
        if value % divisor:
            raise ValueError(
                f"model {model!r} cannot take {label}={value}: height and width must be "
                f"multiples of {divisor} ({why})"
            )



def depth_divisor(max_depth: int) -> Callable[[dict], int]:
    """The size rule of a model whose ``depth`` option counts its 2x2 poolings.

    Returns a function of the options giving ``2 ** depth``. It raises
    ``ValueError`` for a depth outside ``[1, max_depth]`` so that ``get_model``
    leaves that error to the builder, which names the allowed range.
    """

    def divisor(options: dict) -> int:
        depth = options["depth"]
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= max_depth:
            raise ValueError(f"depth {depth!r} outside [1, {max_depth}]")
        return 2**depth

    return divisor
