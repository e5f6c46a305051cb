"""A validated spec becomes Tune's three objects: what is searched, how, and with what.

A **configuration** is a cell (dataset x model x loss) with one value of every
hyperparameter; its seeds share those values, so the spread over seeds is seed noise only
(``docs/trust.md``). ``samples: N`` gives each cell N configurations, each run on every seed.

* ``param_space`` (``search: random``): ``dataset`` (when the spec lists several),
  ``model``, ``loss``, ``sample`` (0 .. samples-1) and ``seed`` as ``grid_search`` (every
  cell, configuration and seed is run). A searched hyperparameter is a ``tune.sample_from``
  (``SharedDraw``) whose value is drawn from its Tune domain with a generator keyed by
  (``search_seed``, model, loss, sample, name): the seeds of one sample get the same value,
  and the same spec the same values. The dataset is not in the key, so sample k of a model
  x loss is one configuration on every dataset (``--across`` compares it as it is). A spec
  that leaves cells out (``skip_incompatible``) is
  not a product of grids: its dataset x model x loss cells are one ``cell`` grid instead
  (``bench.common.cells``).
* ``tune_config``: the search algorithm (``random`` = Tune's BasicVariantGenerator over
  that grid; ``optuna`` = ``OptunaSearch`` inside ``SeedRepeater``), both seeded with the
  spec's ``search_seed``, and scheduler (``fifo`` or ``asha`` on the sweep's metric and mode).

Optuna cannot take ``grid_search``: with ``search: optuna`` dataset, model, loss (or the
cell) become categorical parameters searched jointly with the rest, and each of Optuna's
``samples x cells`` suggestions is repeated once per seed by Tune's ``Repeater``
(``SeedRepeater`` puts the seed into the config); Optuna is told the mean over the seeds.

``check_plan`` refuses what the plan cannot run honestly: ASHA on several seeds outside a
protocol (it would stop some seeds of a configuration, and the survivors would make its row).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, Repeater

from bench.common import cells
from bench.common.errors import UsageError
from bench.spec.model import Space, SweepSpec

#: The grid axis numbering a cell's configurations (``search: random``).
SAMPLE_KEY = "sample"


@dataclass(frozen=True)
class Plan:
    """What ``Tuner`` needs for a spec; ``trials`` is how many trials the sweep runs."""

    param_space: dict[str, Any]
    tune_config: tune.TuneConfig
    trials: int


def _domain(value: Any) -> Any:
    if not isinstance(value, Space):
        return value
    if value.kind == "choice":
        return tune.choice(list(value.args))
    return {"uniform": tune.uniform, "loguniform": tune.loguniform,
            "randint": tune.randint}[value.kind](*value.args)


def draw_seed(search_seed: int, cell: str, sample: int, name: str) -> int:
    """The generator seed of one hyperparameter's draw: a SHA-256 of its key, 64 bits.

    ``cell`` is the ``model | loss`` label (``bench.common.cells.cell_label``)."""
    key = json.dumps([int(search_seed), str(cell), int(sample), str(name)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


class SharedDraw:
    """``tune.sample_from`` callable: hyperparameter ``name``'s value for a trial's model x
    loss and sample, the same for every seed and dataset (picklable; Tune keeps it in its
    experiment state).

    The value is ``domain.sample`` (Tune's own sampling of ``uniform``, ``loguniform``,
    ``randint``, ``choice``) with a NumPy generator seeded by ``draw_seed``.
    """

    def __init__(self, space: Space, name: str, search_seed: int) -> None:
        self.space, self.name, self.search_seed = space, name, int(search_seed)

    @staticmethod
    def cell(config: dict[str, Any]) -> str:
        """The trial's ``model | loss`` label from its grid values (or its ``cell``)."""
        resolved = cells.resolve(dict(config))
        return cells.cell_label(str(resolved.get("model")), str(resolved.get("loss")))

    def __call__(self, config: dict[str, Any]) -> Any:
        # Tune's variant generator passes the experiment's spec, the config under "config".
        config = config["config"] if isinstance(config.get("config"), dict) else config
        sample = int(config.get(SAMPLE_KEY, 0))
        seed = draw_seed(self.search_seed, self.cell(config), sample, self.name)
        value = _domain(self.space).sample(random_state=np.random.default_rng(seed))
        return value.item() if hasattr(value, "item") else value


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's ``param_space``: the grid (or Optuna's categories) plus every hyperparameter.

    Datasets, models and losses appear by label (``digits[height=16]``,
    ``focal(gamma=2)``); the trainable finds their registry name and options in its
    ``SweepContext``. A single dataset is not a key (its trials' configs are as before).
    ``search: random``: a ``sample`` grid and the searched hyperparameters as
    ``SharedDraw``s (one value per cell and sample); ``search: optuna``: no ``seed`` key
    (``SeedRepeater`` sets it) and the hyperparameters as Tune domains.
    """
    grid: dict[str, list[Any]] = {}
    if spec.skipped:
        grid[cells.CELL_KEY] = [cell.label for cell in spec.grid]
    else:
        if len(spec.datasets) > 1:
            grid["dataset"] = [d.label for d in spec.datasets]
        grid["model"] = [m.label for m in spec.models]
        grid["loss"] = [loss.label for loss in spec.losses]
    if spec.search == "optuna":
        space: dict[str, Any] = {key: tune.choice(values) for key, values in grid.items()}
        space.update({key: _domain(value) for key, value in spec.params.items()})
        return space
    grid[SAMPLE_KEY] = list(range(spec.samples))
    grid["seed"] = list(spec.seeds)
    space = {key: tune.grid_search(values) for key, values in grid.items()}
    space.update({key: tune.sample_from(SharedDraw(value, key, spec.search_seed))
                  if isinstance(value, Space) else value
                  for key, value in spec.params.items()})
    return space


class SeedRepeater(Repeater):
    """Tune's ``Repeater`` that runs each suggestion once per seed of ``seeds``: the
    repeat with index i gets ``seed = seeds[i]``. The wrapped searcher sees one trial per
    configuration, scored with the mean over its seeds."""

    def __init__(self, searcher: Any, seeds: tuple[int, ...]) -> None:
        super().__init__(searcher, repeat=len(seeds), set_index=True)
        self.seeds = tuple(int(s) for s in seeds)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            from ray.tune.search.repeater import TRIAL_INDEX

            config = {**config, "seed": self.seeds[int(config[TRIAL_INDEX])]}
        return config


def check_plan(spec: SweepSpec) -> None:
    """UsageError (one line) for a spec the plan would run dishonestly.

    ``scheduler: asha`` with several seeds outside a ``protocol``: ASHA stops trials on
    their validation curve, seed by seed, so a configuration's row would keep its lucky
    seeds and lose its unlucky ones (a stopped trial is never tested). Under a protocol
    ASHA only searches (stage ``tune``) and every final seed runs to its end.
    """
    if spec.scheduler.name == "asha" and spec.protocol is None and len(spec.seeds) > 1:
        raise UsageError(
            f"{spec.name}: scheduler: asha with {len(spec.seeds)} seeds outside a protocol "
            f"would rank each configuration on the seeds ASHA let finish; use "
            f"protocol: {{tune: {{scheduler: asha, ...}}, final: {{seeds: "
            f"{list(spec.seeds)}}}}}, or scheduler: fifo, or one seed")


def scheduler(spec: SweepSpec) -> TrialScheduler:
    """FIFO, or ASHA stopping the worse trials at rungs of ``grace_period x factor^k`` epochs."""
    if spec.scheduler.name == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.epochs,
            grace_period=min(spec.scheduler.grace_period, spec.epochs),
            reduction_factor=spec.scheduler.reduction_factor,
        )
    return FIFOScheduler()


def trial_dirname(trial: Any) -> str:
    """A trial's folder is named by its id alone, so results can be traced from any path."""
    return trial.trial_id


def trial_name(trial: Any) -> str:
    """``model-loss-s<seed>-<trial_id>``, after ``<dataset>-`` in a sweep of several datasets:
    readable in Tune's progress table and in MLflow."""
    config = cells.resolve(trial.config)
    dataset = f"{config['dataset']}-" if config.get("dataset") else ""
    return (f"{dataset}{config.get('model')}-{config.get('loss')}-s{config.get('seed')}-"
            f"{trial.trial_id}")


def make_plan(spec: SweepSpec) -> Plan:
    """The ``Plan`` for ``spec`` (metric and mode go to the searcher and scheduler).

    Raises:
        UsageError: ``check_plan`` refuses the spec.
    """
    check_plan(spec)
    # Seeded from the spec (search_seed), so the same spec draws the same hyperparameters.
    if spec.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        # samples x cells suggestions, each on every seed (num_samples counts the repeats).
        search_alg = SeedRepeater(OptunaSearch(seed=spec.search_seed), spec.seeds)
        num_samples = spec.samples * spec.cells
        max_concurrent = spec.max_concurrent  # Tune wraps a Searcher in a ConcurrencyLimiter
    else:
        # The grid (cells x samples x seeds) once; every draw is a SharedDraw seeded by the
        # spec. The generator limits concurrency itself: Tune ignores max_concurrent_trials
        # (with a log line only) when it is given a generator.
        search_alg = BasicVariantGenerator(random_state=spec.search_seed,
                                           max_concurrent=spec.max_concurrent or 0)
        num_samples = 1
        max_concurrent = None
    config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        search_alg=search_alg,
        scheduler=scheduler(spec),
        num_samples=num_samples,
        max_concurrent_trials=max_concurrent,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_dirname,
        # reuse_workers (the default): a warm worker runs the next trial of the same
        # resources: no process start, no TensorFlow import (~13 s a trial here). Thread
        # counts and GPU memory settings are process-wide, set by the first trial and equal
        # for every trial of a sweep; the trial resets the rest, including the traced graphs
        # TensorFlow would otherwise keep of every model (run.trial.run, run.trial.leaks).
        reuse_actors=spec.reuse_workers,
    )
    return Plan(param_space(spec), config, spec.samples * spec.cells)
