"""The sweep spec: YAML in, a validated, immutable ``SweepSpec`` out.

Everything a sweep needs is checked here, before Ray or MLflow start, so a typo costs a
second instead of a cluster's worth of failed trials. The keys are typed (``SpecKeys``, its
parts in ``parts`` and ``protocol``; ``zoobench schema`` prints their JSON Schema, which
adds the registries' names and options); what types cannot say is checked by hand after
them: that a dataset loads, that a model or loss can take it, that a metric is reported.
Every problem is a line ``SPEC.yaml: key.path: what is wrong; allowed ...``; all of a
spec's problems come at once in one ``SpecError`` (one line when there is one), each with
its YAML line in ``problems``. Duplicate keys are refused. Paths in the spec are read
relative to the spec file's folder and become absolute. ``DEFAULT_SPEC`` is a complete
example; ``check_resources`` is the one check that needs Ray.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

import yaml
from pydantic import Field, ValidationError

from bench.common.cells import Cell
from bench.common.errors import UsageError
from bench.spec.parts import (
    Component,
    Int0,
    Int1,
    Invalid,
    Keys,
    NoneIsEmpty,
    NonNegative,
    Positive,
    Scheduler,
    SchedulerKeys,
    Seeds,
    Space,
    check,
    param,
    say,
)
from bench.spec.protocol import Protocol, ProtocolError, ProtocolKeys, check_protocol

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # pydantic's regex: ``$`` is the text's end only
NAME_PATTERN = re.compile(NAME.strip("^$"))  # use with fullmatch (``$`` passes "name\n")
Name = Annotated[str, Field(pattern=NAME)]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Precision = Literal["none", "bfloat16", "float16"]
OPTIMIZERS, PRECISIONS = get_args(Optimizer), get_args(Precision)

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


class Params(Keys):
    """Hyperparameters of a trial: fixed values or search spaces ``{KIND: [...]}``."""

    batch_size: param(Int1, integer=True) = 16
    lr: param(Positive) = 1e-3
    """learning rate"""
    optimizer: param(Optimizer) = "adam"
    weight_decay: param(NonNegative) = 0.0
    augment: param(bool) = False
    """random flips and 90-degree turns of the training batches"""


class Resources(Keys):
    """What one trial asks of the Ray cluster."""

    cpu: Positive = 1.0
    gpu: NonNegative = 0.0
    """a share of a GPU (fractions allowed)"""
    gpu_memory_mb: Int1 | None = None
    """a cap on each trial's GPU memory (default: it grows as needed)"""


class SpecKeys(Keys):
    """A sweep spec file: datasets x models x losses x params x seeds, and how to run them."""

    name: Name = "spec"
    """letters, digits, . _ - (default: the file's name); --name overrides it"""
    dataset: Any = None
    """a dataset name, or {name: ..., option: value}"""
    datasets: Any = None
    """several datasets (not with dataset)"""
    skip_incompatible: bool = False
    """leave out the cells whose model or loss cannot take the data (a note each)"""
    models: Any = None
    """names, or {name: {option: value}}"""
    losses: Any = None
    """names, or {name: {param: value}}"""
    seeds: Seeds = (0,)
    """each seed also seeds the data split and the initialisation"""
    epochs: Int1 = 2
    params: Annotated[Params, NoneIsEmpty] = Params()
    """each a fixed value or a search space"""
    samples: Int1 = 1
    """draws of params per model x loss x seed; more than 1 needs a search space"""
    search: Literal["random", "optuna"] = "random"
    """random (Tune's BasicVariantGenerator) or optuna"""
    search_seed: Int0 = 0
    """seeds the search: the same spec draws the same params"""
    scheduler: SchedulerKeys = Field("fifo", validate_default=True)
    """fifo, asha, or {asha: {grace_period: 1, reduction_factor: 2}}"""
    metric: str | None = None
    """the metric to select by (default: val_mean_iou, val_psnr for next frames)"""
    mode: Literal["max", "min"] | None = None
    """default: min for a loss, else max"""
    patience: Int1 | None = None
    """early stopping: epochs without improvement of the metric"""
    time_budget_s: Positive | None = None
    """per trial: stop after this many seconds of training"""
    max_concurrent: Int1 | None = None
    """trials at once (default: as many as the resources allow)"""
    max_failures: Int0 = 2
    """retries of a trial that fails (a lost node, ...)"""
    mixed_precision: Precision = "none"
    """Keras' mixed precision policy (outputs stay float32)"""
    xla: bool = False
    """compile with XLA (jit_compile)"""
    reuse_workers: bool = True
    """false: a fresh worker process for every trial"""
    resources: Annotated[Resources, NoneIsEmpty] = Resources()
    """per trial"""
    protocol: ProtocolKeys | None = None
    """tune on validation, then retrain the choice on final seeds and test it"""
    nsd_tolerance: NonNegative = 1.0
    """pixels: the tolerance of the per-case NSD"""
    plugins: str | list[str] = []
    """modules registering models, losses or datasets, imported first"""
    register_best: Name | None = None
    """a model registry name: register the sweep's best model"""
    log_models: Literal["all", "none"] = "all"
    """all: each tested trial's selected model in MLflow; none: its metrics and picture only"""


