"""The model registry and ``get_model``: one entry point for every architecture.

A model family file defines a builder and registers it with ``@register_model``::

    @register_model("unet", kind="image", divisor=16,
                    options={"base_filters": 64, "depth": 4, "dropout": 0.5})
    def build_unet(input_height, input_width, input_channels, n_classes, *,
                   base_filters, depth, dropout, **common) -> keras.Model: ...

``get_model`` checks the name, the size constraint and the options before calling
the builder, so every model reports bad input the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from zoo.registry import Registry

MODEL_KINDS = ("image", "sequence", "semi_supervised")

# What a model's targets can be when it registers none: any image or sequence network
# built with n_classes=1 (sigmoid) predicts greyscale frames as well as masks, as the seed
# (Universal-Models) promised; a semi-supervised model's unlabelled branch needs classes.
DEFAULT_TASKS: dict[str, tuple[str, ...]] = {
    "image": ("segmentation", "next_frame"),
    "sequence": ("segmentation", "next_frame"),
    "semi_supervised": ("segmentation",),
}

# Options every sequence model takes, as in the seed (Universal-Models).
SEQUENCE_OPTIONS: dict[str, Any] = {"stateful": False, "timesteps": None, "batchsize": None}


@dataclass(frozen=True)
class ModelInfo:
    """What ``describe_model`` returns.

    Attributes:
        name: registry name.
        kind: ``image`` (B,H,W,C), ``sequence`` (B,T,H,W,C) or ``semi_supervised``.
        divisor: height and width must be multiples of this (2 ** number of poolings).
        min_size: smallest height/width accepted.
        options: option name → default value accepted as ``**options``.
        summary: one line saying what the model is.
        paper: reference, if the architecture follows one.
        task: ``segmentation`` or ``next_frame``, what the model is built for (its
            first task).
        tasks: every task it trains on (next-frame prediction with ``n_classes=1``).
        divisor_rule: for models whose depth is an option, the divisor as a
            function of the options (``divisor`` is its value at the defaults).
    """

    name: str
    kind: str
    divisor: int
    min_size: int
    options: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    paper: str = ""
    task: str = "segmentation"
    tasks: tuple[str, ...] = ("segmentation",)
    divisor_rule: Callable[[dict[str, Any]], int] | None = field(default=None, repr=False)

    def divisor_for(self, options: dict[str, Any]) -> int:
        """The divisor for these (complete) options; the default one if they are invalid.

        Invalid options are left to the builder, which names them in its error.
        """
        if self.divisor_rule is None:
            return self.divisor
        try:
            return int(self.divisor_rule(options))
        except (TypeError, ValueError, KeyError, OverflowError):
            return self.divisor

    def constraint_for(self, options: dict[str, Any]) -> str:
        """The size constraint for these options, as a sentence."""
        divisor = self.divisor_for(options)
        min_size = max(self.min_size, divisor) if self.divisor_rule is None else divisor
        return f"height and width must be multiples of {divisor} and at least {min_size}"

    @property
    def constraint(self) -> str:
        """The size constraint at the default options, as a sentence."""
        return self.constraint_for(self.options)


class InputSizeError(ValueError):
    """A height or width the architecture cannot take (its size constraint names why).

    A ``ValueError`` like every other bad input; its own class lets a caller tell "this
    model does not fit this data" from "this option is wrong" (``bench.spec.model`` leaves such
    model x dataset cells out under ``skip_incompatible``).
    """


Builder = Callable[..., keras.Model]
MODELS: Registry[tuple[ModelInfo, Builder]] = Registry("model")


def register_model(
    name: str,
    *,
    kind: str,
    divisor: int | Callable[[dict[str, Any]], int] = 1,
    min_size: int | None = None,
    options: dict[str, Any] | None = None,
    paper: str = "",
    task: str | tuple[str, ...] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name``.

    ``divisor`` is an int, or a function of the options when they set the number
    of poolings (``lambda o: 2 ** o["depth"]``). The builder is called as
    ``builder(input_height, input_width, input_channels, n_classes, **options)``
    with every option filled in (defaults merged with the user's) and must return
    a ``keras.Model``. Sequence models get the seed's ``stateful``, ``timesteps``
    and ``batchsize`` options automatically. ``task`` is a task or a tuple of them
    (the first is ``ModelInfo.task``); by default ``DEFAULT_TASKS`` of its kind.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    tasks = DEFAULT_TASKS[kind] if task is None else (
        (task,) if isinstance(task, str) else tuple(task))
    opts = dict(options or {})
    if kind == "sequence":
        opts = {**SEQUENCE_OPTIONS, **opts}

    def decorator(builder: Builder) -> Builder:
        doc = (builder.__doc__ or "").strip()
        rule = divisor if callable(divisor) else None
        default_divisor = int(rule(opts)) if rule else int(divisor)
        info = ModelInfo(
            name=name,
            kind=kind,
            divisor=default_divisor,
            min_size=min_size if min_size is not None else default_divisor,
            options=opts,
            summary=doc.splitlines()[0] if doc else "",
            paper=paper,
            task=tasks[0],
            tasks=tasks,
            divisor_rule=rule,
        )
        MODELS.add(name, (info, builder), summary=info.summary)
        return builder

    return decorator


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, optionally filtered by a glob such as ``"*unet*"``."""
    return MODELS.names(pattern)


