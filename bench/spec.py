"""The sweep spec: YAML in, a validated, immutable ``SweepSpec`` out.

Everything a sweep needs is checked here, before Ray or MLflow start, so a typo
costs a second instead of a cluster's worth of failed trials. Every problem is a
``UsageError`` with one line: ``SPEC.yaml: key.path: what is wrong; allowed ...``.

The keys (see ``DEFAULT_SPEC`` for a complete example)::

    name: smoke                        # letters, digits, . _ -; --name overrides it
    dataset: {name: shapes, height: 32, ...}   # zoo.datasets options
    models: [testnet, {unet: {base_filters: 8}}]   # a name, or {name: {option: value}}
    losses: [dice, {focal: {gamma: 2}}]        # a name, or {name: {param: value}}
    seeds: [0, 1]
    epochs: 2
    params:                            # fixed values or search spaces
      batch_size: 16
      lr: {loguniform: [1.0e-4, 1.0e-2]}
      optimizer: adam                  # adam | adamw | sgd | rmsprop
      weight_decay: 0.0
      augment: false
    samples: 1                         # draws of ``params`` per model x loss x seed
    search: random                     # random | optuna
    scheduler: fifo                    # or asha, or {asha: {grace_period: 1, reduction_factor: 2}}
    metric: val_mean_iou
    mode: max
    patience: null                     # early stopping: epochs without improvement of metric
    time_budget_s: null                # per trial: stop after this many seconds of training
    max_concurrent: null               # trials at once (default: as many as resources allow)
    mixed_precision: none              # none | bfloat16 | float16
    xla: false                         # jit_compile
    resources: {cpu: 1, gpu: 0}        # per trial; fractions of a GPU allowed
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import UsageError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SEARCHES = ("random", "optuna")
SCHEDULERS = ("fifo", "asha")
MODES = ("max", "min")
PRECISIONS = ("none", "bfloat16", "float16")
SPACE_KINDS = ("choice", "uniform", "loguniform", "randint")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

DEFAULT_SPEC = """\
# zoobench's embedded default sweep: small enough for a laptop (a few minutes on 2 cores).
name: smoke
dataset: {name: shapes, height: 32, width: 32, channels: 3, classes: 3, train: 64, val: 32}
models: [testnet, unet_shallow]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: 2
params:
  batch_size: 16
  lr: {loguniform: [1.0e-4, 1.0e-2]}
