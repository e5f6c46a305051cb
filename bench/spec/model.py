"""The sweep spec: YAML in, a validated, immutable ``SweepSpec`` out.

Everything a sweep needs is checked here, before Ray or MLflow start, so a typo
costs a second instead of a cluster's worth of failed trials. Every problem is a
line ``SPEC.yaml: key.path: what is wrong; allowed ...``; all of a spec's problems
come at once in one ``UsageError`` (one line when there is one). Duplicate keys are
refused. ``check_resources`` does the one check that needs Ray: a trial's resources
against the cluster's.

The keys (see ``DEFAULT_SPEC`` for a complete example)::

    name: smoke                        # letters, digits, . _ -; --name overrides it
    dataset: {name: shapes, height: 32, ...}   # zoo.datasets options
    datasets: [{name: shapes, ...}, {name: digits, ...}]   # or several (not with dataset)
    skip_incompatible: false           # leave out the cells whose model or loss cannot take
                                       # the dataset (one note each) instead of failing
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
    samples: 1                         # draws of ``params`` per model x loss x seed; more
                                       # than 1 needs a search space in params
    search: random                     # random | optuna
    search_seed: 0                     # seeds the search: the same spec draws the same params
    scheduler: fifo                    # or asha, or {asha: {grace_period: 1, reduction_factor: 2}}
    metric: val_mean_iou
    mode: max
    patience: null                     # early stopping: epochs without improvement of metric
    time_budget_s: null                # per trial: stop after this many seconds of training
    max_concurrent: null               # trials at once (default: as many as resources allow)
    max_failures: 2                    # retries of a trial that fails (a lost node, ...)
    mixed_precision: none              # none | bfloat16 | float16
    xla: false                         # jit_compile
    reuse_workers: true                # false: a fresh worker process for every trial
    resources: {cpu: 1, gpu: 0}        # per trial; fractions of a GPU allowed; gpu_memory_mb:
                                       # a cap on each trial's GPU memory (else it grows)
    nsd_tolerance: 1.0                 # pixels: the tolerance of the per-case NSD
    plugins: [my_package.extra_models] # modules registering models/losses/datasets
    register_best: null                # a model registry name: register the sweep's best model
    protocol:                          # optional: tune on validation, then retrain and test
      tune: {samples: 8, scheduler: asha, seeds: [0]}   # replaces samples/scheduler/seeds
      final: {seeds: [0, 1, 2, 3, 4]}                   # at least 2 (bench.spec.protocol)
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from bench.common.cells import Cell
from bench.common.errors import UsageError
from bench.spec.parts import Component, Scheduler, Space  # noqa: F401  (part of the spec's face)
from bench.spec.protocol import Protocol, ProtocolError, check_protocol

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
class SweepDataset:
    """One dataset of a sweep: registry ``name`` with its ``options``.

    ``label`` is what the results call it (their ``dataset`` column): the name, unless
    the sweep lists the same name twice (``dataset_labels``). Empty means the name.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


