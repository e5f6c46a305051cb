"""Whether a model, a loss, a metric or an option suits a dataset, asked before anything trains.

A benchmark checks its plan with these once (zoobench's spec does), so that a model too deep
for the images or a loss whose per-class weights miss a class fails in a second, not in
every trial. ``ValueError`` is a mistake in the options themselves; ``IncompatibleError``
(a ``ValueError``) means the options are fine but the data is not for this model or loss,
so a benchmark may leave that pairing out instead. ``info`` is a dataset's ``DatasetInfo``
(``zoo.datasets.load``); without it only what needs no data is checked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zoo.datasets import describe_dataset
from zoo.losses import get_loss
from zoo.metrics import TASKS, default_metrics
from zoo.models import describe_model, get_model
from zoo.models.registry import InputSizeError
from zoo.models.registry import check_model as _check_model_size

# Models already built in this process by ``check_model``: building a 31M-parameter U-Net
# takes about 1.5 s on 2 cores; check the same plan twice (tests, notebooks) and it is built once.
_BUILT: set[str] = set()


class IncompatibleError(ValueError):
    """A model or loss that cannot take a dataset (its kind, task, size or classes), not a
    mistake in its own options."""


def check_model(model: str, options: dict[str, Any], info: Any = None) -> None:
    """ValueError when model ``model`` with ``options`` cannot take the dataset ``info``
    (``IncompatibleError`` when the options are fine but the data is not for this model).

    ``info`` None: only the option names are checked. Otherwise the kind, task and size are
    checked for these options, and a model given options is built once with the dataset's
    shapes, so that its builder checks their values (0.3 s for testnet, 1.5 s for a 31M U-Net).
    """
    desc = describe_model(model)
    unknown = sorted(set(options) - set(desc.options))
    if unknown:
        raise ValueError(f"model {model!r} has no option {', '.join(unknown)}; allowed "
                         f"options: {', '.join(sorted(desc.options)) or 'none'}")
    if info is None:
        return
    wanted_kind = "sequence" if desc.kind == "sequence" else "image"
    if info.kind != wanted_kind:
        raise IncompatibleError(f"model {model!r} ({desc.kind}) needs a dataset of kind "
                                f"{wanted_kind}; dataset {info.name!r} is {info.kind}")
    tasks = getattr(desc, "tasks", (getattr(desc, "task", "segmentation"),))
    if info.task not in tasks:
        raise IncompatibleError(f"model {model!r} does {' or '.join(tasks)}; dataset "
                                f"{info.name!r} is for {info.task}")
    height, width, channels = info.input_shape[-3:]
    try:
        _check_model_size(model, height, width, channels, info.n_classes, **options)
    except InputSizeError as error:
        raise IncompatibleError(str(error)) from None
    key = repr((model, sorted(options.items()), info.input_shape, info.n_classes))
    if options and key not in _BUILT:  # at its defaults a model builds at every size
        get_model(model, height, width, channels, info.n_classes, **options)
        _BUILT.add(key)


def check_loss(loss: str, params: dict[str, Any], info: Any = None) -> None:
    """ValueError when loss ``loss`` with ``params`` is wrong, or wrong for ``info``'s classes.

    Per-class parameters (``weights``, ``alpha`` lists) and a sigmoid output's limits are
    only known with the number of classes K: the loss is called once on a tiny batch of
    K classes, as the first training batch would call it.
    """
    function = get_loss(loss, **params)
    if info is None:
        return
    k = info.n_classes
    shape = (1, *info.input_shape[:-3], 2, 2, k)  # (1, 2, 2, K), or (1, T, 2, 2, K)
    if k == 1:
        y_true = (np.arange(np.prod(shape)) % 2).astype("float32").reshape(shape)
    else:
        y_true = np.eye(k, dtype="float32")[np.arange(np.prod(shape[:-1])) % k].reshape(shape)
    try:
        value = float(function(y_true, np.full(shape, 0.5 if k == 1 else 1.0 / k, "float32")))
    except ValueError as error:
        classes = f"{k} class" + ("es" if k > 1 else " (a sigmoid output)")
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise IncompatibleError(f"{first}; dataset {info.name!r} has {classes}") from None
    if not math.isfinite(value):
        raise IncompatibleError(f"loss {loss!r} with {params} gives {value} on a batch of {k} "
                                f"classes")


def metric_task(name: str) -> str | None:
    """The task (``segmentation``, ``next_frame``) whose default metrics include ``name``."""
    return next((task for task in TASKS if name in [m.name for m in default_metrics(1, task)]),
                None)


def unknown_dataset_options(name: str, options: dict[str, Any]) -> list[str]:
    """The keys of ``options`` that dataset ``name`` does not take (``name`` itself is taken);
    ValueError for ``layout`` on data without frames to stack."""
    described = describe_dataset(name)
    if "layout" in options and "layout" not in described.options:
        raise ValueError(f"{options['layout']!r}: dataset {name!r} is {described.kind} data "
                         f"without frames to stack; layout applies to sequence datasets "
                         f"(moving_digits)")
    return [key for key in options if key != "name" and key not in described.options]