samples: 1
scheduler: fifo
metric: val_mean_iou
mode: max
resources: {cpu: 1, gpu: 0}
"""


@dataclass(frozen=True)
class Space:
    """A search space for one hyperparameter: ``kind`` in SPACE_KINDS, with its ``args``.

    ``choice`` args are the values; ``uniform``/``loguniform`` args are ``[low, high]``;
    ``randint`` args are ``[low, high)`` integers (as ``ray.tune.randint``).
    """

    kind: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Component:
    """A model or loss of the sweep: registry ``name`` with fixed ``options``.

    ``label`` is what the results call it: the name alone, or e.g. ``focal(gamma=2)``
    so that two settings of the same loss are two rows of the leaderboard.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Scheduler:
    """``fifo``, or ``asha`` with its grace period and reduction factor (in epochs)."""

    name: str = "fifo"
    grace_period: int = 1
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``source`` is the YAML text it came from (recorded per trial)."""

    name: str
    dataset: str
    dataset_options: dict[str, Any]
    models: tuple[Component, ...]
    losses: tuple[Component, ...]
    seeds: tuple[int, ...]
    epochs: int
    params: dict[str, Any]
    samples: int = 1
    search: str = "random"
    scheduler: Scheduler = field(default_factory=Scheduler)
    metric: str = "val_mean_iou"
    mode: str = "max"
    patience: int | None = None
    time_budget_s: float | None = None
    max_concurrent: int | None = None
    mixed_precision: str = "none"
    xla: bool = False
    cpu: float = 1.0
    gpu: float = 0.0
    source: str = ""
    protocol: Any = None  # bench.protocol.Protocol: tune-then-test in two stages

    @property
    def cells(self) -> int:
        """Number of model x loss x seed combinations."""
        return len(self.models) * len(self.losses) * len(self.seeds)


# ---------------------------------------------------------------- value checks
# Each check returns the cleaned value or raises ValueError("what; allowed ...").


def _int(minimum: int = 1) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return check


def _number(minimum: float = 0.0, *, strict: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value
        ):
            raise ValueError(f"must be a number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            bound = "greater than" if strict else "at least"
            raise ValueError(f"must be {bound} {minimum}, got {value}")
        return float(value)

    return check


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


# Hyperparameters a trial takes, with their check and default.
PARAMS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "batch_size": (_int(1), 16),
    "lr": (_number(0.0, strict=True), 1e-3),
    "optimizer": (_one_of(OPTIMIZERS), "adam"),
    "weight_decay": (_number(0.0), 0.0),
    "augment": (_bool, False),
}

TOP_KEYS = (
    "name", "dataset", "models", "losses", "seeds", "epochs", "params", "samples", "search",
    "scheduler", "metric", "mode", "patience", "time_budget_s", "max_concurrent",
    "mixed_precision", "xla", "resources",
)


class _Checker:
    """Collects the file name so every message starts ``SPEC.yaml: key.path:``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.where}: {key}: {message}")

    def check(self, key: str, value: Any, check: Callable[[Any], Any]) -> Any:
        try:
            return check(value)
        except ValueError as error:
            raise self.fail(key, str(error)) from None

    def unknown_keys(self, key: str, given: dict[str, Any], allowed: tuple[str, ...] | list[str]):
        for name in given:
            if name not in allowed:
                prefix = f"{key}." if key else ""
                raise self.fail(
                    f"{prefix}{name}", f"unknown key; allowed: {', '.join(allowed) or 'none'}"
                )