# The order the problems of a spec are listed in: what the rest depends on first.
_ORDER = ("plugins", "name", "params", "skip_incompatible", "dataset", "datasets", "models",
          "losses", "seeds", "metric", "mode", "scheduler", "protocol", "resources", "samples")
PATH_OPTION = re.compile(r"(.*_)?(path|file|dir)$")  # dataset options that name a file


@dataclass(frozen=True)
class SweepDataset:
    """One dataset of a sweep: registry ``name`` with its ``options``; ``label`` is what the
    results call it (``dataset_labels``; empty: the name)."""

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
        peers = [full[i] for i, other in enumerate(names) if other == name]
        keys = sorted({key for peer in peers for key in peer}, key=str)
        differ = [key for key in keys if any(peer.get(key) != options.get(key) for peer in peers)]
        inner = ",".join(f"{key}={options.get(key)}" for key in differ)
        labels.append(name if len(peers) == 1 else f"{name}[{inner}]")
    return labels


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``source`` is the YAML text it came from (recorded per trial).

    ``datasets`` are the sweep's datasets in the spec's order (one for a ``dataset:``
    spec); ``dataset`` and ``dataset_options`` are the first one's, for code that runs a
    single dataset. ``skipped`` are the cells ``skip_incompatible`` left out, and
    ``grid`` the cells that run. ``warnings`` are what validation warned about (already
    printed to stderr). A frozen dataclass, not a pydantic model: stages derive theirs with
    ``dataclasses.replace``, and Tune pickles it (older pickles load, ``__setstate__``).
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
    log_models: str = "all"  # "none": tested trials log no MLflow model (bench.run.trial.final)
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
            if spec_field.name not in state and spec_field.default is not MISSING:
                state[spec_field.name] = spec_field.default
            elif spec_field.name not in state and spec_field.default_factory is not MISSING:
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


# ---------------------------------------------------------------- problems and their lines


class Problem(NamedTuple):
    """One problem of a spec: its key ``path`` (``models[1]``), YAML ``line`` (1-based; None
    when the key is not in the file) and ``message``."""

    path: str
    line: int | None
    message: str