def describe_model(name: str) -> ModelInfo:
    """Kind, size constraint, options and summary of model ``name``."""
    return MODELS.get(name)[0]


def _option_kind(default: Any) -> tuple[str, Callable[[Any], bool]] | None:
    """What an option's default says its values must be: (description, test), or None."""
    if isinstance(default, bool):
        return "True or False", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return "an int", lambda v: isinstance(v, int) and not isinstance(v, bool)
    if isinstance(default, float):
        return "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(default, (list, tuple)):
        return "a list", lambda v: isinstance(v, (list, tuple))
    return None  # None (e.g. seed, timesteps) or another type: the builder checks it


def _check_option_types(info: ModelInfo, options: dict[str, Any]) -> None:
    """ValueError for an option whose value is not of its default's type.

    Ranges (``base_filters >= 1``, ``dropout`` in [0, 1)) are the builders' to check;
    this catches, for every model alike, a string or a float where an int is meant,
    before it reaches Keras as an unreadable error.
    """
    for key, value in options.items():
        kind = _option_kind(info.options[key])
        if kind is not None and not kind[1](value):
            raise ValueError(f"model {info.name!r} option {key} must be {kind[0]}, got {value!r}")


def _check_size(info: ModelInfo, height: int, width: int, options: dict[str, Any]) -> None:
    divisor = info.divisor_for(options)
    min_size = divisor if info.divisor_rule else max(info.min_size, divisor)
    for label, value in (("input_height", height), ("input_width", width)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{label} must be an int, got {value!r}")
        if value < min_size or value % divisor:
            raise InputSizeError(
                f"model {info.name!r} cannot take {label}={value}: "
                f"{info.constraint_for(options)}"
            )


def check_model(
    name: str,
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    **options: Any,
) -> dict[str, Any]:
    """Every check ``get_model`` makes before it builds; the options with defaults filled in.

    The builder may still refuse an option's value (a range it alone knows). With the
    default options every registered model builds at any size this accepts, which is
    what lets spec validation skip building those.

    Raises:
        ValueError: as ``get_model``, for what can be checked without building.
    """
    info = MODELS.get(name)[0]
    for label, value in (("input_channels", input_channels), ("n_classes", n_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(sorted(info.options)) or "none"
        raise ValueError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"allowed options: {allowed}"
        )
    _check_option_types(info, options)
    merged = {**info.options, **options}
    _check_size(info, input_height, input_width, merged)
    if merged.get("stateful") and (not merged.get("timesteps") or not merged.get("batchsize")):
        raise ValueError(
            f"model {name!r} with stateful=True needs timesteps and batchsize "
            f"(got timesteps={merged.get('timesteps')!r}, batchsize={merged.get('batchsize')!r})"
        )
    return merged


def get_model(
    name: str,
    input_height: int,
    input_width: int,
    input_channels: int,
    n_classes: int,
    **options: Any,
) -> tuple[keras.Model, int, int]:
    """Build a registered model.

    Args:
        name: one of ``list_models()``.
        input_height, input_width: spatial size of the input frames.
        input_channels: channels of the input (1 greyscale, 3 RGB, ...).
        n_classes: 1 gives a sigmoid output (binary mask, greyscale frame),
            2 or more a softmax over the last axis.
        **options: model options, see ``describe_model(name).options``.

    Returns:
        ``(model, out_h, out_w)``. Image models map (B, H, W, C) to
        (B, out_h, out_w, n_classes); sequence models map (B, T, H, W, C) to
        (B, T, out_h, out_w, n_classes).

    Raises:
        ValueError: unknown name or option, an option value of the wrong type or
            range, a size the architecture cannot take, bad channel or class counts,
            or a stateful build without ``timesteps`` and ``batchsize``.
    """
    merged = check_model(name, input_height, input_width, input_channels, n_classes, **options)
    builder = MODELS.get(name)[1]
    model = builder(input_height, input_width, input_channels, n_classes, **merged)
    out_h, out_w = model.output_shape[-3], model.output_shape[-2]
    return model, int(out_h), int(out_w)


def reset_states(model: keras.Model) -> None:
    """Clear the state of every stateful recurrent layer in ``model``.

    Keras 3 models have no ``reset_states``; each stateful RNN layer has
    ``reset_state``, so walk the layers (including those wrapped or nested).
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()