def _space(c: _Checker, key: str, value: Any, check: Callable[[Any], Any]) -> Any:
    """A fixed value (checked) or a ``{kind: args}`` search space whose values are checked."""
    if not isinstance(value, dict):
        return c.check(key, value, check)
    if len(value) != 1 or next(iter(value)) not in SPACE_KINDS:
        raise c.fail(key, f"unknown search space {value!r}; allowed: {{KIND: [...]}} with KIND "
                          f"one of {', '.join(SPACE_KINDS)}")
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        raise c.fail(f"{key}.{kind}", f"must be a non-empty list, got {args!r}")
    if kind == "choice":
        return Space(kind, tuple(c.check(f"{key}.choice[{i}]", v, check)
                                 for i, v in enumerate(args)))
    if len(args) != 2:
        raise c.fail(f"{key}.{kind}", f"must be [low, high], got {args!r}")
    low, high = (c.check(f"{key}.{kind}[{i}]", v, check) for i, v in enumerate(args))
    if isinstance(low, bool) or not isinstance(low, (int, float)) or not low < high:
        raise c.fail(f"{key}.{kind}", f"needs numbers low < high, got {args!r}")
    if kind == "randint" and not all(isinstance(v, int) for v in args):
        raise c.fail(f"{key}.randint", f"needs integers [low, high), got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise c.fail(f"{key}.loguniform", f"needs 0 < low < high, got {args!r}")
    if kind in ("uniform", "loguniform") and key == "params.batch_size":
        raise c.fail(key, f"{kind} gives fractional values; use randint or choice")
    return Space(kind, (low, high))


def _components(
    c: _Checker, key: str, value: Any, names: list[str], validate: Callable[[str, dict], None]
) -> tuple[Component, ...]:
    """``[name, {name: {option: value}}, ...]`` checked against a registry."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(key, f"must be a non-empty list; allowed names: {', '.join(names)}")
    out = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, dict) and len(item) == 1:
            name, options = next(iter(item.items()))
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise c.fail(where, f"options of {name!r} must be a mapping, got {options!r}")
        elif isinstance(item, str):
            name, options = item, {}
        else:
            raise c.fail(where, f"must be a name or {{name: {{option: value}}}}, got {item!r}")
        if name not in names:
            raise c.fail(where, f"unknown name {name!r}; allowed: {', '.join(names)}")
        try:
            validate(name, options)
        except (ValueError, TypeError) as error:
            raise c.fail(where, _one_line(error)) from None
        out.append(Component(name, dict(options)))
    labels = [comp.label for comp in out]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise c.fail(key, f"listed twice: {', '.join(duplicates)}")
    return tuple(out)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _check_model_fits(model: str, options: dict, info: Any) -> None:
    """ValueError when model ``model`` cannot take the loaded dataset ``info``."""
    import zoo

    desc = zoo.describe_model(model)
    unknown = sorted(set(options) - set(desc.options))
    if unknown:
        raise ValueError(
            f"model {model!r} has no option {', '.join(unknown)}; "
            f"allowed options: {', '.join(sorted(desc.options)) or 'none'}"
        )
    wanted_kind = "sequence" if desc.kind == "sequence" else "image"
    if info.kind != wanted_kind:
        raise ValueError(
            f"model {model!r} ({desc.kind}) needs a dataset of kind {wanted_kind}; "
            f"dataset {info.name!r} is {info.kind}"
        )
    if getattr(desc, "task", "segmentation") != info.task:
        raise ValueError(
            f"model {model!r} does {desc.task}; dataset {info.name!r} is for {info.task}"
        )
    height, width = info.input_shape[-3], info.input_shape[-2]
    for label, size in (("height", height), ("width", width)):
        if size < desc.min_size or size % desc.divisor:
            raise ValueError(
                f"model {model!r} cannot take {label} {size}: {desc.constraint}"
            )


def reported_metrics(n_classes: int, task: str) -> list[str]:
    """Names a trial reports each epoch (Keras' ``loss`` is ``train_loss``), losses first."""
    from zoo.metrics import default_metrics

    names = [m.name for m in default_metrics(n_classes, task)]
    return ["train_loss", "val_loss", *names, *(f"val_{n}" for n in names)]


def parse_spec(text: str, where: str = "spec", name: str | None = None) -> SweepSpec:
    """Validate spec YAML ``text`` (``where`` names it in messages) into a ``SweepSpec``.

    Loads the dataset once (without batching) to check its options and files, and
    checks every model against its kind, task and size. ``name`` overrides the
    spec's ``name``.

    Raises:
        UsageError: the first problem found, in one line.
    """
    c = _Checker(where)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "yaml"
        raise c.fail(line, f"not valid YAML ({getattr(error, 'problem', error)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise c.fail("top", f"must be a mapping of keys, got {type(raw).__name__}")
    c.unknown_keys("", raw, TOP_KEYS)
    for key in ("dataset", "models", "losses"):
        if key not in raw:
            raise c.fail(key, "missing (required)")

    import zoo

    sweep_name = name if name is not None else raw.get("name", Path(where).stem)
    if not isinstance(sweep_name, str) or not NAME_PATTERN.match(sweep_name):
        raise c.fail("name", f"{sweep_name!r} is not allowed; use letters, digits, '.', '_', '-'")

    # dataset: loaded once here so bad options and missing files fail now, not in every trial.
    dataset = raw["dataset"]
    if isinstance(dataset, str):
        dataset = {"name": dataset}
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise c.fail("dataset", "must be a name or {name: ..., option: value}")
    dataset = dict(dataset)
    dataset_name = dataset.pop("name")
    known = zoo.datasets.list_datasets()
    if dataset_name not in known:
        raise c.fail("dataset.name", f"unknown dataset {dataset_name!r}; allowed: "
                     f"{', '.join(known)}")
    c.unknown_keys("dataset", dataset,
                   ["name", *zoo.datasets.describe_dataset(dataset_name).options])
    try:
        _, _, info = zoo.datasets.load(dataset_name, **dataset)
    except (ValueError, TypeError, OSError) as error:
        raise c.fail("dataset", _one_line(error)) from None

    models = _components(
        c, "models", raw["models"], zoo.list_models(),
        lambda model, options: _check_model_fits(model, options, info),
    )
    losses = _components(
        c, "losses", raw["losses"], zoo.list_losses(),
        lambda loss, options: zoo.get_loss(loss, **options),
    )

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise c.fail("seeds", f"must be a non-empty list of integers, got {seeds!r}")
    seeds = tuple(c.check(f"seeds[{i}]", s, _int(0)) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        raise c.fail("seeds", f"listed twice: {seeds!r}")

    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, dict):
        raise c.fail("params", f"must be a mapping, got {params_raw!r}")
    c.unknown_keys("params", params_raw, tuple(PARAMS))
    params = {
        key: _space(c, f"params.{key}", params_raw.get(key, default), check)
        for key, (check, default) in PARAMS.items()
    }

    metrics = reported_metrics(info.n_classes, info.task)
    default_metric = "val_mean_iou" if "val_mean_iou" in metrics else "val_loss"
    metric = raw.get("metric", default_metric)
    metric = c.check("metric", metric, _one_of(tuple(metrics)))
    mode = c.check("mode", raw.get("mode", "min" if metric.endswith("loss") else "max"),
                   _one_of(MODES))

    scheduler_raw = raw.get("scheduler", "fifo")
    if isinstance(scheduler_raw, dict) and len(scheduler_raw) == 1:
        scheduler_name, scheduler_options = next(iter(scheduler_raw.items()))
        scheduler_options = scheduler_options or {}
    else:
        scheduler_name, scheduler_options = scheduler_raw, {}
    scheduler_name = c.check("scheduler", scheduler_name, _one_of(SCHEDULERS))
    if not isinstance(scheduler_options, dict):
        raise c.fail(f"scheduler.{scheduler_name}", "options must be a mapping")
    c.unknown_keys(f"scheduler.{scheduler_name}", scheduler_options,
                   ("grace_period", "reduction_factor") if scheduler_name == "asha" else ())
    scheduler = Scheduler(
        scheduler_name,
        c.check("scheduler.asha.grace_period", scheduler_options.get("grace_period", 1), _int(1)),
        c.check("scheduler.asha.reduction_factor",
                scheduler_options.get("reduction_factor", 2), _number(1.0, strict=True)),
    )

    resources = raw.get("resources") or {}
    if not isinstance(resources, dict):
        raise c.fail("resources", f"must be a mapping like {{cpu: 1, gpu: 0}}, got {resources!r}")
    c.unknown_keys("resources", resources, ("cpu", "gpu"))
    cpu = c.check("resources.cpu", resources.get("cpu", 1), _number(0.0, strict=True))
    gpu = c.check("resources.gpu", resources.get("gpu", 0), _number(0.0))

    def optional(key: str, check: Callable[[Any], Any]) -> Any:
        value = raw.get(key)
        return None if value is None else c.check(key, value, check)

    return SweepSpec(
        name=sweep_name,
        dataset=dataset_name,
        dataset_options=dataset,
        models=models,
        losses=losses,
        seeds=seeds,
        epochs=c.check("epochs", raw.get("epochs", 2), _int(1)),
        params=params,
        samples=c.check("samples", raw.get("samples", 1), _int(1)),
        search=c.check("search", raw.get("search", "random"), _one_of(SEARCHES)),
        scheduler=scheduler,
        metric=metric,
        mode=mode,
        patience=optional("patience", _int(1)),
        time_budget_s=optional("time_budget_s", _number(0.0, strict=True)),
        max_concurrent=optional("max_concurrent", _int(1)),
        mixed_precision=c.check("mixed_precision", str(raw.get("mixed_precision", "none")),
                                _one_of(PRECISIONS)),
        xla=c.check("xla", raw.get("xla", False), _bool),
        cpu=cpu,
        gpu=gpu,
        source=text,
    )


def load_spec(path: str | Path | None, name: str | None = None) -> SweepSpec:
    """Read and validate the spec file at ``path`` (``None``: the embedded ``DEFAULT_SPEC``)."""
    if path is None:
        return parse_spec(DEFAULT_SPEC, "default spec", name)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read ({_one_line(error)})") from None
    return parse_spec(text, str(path), name)