class SpecError(UsageError):
    """A spec's problems: the message lists them (one line for one); ``problems`` has each
    with its YAML line, for editors and tools."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class _Problems:
    """The problems of one spec, collected so that one run names every mistake (the first
    ``MAX_SHOWN`` shown); ``lines`` maps a key's location to its line in the file."""

    MAX_SHOWN = 10

    def __init__(self, where: str, lines: dict[tuple, int]) -> None:
        self.where, self.lines = where, lines
        self.found: list[tuple[tuple, str]] = []
        self.warnings: list[str] = []

    def add(self, loc: tuple, message: str) -> None:
        self.found.append((loc, message))

    @contextmanager
    def section(self, *loc: str | int) -> Iterator[None]:
        """Record a ``Invalid`` raised inside (its location below ``loc``) and carry on."""
        try:
            yield
        except Invalid as error:
            self.add((*loc, *error.loc), str(error))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.where}: {path}: {message}")

    def raise_any(self) -> None:
        """One ``SpecError``: the problem's line, or a count then one line per problem."""
        def rank(item: tuple[tuple, str]) -> tuple[int, int, int]:
            # unknown keys first, then in _ORDER, a list's entries in their order
            loc, message = (*item[0], "", ""), item[1]
            unknown = message.startswith("unknown key")
            top = _ORDER.index(loc[0]) if loc[0] in _ORDER else len(_ORDER)
            return (-1 if unknown and len(item[0]) == 1 else top, not unknown,
                    loc[1] if isinstance(loc[1], int) else -1)

        problems = tuple(Problem(_path(loc), next((self.lines[loc[:n]] for n in range(
            len(loc), 0, -1) if loc[:n] in self.lines), None), message)
            for loc, message in sorted(self.found, key=rank))
        lines = [f"{self.where}: {p.path}: {p.message}" for p in problems]
        if len(lines) > 1:
            more = f" (the first {self.MAX_SHOWN} below)" if len(lines) > self.MAX_SHOWN else ""
            lines = [f"{self.where}: {len(lines)} problems{more}:",
                     *(f"  {line}" for line in lines[:self.MAX_SHOWN])]
        if lines:
            raise SpecError("\n".join(lines), problems)