def dataset_labels(datasets: list[tuple[str, dict[str, Any]]],
                   defaults: Callable[[str], dict[str, Any]] | None = None) -> list[str]:
    """The label of each ``(name, options)`` of a sweep's datasets, in order.

    The rule: a dataset's name when no other entry has that name; otherwise the name and,
    in brackets, the options (sorted by key) whose values differ between the entries of
    that name, defaults filled in (``defaults(name)``, by default the dataset registry's):
    ``digits[height=16]`` and ``digits[height=32]`` for ``{name: digits, height: 16}`` and
    ``{name: digits}``. Two entries of one name with the same options are the same data
    (refused by the spec), so the labels are distinct.
    """
    defaults = defaults or _dataset_defaults
    names = [name for name, _ in datasets]
    full = [{**defaults(name), **options} if names.count(name) > 1 else options
            for name, options in datasets]
    labels = []
    for name, options in zip(names, full, strict=True):
        if names.count(name) == 1:
            labels.append(name)
            continue
        peers = [full[i] for i, other in enumerate(names) if other == name]
        keys = sorted({key for peer in peers for key in peer}, key=str)
        differ = [key for key in keys if any(peer.get(key) != options.get(key) for peer in peers)]
        inner = ",".join(f"{key}={options.get(key)}" for key in differ)
        labels.append(f"{name}[{inner}]")
    return labels


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``source`` is the YAML text it came from (recorded per trial).

    ``datasets`` are the sweep's datasets in the spec's order (one for a ``dataset:``
    spec); ``dataset`` and ``dataset_options`` are the first one's, for code that runs a
    single dataset. ``skipped`` are the cells ``skip_incompatible`` left out, and
    ``grid`` the cells that run. ``warnings`` are what validation warned about (already
    printed to stderr).
    """

    name: str
    datasets: tuple[SweepDataset, ...]
    models: tuple[Component, ...]
    losses: tuple[Component, ...]
    seeds: tuple[int, ...]
    epochs: int
    params: dict[str, Any]
    samples: int = 1
    search: str = "random"
    search_seed: int = 0
    scheduler: Scheduler = field(default_factory=Scheduler)
    metric: str = "val_mean_iou"
    mode: str = "max"
    patience: int | None = None
    time_budget_s: float | None = None
    max_concurrent: int | None = None
    max_failures: int = 2
    mixed_precision: str = "none"
    xla: bool = False
    reuse_workers: bool = True
    cpu: float = 1.0
    gpu: float = 0.0
    gpu_memory_mb: int | None = None  # each trial's GPU memory cap (None: memory growth)
    source: str = ""
    warnings: tuple[str, ...] = ()
    nsd_tolerance: float = 1.0
    protocol: Protocol | None = None  # tune-then-test in two stages (bench.spec.protocol)
    plugins: tuple[str, ...] = ()  # modules every process imports first (bench.spec.plugins)
    register_best: str | None = None  # registry name for the best model (tracking.model_registry)
    skip_incompatible: bool = False
    skipped: tuple[Cell, ...] = ()  # cells left out: a model or loss that cannot take the data

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a spec that an older zoobench pickled. Tune keeps the driver's callbacks,
        which hold the spec, in its experiment state, so resuming a sweep after an upgrade
        meets them: its one ``dataset`` and options become ``datasets``, and a field it did
        not have takes its default."""
        state = dict(state)
        if "datasets" not in state and "dataset" in state:
            options = dict(state.pop("dataset_options", None) or {})
            state["datasets"] = (SweepDataset(state.pop("dataset"), options),)
        for spec_field in fields(self):
            if spec_field.name in state:
                continue
            if spec_field.default is not MISSING:
                state[spec_field.name] = spec_field.default
            elif spec_field.default_factory is not MISSING:
                state[spec_field.name] = spec_field.default_factory()
        self.__dict__.update(state)

    @property
    def dataset(self) -> str:
        """The first dataset's registry name (the only one of a ``dataset:`` spec)."""
        return self.datasets[0].name

    @property
    def dataset_options(self) -> dict[str, Any]:
        """The first dataset's options."""
        return self.datasets[0].options

    @property
    def grid(self) -> tuple[Cell, ...]:
        """The dataset x model x loss cells that run, datasets outermost."""
        left_out = set(self.skipped)
        return tuple(cell for d in self.datasets for m in self.models for lo in self.losses
                     if (cell := Cell(d.label, m.label, lo.label)) not in left_out)

    @property
    def cells(self) -> int:
        """Number of dataset x model x loss x seed combinations that run."""
        return len(self.grid) * len(self.seeds)


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
    "name", "dataset", "datasets", "skip_incompatible", "models", "losses", "seeds", "epochs",
    "params", "samples", "search",
    "search_seed", "scheduler", "metric", "mode", "patience", "time_budget_s", "max_concurrent",
    "max_failures", "mixed_precision", "xla", "reuse_workers", "resources", "protocol",
    "nsd_tolerance", "plugins", "register_best",
)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping gives one key twice (its ``problem`` names the key and both lines)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives one key twice.

    Plain PyYAML keeps the last value silently, so ``epochs: 2`` written twice in a
    long spec would run whichever came last.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}  # key -> line where it was first given
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *anchor`` merges are PyYAML's to resolve
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error names it
            if first is not None:
                raise _DuplicateKey(
                    None, None, f"duplicate key {key!r} (first given on line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _Checker:
    """Collects the problems of one spec, each ``SPEC.yaml: key.path: what is wrong``.

    A problem found inside ``with checker.section():`` is recorded and the next
    section goes on, so one run of ``zoobench sweep`` names every mistake (up to
    ``MAX_SHOWN``), not only the first.
    """

    MAX_SHOWN = 10

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.where}: {key}: {message}")

    def check(self, key: str, value: Any, check: Callable[[Any], Any]) -> Any:
        try:
            return check(value)
        except ValueError as error:
            raise self.fail(key, str(error)) from None

    def unknown_keys(
        self, key: str, given: dict[str, Any], allowed: tuple[str, ...] | list[str]
    ) -> bool:
        """Record each key of ``given`` not in ``allowed``; True when there is none."""
        prefix = f"{key}." if key else ""
        unknown = [name for name in given if name not in allowed]
        for name in unknown:
            self.problems.append(str(self.fail(
                f"{prefix}{name}", f"unknown key; allowed: {', '.join(allowed) or 'none'}")))
        return not unknown

    @contextmanager
    def section(self) -> Iterator[None]:
        """Record a ``UsageError`` raised inside, and carry on after the block."""
        try:
            yield
        except UsageError as error:
            self.problems.append(str(error))

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{self.where}: {key}: {message}")

    def raise_problems(self) -> None:
        """One ``UsageError``: the problem's line, or a count then one line per problem."""
        if len(self.problems) == 1:
            raise UsageError(self.problems[0])
        if self.problems:
            n = len(self.problems)
            shown = self.problems[: self.MAX_SHOWN]
            head = f"{self.where}: {n} problems" + (
                f" (the first {self.MAX_SHOWN} below)" if n > self.MAX_SHOWN else "")
            raise UsageError("\n".join([f"{head}:", *(f"  {p}" for p in shown)]))


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


def _batch_sizes(value: Any) -> tuple[int, int] | None:
    """Smallest and largest batch size a checked ``params.batch_size`` can take."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, Space) and value.kind == "choice":
        return min(value.args), max(value.args)
    if isinstance(value, Space) and value.kind == "randint":
        return value.args[0], value.args[1] - 1  # randint's high is excluded
    return None


def _components(
    c: _Checker, key: str, value: Any, names: list[str], validate: Callable[[str, dict], None]
) -> tuple[Component, ...]:
    """``[name, {name: {option: value}}, ...]`` checked against a registry.

    Every entry is checked (its problems recorded in ``c``); the valid ones are returned.
    """
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(key, f"must be a non-empty list; allowed names: {', '.join(names)}")
    out = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        with c.section():
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


# Models already built at validation in this process: (name, options, shape, classes).
# Only a model given options is built (see _check_model_fits).
# Building a 31M-parameter U-Net takes about 1.5 s on 2 cores; parse the same spec twice
# (tests, notebooks) and it is built once.
_MODELS_BUILT: set[str] = set()


class _IncompatibleError(ValueError):
    """A model or loss that cannot take a dataset: its kind, task, size or classes.

    Not a mistake in the model's or loss's own options: under ``skip_incompatible`` the
    cells of that pair are left out instead of failing the spec.
    """


def _check_model_fits(model: str, options: dict, info: Any) -> None:
    """ValueError when model ``model`` with ``options`` cannot take the dataset ``info``
    (``_IncompatibleError`` when the options are fine but the data is not for this model).

    ``info`` None (the dataset did not load): only the option names are checked.
    Otherwise the size is checked for these options (``depth`` sets the divisor), and a
    model given options is built once with the dataset's shapes, so that its builder
    checks their values (about 0.3 s for testnet, 1.5 s for the 31M-parameter U-Net).
    """
    import zoo
    from zoo.models.registry import InputSizeError, check_model

    desc = zoo.describe_model(model)
    unknown = sorted(set(options) - set(desc.options))
    if unknown:
        raise ValueError(
            f"model {model!r} has no option {', '.join(unknown)}; "
            f"allowed options: {', '.join(sorted(desc.options)) or 'none'}"
        )
    if info is None:
        return
    wanted_kind = "sequence" if desc.kind == "sequence" else "image"
    if info.kind != wanted_kind:
        raise _IncompatibleError(
            f"model {model!r} ({desc.kind}) needs a dataset of kind {wanted_kind}; "
            f"dataset {info.name!r} is {info.kind}"
        )
    tasks = getattr(desc, "tasks", (getattr(desc, "task", "segmentation"),))
    if info.task not in tasks:
        raise _IncompatibleError(
            f"model {model!r} does {' or '.join(tasks)}; dataset {info.name!r} is for "
            f"{info.task}"
        )
    height, width, channels = info.input_shape[-3:]
    try:
        check_model(model, height, width, channels, info.n_classes, **options)
    except InputSizeError as error:
        raise _IncompatibleError(str(error)) from None
    key = repr((model, sorted(options.items()), info.input_shape, info.n_classes))
    if not options or key in _MODELS_BUILT:
        return  # at its defaults a model builds at every size check_model accepts
    zoo.get_model(model, height, width, channels, info.n_classes, **options)
    _MODELS_BUILT.add(key)


def _check_loss_fits(loss: str, params: dict, info: Any) -> None:
    """ValueError when loss ``loss`` with ``params`` is wrong, or wrong for ``info``'s classes.

    Per-class parameters (``weights``, ``alpha`` lists) and a sigmoid output's limits
    (``focal`` ``alpha`` in [0, 1]) are only known with the number of classes: the loss
    is called once on a tiny batch of that many classes, as the first training batch
    would call it.
    """
    import numpy as np

    import zoo

    function = zoo.get_loss(loss, **params)
    if info is None:
        return
    k = info.n_classes
    shape = (1, *info.input_shape[:-3], 2, 2, k)  # (1, 2, 2, K), or (1, T, 2, 2, K)
    if k == 1:
        y_true = (np.arange(np.prod(shape)) % 2).astype("float32").reshape(shape)
        y_pred = np.full(shape, 0.5, "float32")
    else:
        y_true = np.eye(k, dtype="float32")[np.arange(np.prod(shape[:-1])) % k].reshape(shape)
        y_pred = np.full(shape, 1.0 / k, "float32")
    try:
        value = float(function(y_true, y_pred))
    except ValueError as error:
        classes = f"{k} class" + ("es" if k > 1 else " (a sigmoid output)")
        raise _IncompatibleError(f"{_one_line(error)}; dataset {info.name!r} has {classes}") \
            from None
    if not math.isfinite(value):
        raise _IncompatibleError(f"loss {loss!r} with {params} gives {value} on a batch of {k} "
                            f"classes")


def reported_metrics(n_classes: int, task: str) -> list[str]:
    """Names a trial reports each epoch (Keras' ``loss`` is ``train_loss``), losses first."""
    from zoo.metrics import default_metrics

    names = [m.name for m in default_metrics(n_classes, task)]
    return ["train_loss", "val_loss", *names, *(f"val_{n}" for n in names)]


def _metric_for(info: Any, metrics: list[str]) -> Callable[[Any], str]:
    """The check of ``metric``: one of ``metrics``; a segmentation metric on next-frame data
    (or the reverse) is named as such, since the list alone does not say why it is missing."""
    allowed = _one_of(tuple(metrics))

    def check(value: Any) -> str:
        name = str(value).removeprefix("val_").removeprefix("test_")
        if f"val_{name}" not in metrics:
            from zoo.metrics import default_metrics

            for task in ("segmentation", "next_frame"):
                if task != info.task and name in [m.name for m in default_metrics(1, task)]:
                    raise ValueError(
                        f"{value!r} is a {task} metric; dataset {info.name!r} is "
                        f"{info.task} data: use one of {', '.join(metrics)}")
        return allowed(value)

    return check


def _load_yaml(c: _Checker, text: str) -> dict[str, Any]:
    """The spec's top-level mapping; a YAML error (or a duplicate key) fails at once."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "yaml"
        if isinstance(error, _DuplicateKey):
            raise c.fail(line, str(error.problem)) from None
        raise c.fail(line, f"not valid YAML ({getattr(error, 'problem', error)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise c.fail("top", f"must be a mapping of keys, got {type(raw).__name__}")
    return raw


def _params(c: _Checker, params_raw: Any) -> dict[str, Any]:
    """Every hyperparameter of ``PARAMS``, fixed or a ``Space``; the invalid ones left out."""
    if params_raw is None:
        params_raw = {}
    if not isinstance(params_raw, dict):
        raise c.fail("params", f"must be a mapping, got {params_raw!r}")
    c.unknown_keys("params", params_raw, tuple(PARAMS))
    params = {}
    for key, (check, default) in PARAMS.items():
        with c.section():
            params[key] = _space(c, f"params.{key}", params_raw.get(key, default), check)
    return params


def _dataset(
    c: _Checker, dataset: Any, params: dict[str, Any], key: str = "dataset"
) -> tuple[str, dict[str, Any], Any]:
    """``(name, options, info)``: the dataset is loaded once here, so bad options and
    missing files fail now, not in every trial. ``info`` is None when it cannot load.
    ``key`` is where the spec gives it (``dataset``, ``datasets[1]``)."""
    import zoo

    if isinstance(dataset, str):
        dataset = {"name": dataset}
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise c.fail(key, "must be a name or {name: ..., option: value}")
    options = dict(dataset)
    name = options.pop("name")
    known = zoo.datasets.list_datasets()
    if name not in known:
        raise c.fail(f"{key}.name", f"unknown dataset {name!r}; allowed: {', '.join(known)}")
    described = zoo.datasets.describe_dataset(name)
    if "layout" in options and "layout" not in described.options:
        raise c.fail(f"{key}.layout", f"{options['layout']!r}: dataset {name!r} is "
                     f"{described.kind} data without frames to stack; layout applies to "
                     f"sequence datasets (moving_digits)")
    if not c.unknown_keys(key, options, ["name", *described.options]):
        return name, options, None
    # labelled_per_batch needs the batch size, which the trials choose: the loader
    # would refuse it here, so it is checked against every batch size params allows.
    load_options = dict(options)
    per_batch = load_options.pop("labelled_per_batch", 0)
    per_batch = c.check(f"{key}.labelled_per_batch", per_batch, _int(0))
    if per_batch:
        if "labelled_fraction" not in options:
            raise c.fail(f"{key}.labelled_per_batch",
                         "needs labelled_fraction (which samples are labelled) as well")
        sizes = _batch_sizes(params.get("batch_size"))
        if sizes is not None and per_batch >= sizes[0]:
            raise c.fail(f"{key}.labelled_per_batch",
                         f"{per_batch} must be below params.batch_size, which can be "
                         f"{sizes[0]}; the rest of each batch is unlabelled samples")
    _grow_gpu_memory()
    try:
        _, _, info = zoo.datasets.load(name, **load_options)
    except (ValueError, TypeError, OSError) as error:
        raise c.fail(key, _one_line(error)) from None
    return name, options, info


def _datasets(c: _Checker, raw: dict[str, Any], params: dict[str, Any]
              ) -> list[tuple[SweepDataset, Any]]:
    """The sweep's datasets with their ``info`` (None where one did not load): the one of
    ``dataset:``, or each of ``datasets:``, labelled by ``dataset_labels``.

    Every entry is checked (its problems recorded in ``c``); the valid ones are returned.
    """
    if "dataset" in raw and "datasets" in raw:
        raise c.fail("datasets", "give either dataset (one) or datasets (a list of several), "
                                 "not both")
    if "dataset" in raw:
        name, options, info = _dataset(c, raw["dataset"], params)
        return [(SweepDataset(name, options), info)]
    value = raw["datasets"]
    shape = "[{name: shapes, height: 32}, {name: digits, height: 32}]"
    if not isinstance(value, list) or not value:
        raise c.fail("datasets", f"must be a non-empty list of datasets, like {shape}; "
                                 f"got {value!r}")
    loaded: list[tuple[int, str, dict[str, Any], Any]] = []
    for i, item in enumerate(value):
        with c.section():
            loaded.append((i, *_dataset(c, item, params, f"datasets[{i}]")))
    defaults = {name: _dataset_defaults(name) for _, name, _, _ in loaded}
    seen: dict[str, int] = {}  # a dataset's full options -> where it was first listed
    kept = []
    for i, name, options, info in loaded:
        key = repr((name, sorted({**defaults[name], **options}.items(), key=str)))
        if key in seen:
            c.problems.append(str(c.fail(
                f"datasets[{i}]", f"{name!r} with these options is datasets[{seen[key]}] "
                f"again (the same data); list it once")))
            continue
        seen[key] = i
        kept.append((name, options, info))
    labels = dataset_labels([(name, options) for name, options, _ in kept],
                            lambda name: defaults[name])
    return [(SweepDataset(name, options, label), info)
            for (name, options, info), label in zip(kept, labels, strict=True)]


def _dataset_defaults(name: str) -> dict[str, Any]:
    import zoo

    return dict(zoo.datasets.describe_dataset(name).options)


def _grow_gpu_memory() -> None:
    """Let this process's TensorFlow take GPU memory as it needs it, not all of it at once.

    Validation loads the data and builds the models in the driver; by default TensorFlow
    would reserve nearly every GPU's memory here, leaving none to the trials on this node.
    """
    import tensorflow as tf

    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # TensorFlow already started in this process: its settings stay


def _warn_unlikely(c: _Checker, spec: SweepSpec, infos: list[tuple[SweepDataset, Any]],
                   several: bool) -> None:
    """Warnings for a spec that runs but probably does not do what was meant (``several``:
    the spec lists ``datasets``)."""
    import zoo

    running = {(cell.dataset, cell.model) for cell in spec.grid}
    for i, model in enumerate(spec.models):
        if zoo.describe_model(model.name).kind != "semi_supervised":
            continue
        keys = [f"datasets[{i}]" for i in range(len(spec.datasets))] if several \
            else ["dataset"]
        for d, key in zip(spec.datasets, keys, strict=True):
            if "labelled_fraction" in d.options or (d.label, model.label) not in running:
                continue
            which = f"dataset {d.label!r} has" if several else "the dataset has"
            c.warn(f"models[{i}]", f"{model.name!r} is semi-supervised, but {which} no "
                   f"labelled_fraction: every sample is labelled and it trains supervised "
                   f"only (set {key}.labelled_fraction, e.g. 0.1)")
    sizes = _batch_sizes(spec.params.get("batch_size"))
    for d, info in infos:
        if sizes is not None and sizes[1] > info.train_size:
            on = f" of dataset {d.label!r}" if several else ""
            c.warn("params.batch_size", f"{sizes[1]} is larger than the training split{on} "
                   f"({info.train_size} samples): an epoch is then one batch of "
                   f"{info.train_size}")


def _fits(c: _Checker, kind: str, check: Callable[[str, dict, Any], None],
          infos: list[tuple[SweepDataset, Any]], several: bool, skip: bool,
          misfits: dict[tuple[str, str], str]) -> Callable[[str, dict], None]:
    """The ``validate`` of ``_components`` for ``kind`` (``model`` or ``loss``): ``check``
    on every loaded dataset.

    A component that cannot take a dataset (``_IncompatibleError``) fails, naming both, unless
    ``skip``: then ``misfits[(dataset label, component label)]`` says why, and its cells
    are left out. Any other error is the component's own (its options) and fails.
    """

    def validate(name: str, options: dict) -> None:
        check(name, options, None)  # what needs no data: option names, the loss's params
        label = Component(name, dict(options)).label
        failures = []
        for dataset, info in infos:
            try:
                check(name, options, info)
            except _IncompatibleError as error:
                if skip:
                    misfits[(dataset.label, label)] = _one_line(error)
                else:
                    failures.append((dataset.label, _one_line(error)))
        if not failures:
            return
        (first, reason), others = failures[0], [d for d, _ in failures[1:]]
        head = f"{kind} {label!r} cannot take dataset {first!r}: " if several else ""
        also = f"; nor dataset{'s' if len(others) > 1 else ''} " \
            f"{', '.join(map(repr, others))}" if others else ""
        raise ValueError(f"{head}{reason}{also} (skip_incompatible: true leaves such cells "
                         f"out)")

    return validate


def _skipped_cells(spec_datasets: tuple[SweepDataset, ...], models: tuple[Component, ...],
                   losses: tuple[Component, ...], misfits: dict[tuple[str, str], str]
                   ) -> dict[Cell, str]:
    """Each cell a misfit model or loss leaves out, with why (the model's reason first)."""
    out = {}
    for d in spec_datasets:
        for m in models:
            for lo in losses:
                reason = misfits.get((d.label, m.label)) or misfits.get((d.label, lo.label))
                if reason:
                    out[Cell(d.label, m.label, lo.label)] = reason
    return out


def _metric_check(per_dataset: list[tuple[SweepDataset, Any, list[str]]], several: bool
                  ) -> Callable[[Any], str]:
    """The check of ``metric``: reported for every dataset (named when one lacks it)."""

    def check(value: Any) -> str:
        for dataset, info, metrics in per_dataset:
            try:
                _metric_for(info, metrics)(value)
            except ValueError as error:
                if not several:
                    raise
                raise ValueError(f"{error} (dataset {dataset.label!r})") from None
        return str(value)

    return check


def parse_spec(text: str, where: str = "spec", name: str | None = None) -> SweepSpec:
    """Validate spec YAML ``text`` (``where`` names it in messages) into a ``SweepSpec``.

    Loads each dataset once (without batching) to check its options and files, builds
    every model once with each dataset's shapes and its options, and calls every loss
    once on a tiny batch of each dataset's classes. A model or loss that cannot take a
    dataset fails the spec, naming both, unless ``skip_incompatible: true``: then the
    cells of that pair are left out (``skipped``) and each is printed to stderr as
    ``zoobench: note: ...``. ``name`` overrides the spec's ``name``. Warnings (a spec
    that runs but probably does not do what was meant) are printed to stderr as
    ``zoobench: warning: ...`` and kept in ``warnings``.

    Raises:
        UsageError: the problem in one line; with several, a first line saying how
            many, then one line each (the first ten).
    """
    c = _Checker(where)
    raw = _load_yaml(c, text)
    c.unknown_keys("", raw, TOP_KEYS)
    # Plugins register names the rest of the spec uses: import them first, and stop at one
    # that fails (every model or loss it defines would be reported unknown otherwise).
    plugins = _plugins(c, raw.get("plugins", []))
    if "dataset" not in raw and "datasets" not in raw:
        c.problems.append(str(c.fail(
            "dataset", "missing (required): give dataset, or datasets for several")))
    for key in ("models", "losses"):
        if key not in raw:
            c.problems.append(str(c.fail(key, "missing (required)")))

    import zoo

    sweep_name = name if name is not None else raw.get("name", Path(where).stem)
    if not isinstance(sweep_name, str) or not NAME_PATTERN.match(sweep_name):
        c.problems.append(str(c.fail(
            "name", f"{sweep_name!r} is not allowed; use letters, digits, '.', '_', '-'")))

    params: dict[str, Any] = {}
    with c.section():
        params = _params(c, raw.get("params"))
    skip = False
    with c.section():
        skip = c.check("skip_incompatible", raw.get("skip_incompatible", False), _bool)

    loaded: list[tuple[SweepDataset, Any]] = []
    if "dataset" in raw or "datasets" in raw:
        with c.section():
            loaded = _datasets(c, raw, params)
    infos = [(d, info) for d, info in loaded if info is not None]
    several = "datasets" in raw
    misfits: dict[tuple[str, str], str] = {}  # (dataset, model or loss) -> why it cannot

    models: tuple[Component, ...] = ()
    if "models" in raw:
        with c.section():
            models = _components(c, "models", raw["models"], zoo.list_models(),
                                 _fits(c, "model", _check_model_fits, infos, several, skip,
                                       misfits))
    losses: tuple[Component, ...] = ()
    if "losses" in raw:
        with c.section():
            losses = _components(c, "losses", raw["losses"], zoo.list_losses(),
                                 _fits(c, "loss", _check_loss_fits, infos, several, skip,
                                       misfits))
    datasets = tuple(d for d, _ in loaded)
    skipped = _skipped_cells(datasets, models, losses, misfits)
    if skipped and len(skipped) == len(datasets) * len(models) * len(losses):
        c.problems.append(str(c.fail(
            "skip_incompatible", "no dataset x model x loss cell is left: every model or "
            "loss cannot take the datasets; " + next(iter(skipped.values())))))

    seeds: tuple[int, ...] = (0,)
    with c.section():
        seeds = _seeds(c, "seeds", raw.get("seeds", [0]))

    def value(key: str, check: Callable[[Any], Any], default: Any) -> Any:
        """``raw[key]`` checked (``default`` when absent); a problem is recorded."""
        with c.section():
            return c.check(key, raw.get(key, default), check)
        return default

    def optional(key: str, check: Callable[[Any], Any]) -> Any:
        return None if raw.get(key) is None else value(key, check, None)

    metric = str(raw.get("metric", "val_mean_iou"))
    if infos:
        per_dataset = [(d, info, reported_metrics(info.n_classes, info.task))
                       for d, info in infos]
        common = [m for m in per_dataset[0][2] if all(m in ms for _, _, ms in per_dataset)]
        default_metric = next((m for m in ("val_mean_iou", "val_psnr") if m in common),
                              "val_loss")
        metric = value("metric", _metric_check(per_dataset, several), default_metric)
    mode = value("mode", _one_of(MODES), "min" if metric.endswith("loss") else "max")

    scheduler = Scheduler()
    with c.section():
        scheduler = _scheduler(c, raw.get("scheduler", "fifo"))
    protocol = None
    with c.section():
        protocol = _protocol(c, raw, params)

    cpu, gpu, gpu_memory_mb = 1.0, 0.0, None
    with c.section():
        resources = raw.get("resources") or {}
        if not isinstance(resources, dict):
            raise c.fail("resources",
                         f"must be a mapping like {{cpu: 1, gpu: 0}}, got {resources!r}")
        c.unknown_keys("resources", resources, ("cpu", "gpu", "gpu_memory_mb"))
        with c.section():
            cpu = c.check("resources.cpu", resources.get("cpu", 1), _number(0.0, strict=True))
        gpu = c.check("resources.gpu", resources.get("gpu", 0), _number(0.0))
        if resources.get("gpu_memory_mb") is not None:
            gpu_memory_mb = c.check("resources.gpu_memory_mb", resources["gpu_memory_mb"],
                                    _int(1))
            if not gpu:
                raise c.fail("resources.gpu_memory_mb",
                             "caps a trial's GPU memory, but resources.gpu is 0 (no GPU); "
                             "give resources.gpu a share, e.g. gpu: 0.25")

    samples = value("samples", _int(1), 1)
    if samples > 1 and protocol is None and not any(isinstance(v, Space)
                                                    for v in params.values()):
        c.problems.append(str(c.fail(
            "samples", f"{samples} draws of fixed params would be {samples} identical trials; "
            f"give params a search space (e.g. lr: {{loguniform: [1.0e-4, 1.0e-2]}}), or for "
            f"independent repeats list more seeds (seeds: [0, 1, 2]) with samples: 1")))

    spec = SweepSpec(
        name=sweep_name,
        datasets=datasets,
        models=models,
        losses=losses,
        seeds=seeds,
        epochs=value("epochs", _int(1), 2),
        params=params,
        samples=samples,
        search=value("search", _one_of(SEARCHES), "random"),
        search_seed=value("search_seed", _int(0), 0),
        scheduler=scheduler,
        metric=metric,
        mode=mode,
        patience=optional("patience", _int(1)),
        time_budget_s=optional("time_budget_s", _number(0.0, strict=True)),
        max_concurrent=optional("max_concurrent", _int(1)),
        max_failures=value("max_failures", _int(0), 2),
        mixed_precision=value("mixed_precision", lambda v: _one_of(PRECISIONS)(str(v)), "none"),
        xla=value("xla", _bool, False),
        reuse_workers=value("reuse_workers", _bool, True),
        cpu=cpu,
        gpu=gpu,
        gpu_memory_mb=gpu_memory_mb,
        source=text,
        protocol=protocol,
        nsd_tolerance=value("nsd_tolerance", _number(0.0), 1.0),
        plugins=plugins,
        register_best=optional("register_best", _registry_name),
        skip_incompatible=skip,
        skipped=tuple(skipped),
    )
    c.raise_problems()
    for cell, reason in skipped.items():
        print(f"zoobench: note: {where}: skip_incompatible: leaving out {cell.dataset} x "
              f"{cell.model} x {cell.loss}: {reason}", file=sys.stderr)
    _warn_unlikely(c, spec, infos, several)
    for warning in c.warnings:
        print(f"zoobench: warning: {warning}", file=sys.stderr)
    return replace(spec, warnings=tuple(c.warnings))


def _plugins(c: _Checker, plugins_raw: Any) -> tuple[str, ...]:
    """The ``plugins`` module names, imported (with the ``zoobench.plugins`` entry points).

    Raises:
        UsageError: at once, for a list that is not one of module names, or a module
            that cannot be imported (named, with why).
    """
    from bench.spec.plugins import import_plugins

    if plugins_raw is None:
        plugins_raw = []
    if isinstance(plugins_raw, str):
        plugins_raw = [plugins_raw]
    if not isinstance(plugins_raw, list) or not all(
            isinstance(m, str) and m.strip() for m in plugins_raw):
        raise c.fail("plugins", f"must be a list of module names (e.g. [my_package.models]), "
                                f"got {plugins_raw!r}")
    modules = tuple(m.strip() for m in plugins_raw)
    import_plugins(modules, f"{c.where}: plugins")
    return modules


def _registry_name(value: Any) -> str:
    """A model registry name: letters, digits, '.', '_', '-' (safe in MLflow's URIs)."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a model name; use letters, digits, '.', '_', '-'")
    return value


def _scheduler(c: _Checker, scheduler_raw: Any, key: str = "scheduler") -> Scheduler:
    """``fifo``, ``asha`` or ``{asha: {grace_period: ..., reduction_factor: ...}}``."""
    if isinstance(scheduler_raw, dict) and len(scheduler_raw) == 1:
        scheduler_name, scheduler_options = next(iter(scheduler_raw.items()))
        scheduler_options = scheduler_options or {}
    else:
        scheduler_name, scheduler_options = scheduler_raw, {}
    scheduler_name = c.check(key, scheduler_name, _one_of(SCHEDULERS))
    if not isinstance(scheduler_options, dict):
        raise c.fail(f"{key}.{scheduler_name}", "options must be a mapping")
    if not c.unknown_keys(f"{key}.{scheduler_name}", scheduler_options,
                          ("grace_period", "reduction_factor") if scheduler_name == "asha"
                          else ()):
        return Scheduler(scheduler_name)
    return Scheduler(
        scheduler_name,
        c.check(f"{key}.asha.grace_period", scheduler_options.get("grace_period", 1), _int(1)),
        c.check(f"{key}.asha.reduction_factor",
                scheduler_options.get("reduction_factor", 2), _number(1.0, strict=True)),
    )


def _seeds(c: _Checker, key: str, seeds_raw: Any) -> tuple[int, ...]:
    """A non-empty list of distinct integers >= 0 (a single integer is a list of one)."""
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        seeds_raw = [seeds_raw]
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise c.fail(key, f"must be a non-empty list of integers, got {seeds_raw!r}")
    seeds = tuple(c.check(f"{key}[{i}]", s, _int(0)) for i, s in enumerate(seeds_raw))
    if len(set(seeds)) != len(seeds):
        raise c.fail(key, f"listed twice: {seeds!r}")
    return seeds


def _protocol(c: _Checker, raw: dict[str, Any], params: dict[str, Any]) -> Protocol | None:
    """``protocol: {tune: {samples, scheduler, seeds}, final: {seeds}}``, or None."""

    value = raw.get("protocol")
    if value is None:
        return None
    shape = "{tune: {samples: 8, scheduler: asha, seeds: [0]}, final: {seeds: [0, 1, 2]}}"
    if not isinstance(value, dict) or "final" not in value:
        raise c.fail("protocol", f"must be a mapping like {shape}")
    # The protocol sets what each stage draws and on which seeds: two places would disagree.
    clashes = [key for key in ("samples", "seeds", "scheduler") if key in raw]
    if clashes:
        raise c.fail("protocol", f"sets the stages' samples, seeds and scheduler; remove the "
                                 f"top-level {', '.join(clashes)} (or put them under "
                                 f"protocol.tune / protocol.final)")
    tune, final = value.get("tune") or {}, value["final"]
    if not isinstance(tune, dict) or not isinstance(final, dict):
        raise c.fail("protocol", f"tune and final must be mappings, like {shape}")
    known = (c.unknown_keys("protocol", value, ("tune", "final"))
             & c.unknown_keys("protocol.tune", tune, ("samples", "scheduler", "seeds"))
             & c.unknown_keys("protocol.final", final, ("seeds",)))
    if "seeds" not in final:
        raise c.fail("protocol.final.seeds", "missing (required): the seeds of the final stage")
    protocol = Protocol(
        tune_samples=c.check("protocol.tune.samples", tune.get("samples", 1), _int(1)),
        tune_scheduler=_scheduler(c, tune.get("scheduler", "fifo"), "protocol.tune.scheduler"),
        tune_seeds=_seeds(c, "protocol.tune.seeds", tune.get("seeds", [0])),
        final_seeds=_seeds(c, "protocol.final.seeds", final["seeds"]),
    )
    try:
        check_protocol(protocol, params)
    except ProtocolError as error:
        raise c.fail(f"protocol.{error.key}", error.message) from None
    return protocol if known else None


def check_resources(
    spec: SweepSpec,
    cluster_resources: dict[str, float],
    node_resources: list[dict[str, float]] | None = None,
) -> None:
    """UsageError when one trial asks for more CPUs or GPUs than the Ray cluster has.

    Tune would otherwise wait for them forever, silently. Call it right after
    ``ray.init``.

    Args:
        spec: the validated spec (``cpu`` and ``gpu`` per trial).
        cluster_resources: ``ray.cluster_resources()``, e.g. ``{"CPU": 2.0, "GPU": 1.0}``.
        node_resources: optionally each node's resources (``[n["Resources"] for n in
            ray.nodes() if n["Alive"]]``): a trial runs on one node, so the largest node
            is then the limit.
    """
    for key, resource, wanted in (("cpu", "CPU", spec.cpu), ("gpu", "GPU", spec.gpu)):
        if wanted <= 0:
            continue
        total = float(cluster_resources.get(resource, 0.0))
        largest = max((float(n.get(resource, 0.0)) for n in node_resources or []),
                      default=total)
        have, scope = (largest, "its largest node has") if node_resources else (
            total, "the Ray cluster has")
        if wanted > have:
            raise UsageError(
                f"resources.{key}: a trial asks for {wanted:g} {resource}s, but {scope} "
                f"{have:g}; lower resources.{key} (fractions allowed) or run on a bigger "
                f"cluster (--address)"
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