def _path(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping gives one key twice (its ``problem`` names the key and both lines)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives one key twice (plain PyYAML keeps
    the last silently: ``epochs: 2`` written twice would run whichever came last)."""

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
                raise _DuplicateKey(None, None, f"duplicate key {key!r} (first given on line "
                                    f"{first})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _node_lines(node: yaml.Node | None, loc: tuple = ()) -> dict[tuple, int]:
    """Each key's location (``("models", 1)``) -> its 1-based line, from the YAML nodes."""
    if node is None:
        return {}
    lines = {loc: node.start_mark.line + 1}
    pairs = (((key.value, key), value) for key, value in node.value) if isinstance(
        node, yaml.MappingNode) else (((i, value), value) for i, value in enumerate(
            node.value)) if isinstance(node, yaml.SequenceNode) else ()
    for (key, mark), value in pairs:
        lines.update(_node_lines(value, (*loc, key)))
        lines[(*loc, key)] = mark.start_mark.line + 1
    return lines


def _load_yaml(where: str, text: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """The spec's top-level mapping and its lines; bad YAML (or a duplicate key) fails now."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "yaml"
        why = error.problem if isinstance(error, _DuplicateKey) else \
            f"not valid YAML ({getattr(error, 'problem', error)})"
        raise SpecError(f"{where}: {line}: {why}",
                        (Problem(line, mark and mark.line + 1, why),)) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: top: must be a mapping of keys, got {type(raw).__name__}")
    return raw, _node_lines(node)


# ---------------------------------------------------------------- what types cannot say


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _batch_sizes(value: Any) -> tuple[int, int] | None:
    """Smallest and largest batch size a checked ``params.batch_size`` can take."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, Space) and value.kind in ("choice", "randint"):
        # randint's high is excluded
        return (min(value.args), max(value.args)) if value.kind == "choice" else (
            value.args[0], value.args[1] - 1)
    return None


def reported_metrics(n_classes: int, task: str) -> list[str]:
    """Names a trial reports each epoch (Keras' ``loss`` is ``train_loss``), losses first."""
    from zoo.metrics import default_metrics

    names = [m.name for m in default_metrics(n_classes, task)]
    return ["train_loss", "val_loss", *names, *(f"val_{n}" for n in names)]


def _check_metric(value: str, info: Any, metrics: list[str]) -> None:
    """Invalid unless ``value`` is one of ``metrics``; a segmentation metric on next-frame data
    (or the reverse) is named as such, since the list alone does not say why it is missing."""
    from zoo.compat import metric_task

    name = value.removeprefix("val_").removeprefix("test_")
    if f"val_{name}" not in metrics and (task := metric_task(name)) not in (None, info.task):
        raise Invalid(f"{value!r} is a {task} metric; dataset {info.name!r} is {info.task} "
                      f"data: use one of {', '.join(metrics)}")
    if value not in metrics:
        raise Invalid(f"{value!r} is not allowed; allowed: {', '.join(metrics)}")


def _dataset(problems: _Problems, dataset: Any, params: Params, base: Path, loc: tuple
             ) -> tuple[str, dict[str, Any], Any]:
    """``(name, options, info)``: the dataset is loaded once here, so bad options and
    missing files fail now, not in every trial (``info`` None: it did not load). Paths are
    made absolute against ``base``. ``loc`` is where the spec gives it."""
    import zoo

    if isinstance(dataset, str):
        dataset = {"name": dataset}
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise Invalid("must be a name or {name: ..., option: value}")
    options = dict(dataset)
    name = options.pop("name")
    known = zoo.datasets.list_datasets()
    if name not in known:
        raise Invalid(f"unknown dataset {name!r}; allowed: {', '.join(known)}", "name")
    try:
        unknown = zoo.compat.unknown_dataset_options(name, options)
    except ValueError as error:
        raise Invalid(str(error), "layout") from None
    allowed = ", ".join(["name", *zoo.datasets.describe_dataset(name).options])
    for key in unknown:
        problems.add((*loc, key), f"unknown key; allowed: {allowed}")
    if unknown:
        return name, options, None
    for key, value in options.items():
        if PATH_OPTION.fullmatch(key) and isinstance(value, str):
            options[key] = str(_readable(Path(value).expanduser(), base))
    # labelled_per_batch needs the batch size, which the trials choose: the loader
    # would refuse it here, so it is checked against every batch size params allows.
    load_options = dict(options)
    per_batch = check(Int0, load_options.pop("labelled_per_batch", 0), "labelled_per_batch")
    sizes = _batch_sizes(params.batch_size)
    if per_batch and "labelled_fraction" not in options:
        raise Invalid("needs labelled_fraction (which samples are labelled) as well",
                  "labelled_per_batch")
    if per_batch and sizes is not None and per_batch >= sizes[0]:
        raise Invalid(f"{per_batch} must be below params.batch_size, which can be {sizes[0]}; the "
                  f"rest of each batch is unlabelled samples", "labelled_per_batch")
    _grow_gpu_memory()
    try:
        info = zoo.datasets.dataset_info(name, **load_options)  # no pipelines: 0.27 s less
    except (ValueError, TypeError, OSError) as error:
        raise Invalid(_one_line(error)) from None
    return name, options, info


def _readable(path: Path, base: Path) -> Path:
    """``path`` (relative: to ``base``, the spec's folder) made absolute; Invalid when it is
    missing or unreadable, as every trial would find it."""
    full = (base / path).resolve()
    relative = "" if path.is_absolute() else f" (relative paths are read from the spec's " \
        f"folder, {base})"
    if not full.exists():
        raise Invalid(f"path {path} does not exist{relative}")
    if not os.access(full, os.R_OK | (os.X_OK if full.is_dir() else 0)):
        raise Invalid(f"path {full} is not readable")
    return full


def _datasets(problems: _Problems, raw: SpecKeys, params: Params, base: Path
              ) -> list[tuple[SweepDataset, Any]]:
    """The sweep's datasets with their ``info`` (None where one did not load): the one of
    ``dataset:``, or each of ``datasets:``, labelled by ``dataset_labels``."""
    if raw.dataset is None and raw.datasets is None:
        return []  # said missing
    if raw.dataset is not None and raw.datasets is not None:
        raise Invalid("give either dataset (one) or datasets (a list of several), not both",
                  "datasets")
    if raw.datasets is None:
        entries: list[tuple[tuple, Any]] = [(("dataset",), raw.dataset)]
    elif not isinstance(raw.datasets, list) or not raw.datasets:
        raise Invalid(f"must be a non-empty list of datasets, like [{{name: shapes, height: 32}}, "
                      f"{{name: digits, height: 32}}]; got {raw.datasets!r}", "datasets")
    else:
        entries = [(("datasets", i), item) for i, item in enumerate(raw.datasets)]
    loaded: list[tuple[tuple, str, dict[str, Any], Any]] = []
    for loc, item in entries:
        with problems.section(*loc):
            loaded.append((loc, *_dataset(problems, item, params, base, loc)))
    defaults = {name: _dataset_defaults(name) for _, name, _, _ in loaded}
    seen: dict[str, Any] = {}  # a dataset's full options -> its index in datasets
    kept = []
    for loc, name, options, info in loaded:
        key = repr((name, sorted({**defaults[name], **options}.items(), key=str)))
        if key in seen:
            problems.add(loc, f"{name!r} with these options is datasets[{seen[key]}] again "
                         f"(the same data); list it once")
        else:
            seen[key] = loc[-1]
            kept.append((name, options, info))
    labels = dataset_labels([(name, options) for name, options, _ in kept], defaults.get)
    return [(SweepDataset(name, options, label), info)
            for (name, options, info), label in zip(kept, labels, strict=True)]


def _dataset_defaults(name: str) -> dict[str, Any]:
    import zoo

    return dict(zoo.datasets.describe_dataset(name).options)


def _grow_gpu_memory() -> None:
    """Let this process's TensorFlow take GPU memory as it needs it: validation loads data
    and builds models in the driver, and by default TensorFlow would reserve nearly every
    GPU's memory here, leaving none to the trials on this node."""
    import tensorflow as tf

    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # TensorFlow already started in this process: its settings stay


def _components(problems: _Problems, key: str, value: Any,
                infos: list[tuple[SweepDataset, Any]], several: bool,
                misfits: dict[tuple[str, str], str] | None) -> tuple[Component, ...]:
    """``[name, {name: {option: value}}, ...]`` of ``key`` (``models`` or ``losses``), each
    entry's problems recorded, the valid ones returned. Each is checked on every loaded
    dataset (``zoo.compat``): one that cannot take a dataset fails, naming both, unless
    ``misfits`` is given (``skip_incompatible``): then ``misfits[(dataset label, label)]``
    says why and its cells are left out."""
    import zoo
    from zoo.compat import IncompatibleError

    kind, names, check_fit = ("model", zoo.list_models(), zoo.compat.check_model) if \
        key == "models" else ("loss", zoo.list_losses(), zoo.compat.check_loss)
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be a non-empty list; allowed names: {', '.join(names)}", key)
    out = []
    for i, item in enumerate(value):
        with problems.section(key, i):
            if isinstance(item, dict) and len(item) == 1:
                name, options = next(iter(item.items()))
            elif isinstance(item, str):
                name, options = item, {}
            else:
                raise Invalid(f"must be a name or {{name: {{option: value}}}}, got {item!r}")
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise Invalid(f"options of {name!r} must be a mapping, got {options!r}")
            if name not in names:
                raise Invalid(f"unknown name {name!r}; allowed: {', '.join(names)}")
            failures: list[tuple[str, str]] = []
            try:
                check_fit(name, options, None)  # what needs no data: option names, params
                label = Component(name, dict(options)).label
                for dataset, info in infos:
                    try:
                        check_fit(name, options, info)
                    except IncompatibleError as error:
                        if misfits is None:
                            failures.append((dataset.label, _one_line(error)))
                        else:
                            misfits[(dataset.label, label)] = _one_line(error)
            except (ValueError, TypeError) as error:
                raise Invalid(_one_line(error)) from None
            if failures:
                (first, reason), others = failures[0], [d for d, _ in failures[1:]]
                head = f"{kind} {label!r} cannot take dataset {first!r}: " if several else ""
                also = f"; nor dataset{'s' if len(others) > 1 else ''} " \
                    f"{', '.join(map(repr, others))}" if others else ""
                raise Invalid(f"{head}{reason}{also} (skip_incompatible: true leaves such "
                              f"cells out)")
            out.append(Component(name, dict(options)))
    labels = [comp.label for comp in out]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise Invalid(f"listed twice: {', '.join(duplicates)}", key)
    return tuple(out)


def _warn_unlikely(problems: _Problems, spec: SweepSpec, infos: list[tuple[SweepDataset, Any]],
                   several: bool) -> None:
    """Warnings for a spec that runs but probably does not do what was meant."""
    import zoo

    running = {(cell.dataset, cell.model) for cell in spec.grid}
    keys = [f"datasets[{i}]" for i in range(len(spec.datasets))] if several else ["dataset"]
    for i, model in enumerate(spec.models):
        if zoo.describe_model(model.name).kind != "semi_supervised":
            continue
        for d, key in zip(spec.datasets, keys, strict=True):
            if "labelled_fraction" not in d.options and (d.label, model.label) in running:
                which = f"dataset {d.label!r} has" if several else "the dataset has"
                problems.warn(f"models[{i}]", f"{model.name!r} is semi-supervised, but {which} "
                              f"no labelled_fraction: every sample is labelled and it trains "
                              f"supervised only (set {key}.labelled_fraction, e.g. 0.1)")
    sizes = _batch_sizes(spec.params.get("batch_size"))
    for d, info in infos:
        if sizes is not None and sizes[1] > info.train_size:
            on = f" of dataset {d.label!r}" if several else ""
            problems.warn("params.batch_size", f"{sizes[1]} is larger than the training split"
                          f"{on} ({info.train_size} samples): an epoch is then one batch of "
                          f"{info.train_size}")


# ---------------------------------------------------------------- the spec


def parse_spec(text: str, where: str = "spec", name: str | None = None,
               base: str | Path | None = None) -> SweepSpec:
    """Validate spec YAML ``text`` (``where`` names it in messages) into a ``SweepSpec``.

    The keys are checked by type (``SpecKeys``), then what types cannot say: each dataset is
    loaded once (paths relative to ``base``, default the working folder), every model built
    once with each dataset's shapes and its options, every loss called once on a tiny
    batch of each dataset's classes. A model or loss that cannot take a dataset fails the
    spec, naming both, unless ``skip_incompatible: true``: then its cells are left out
    (``skipped``), each noted on stderr (``zoobench: note: ...``). ``name`` overrides the
    spec's. Warnings (a spec that runs but probably means something else) go to stderr as
    ``zoobench: warning: ...`` and into ``warnings``.

    Raises:
        SpecError: (a ``UsageError``) the problem in one line; with several, a first line
            saying how many, then one line each (the first ten).
    """
    from bench.spec.plugins import import_plugins

    raw, lines = _load_yaml(where, text)
    problems = _Problems(where, lines)
    # Plugins register names the rest of the spec uses: import them first, and stop at one
    # that fails (every model or loss it defines would be reported unknown otherwise).
    plugins = [raw["plugins"]] if isinstance(raw.get("plugins"), str) else raw.get("plugins")
    if not isinstance(plugins or [], list) or not all(isinstance(m, str) and m.strip()
                                                      for m in plugins or []):
        raise SpecError(f"{where}: plugins: must be a list of module names (e.g. "
                        f"[my_package.models]), got {plugins!r}")
    plugins = tuple(m.strip() for m in plugins or [])
    import_plugins(plugins, f"{where}: plugins")
    raw = {**raw, "plugins": list(plugins),
           "name": name if name is not None else raw.get("name", Path(where).stem)}
    try:
        keys = SpecKeys.model_validate(raw)
    except ValidationError as error:
        found = [say(e, SpecKeys) for e in error.errors()]
        for loc, message in found:
            problems.add(loc, message)
        keys = SpecKeys.model_validate({k: v for k, v in raw.items()  # the rest, to go on
                                        if k not in {loc[0] for loc, _ in found}})
    for key in ("dataset", "models", "losses"):
        if raw.get(key) is None and (key != "dataset" or raw.get("datasets") is None):
            problems.add((key,), "missing (required)" + (
                ": give dataset, or datasets for several" if key == "dataset" else ""))

    loaded: list[tuple[SweepDataset, Any]] = []
    with problems.section():
        loaded = _datasets(problems, keys, keys.params, Path(base or Path.cwd()).resolve())
    infos = [(d, info) for d, info in loaded if info is not None]
    several, skip = keys.datasets is not None, keys.skip_incompatible
    misfits: dict[tuple[str, str], str] = {}  # (dataset, model or loss) -> why it cannot
    chosen: dict[str, tuple[Component, ...]] = {"models": (), "losses": ()}
    for key in chosen:
        with problems.section():
            if raw.get(key) is not None:
                chosen[key] = _components(problems, key, raw[key], infos, several,
                                          misfits if skip else None)
    datasets = tuple(d for d, _ in loaded)
    skipped = {Cell(d.label, m.label, lo.label): reason for d in datasets
               for m in chosen["models"] for lo in chosen["losses"]
               if (reason := misfits.get((d.label, m.label)) or misfits.get((d.label,
                                                                             lo.label)))}
    if skipped and len(skipped) == len(datasets) * len(chosen["models"]) * len(chosen["losses"]):
        problems.add(("skip_incompatible",), "no dataset x model x loss cell is left: every "
                     "model or loss cannot take the datasets; " + next(iter(skipped.values())))

    metric = keys.metric or "val_mean_iou"
    if infos:
        per_dataset = [(d, info, reported_metrics(info.n_classes, info.task)) for d, info in infos]
        common = [m for m in per_dataset[0][2] if all(m in ms for _, _, ms in per_dataset)]
        metric = keys.metric or next((m for m in ("val_mean_iou", "val_psnr") if m in common),
                                     "val_loss")
        for d, info, metrics in per_dataset:
            try:
                _check_metric(metric, info, metrics)
            except Invalid as error:
                problems.add(("metric",), f"{error} (dataset {d.label!r})" if several else
                             str(error))
                break
    params = {key: getattr(keys.params, key) for key in Params.model_fields}
    protocol = keys.protocol and keys.protocol.protocol()
    if protocol is not None:
        clashes = [key for key in ("samples", "seeds", "scheduler") if key in raw]
        try:
            if clashes:
                raise ProtocolError("", f"sets the stages' samples, seeds and scheduler; remove"
                                    f" the top-level {', '.join(clashes)} (or put them under "
                                    f"protocol.tune / protocol.final)")
            check_protocol(protocol, params)
        except ProtocolError as error:
            problems.add(("protocol", *filter(None, error.key.split("."))), error.message)
    if keys.samples > 1 and protocol is None and not any(isinstance(v, Space)
                                                         for v in params.values()):
        problems.add(("samples",), f"{keys.samples} draws of fixed params would be "
                     f"{keys.samples} identical trials; give params a search space (e.g. lr: "
                     f"{{loguniform: [1.0e-4, 1.0e-2]}}), or for independent repeats list more "
                     f"seeds (seeds: [0, 1, 2]) with samples: 1")
    if keys.register_best is not None and keys.log_models == "none":
        problems.add(("register_best",), "registers the best trial's logged model, but "
                     "log_models is none (no trial logs one); set log_models: all, or remove "
                     "register_best")
    if keys.resources.gpu_memory_mb is not None and not keys.resources.gpu:
        problems.add(("resources", "gpu_memory_mb"), "caps a trial's GPU memory, but "
                     "resources.gpu is 0 (no GPU); give resources.gpu a share, e.g. gpu: 0.25")
    problems.raise_any()
    spec = SweepSpec(
        name=keys.name, datasets=datasets, models=chosen["models"], losses=chosen["losses"],
        seeds=keys.seeds, epochs=keys.epochs, params=params, samples=keys.samples,
        search=keys.search, search_seed=keys.search_seed, scheduler=keys.scheduler,
        metric=metric, mode=keys.mode or ("min" if metric.endswith("loss") else "max"),
        patience=keys.patience, time_budget_s=keys.time_budget_s,
        max_concurrent=keys.max_concurrent, max_failures=keys.max_failures,
        mixed_precision=keys.mixed_precision, xla=keys.xla, reuse_workers=keys.reuse_workers,
        cpu=keys.resources.cpu, gpu=keys.resources.gpu,
        gpu_memory_mb=keys.resources.gpu_memory_mb, source=text, protocol=protocol,
        nsd_tolerance=keys.nsd_tolerance, plugins=plugins, register_best=keys.register_best,
        log_models=keys.log_models,
        skip_incompatible=skip, skipped=tuple(skipped))
    for cell, reason in skipped.items():
        print(f"zoobench: note: {where}: skip_incompatible: leaving out {cell.dataset} x "
              f"{cell.model} x {cell.loss}: {reason}", file=sys.stderr)
    _warn_unlikely(problems, spec, infos, several)
    for warning in problems.warnings:
        print(f"zoobench: warning: {warning}", file=sys.stderr)
    return replace(spec, warnings=tuple(problems.warnings))


def check_resources(spec: SweepSpec, cluster_resources: dict[str, float],
                    node_resources: list[dict[str, float]] | None = None) -> None:
    """UsageError when one trial asks for more CPUs or GPUs than the Ray cluster has (Tune
    would otherwise wait for them forever, silently). Call it right after ``ray.init``.

    Args:
        spec: the validated spec (``cpu`` and ``gpu`` per trial).
        cluster_resources: ``ray.cluster_resources()``, e.g. ``{"CPU": 2.0, "GPU": 1.0}``.
        node_resources: optionally each node's resources (``[n["Resources"] for n in
            ray.nodes() if n["Alive"]]``): a trial runs on one node, so the largest node
            is then the limit.
    """
    for key, resource, wanted in (("cpu", "CPU", spec.cpu), ("gpu", "GPU", spec.gpu)):
        total = float(cluster_resources.get(resource, 0.0))
        largest = max((float(n.get(resource, 0.0)) for n in node_resources or []),
                      default=total)
        have, scope = (largest, "its largest node has") if node_resources else (
            total, "the Ray cluster has")
        if wanted > 0 and wanted > have:
            raise UsageError(f"resources.{key}: a trial asks for {wanted:g} {resource}s, but "
                             f"{scope} {have:g}; lower resources.{key} (fractions allowed) or "
                             f"run on a bigger cluster (--address)")


def load_spec(path: str | Path | None, name: str | None = None) -> SweepSpec:
    """Read and validate the spec file at ``path`` (``None``: the embedded ``DEFAULT_SPEC``);
    its paths are relative to its folder (the default spec's: the working folder)."""
    if path is None:
        return parse_spec(DEFAULT_SPEC, "default spec", name)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read ({_one_line(error)})") from None
    return parse_spec(text, str(path), name, base=path.resolve().parent)
