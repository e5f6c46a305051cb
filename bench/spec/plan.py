"""A validated spec becomes Tune's three objects: what is searched, how, and with what.

* ``param_space``: ``dataset`` (when the spec lists several), ``model``, ``loss`` and
  ``seed`` as ``grid_search`` (every cell is run), the hyperparameters as Tune domains;
  ``samples`` is Tune's ``num_samples``, so each cell gets ``samples`` draws. A spec that
  leaves cells out (``skip_incompatible``) is not a product of grids: its dataset x
  model x loss cells are one ``cell`` grid instead (``bench.common.cells``).
* ``tune_config``: the search algorithm (``random`` = Tune's BasicVariantGenerator,
  ``optuna`` = ``OptunaSearch``), both seeded with the spec's ``search_seed``, and
  scheduler (``fifo`` or ``asha`` on the sweep's metric and mode).

Optuna cannot take ``grid_search``: with ``search: optuna`` dataset, model, loss (or the
cell) and seed become categorical parameters searched jointly with the rest, and the sweep
runs ``samples x cells`` trials in all (Optuna decides how they are spread over cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator

from bench.common import cells
from bench.spec.model import Space, SweepSpec


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


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's ``param_space``: the grid (or Optuna's categories) plus every hyperparameter.

    Datasets, models and losses appear by label (``digits[height=16]``,
    ``focal(gamma=2)``); the trainable finds their registry name and options in its
    ``SweepContext``. A single dataset is not a key (its trials' configs are as before).
    """
    grid: dict[str, list[Any]] = {}
    if spec.skipped:
        grid[cells.CELL_KEY] = [cell.label for cell in spec.grid]
    else:
        if len(spec.datasets) > 1:
            grid["dataset"] = [d.label for d in spec.datasets]
        grid["model"] = [m.label for m in spec.models]
        grid["loss"] = [loss.label for loss in spec.losses]
    grid["seed"] = list(spec.seeds)
    wrap = tune.choice if spec.search == "optuna" else tune.grid_search
    space = {key: wrap(values) for key, values in grid.items()}
    space.update({key: _domain(value) for key, value in spec.params.items()})
    return space


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
    """The ``Plan`` for ``spec`` (metric and mode go to the searcher and scheduler)."""
    # Seeded from the spec (search_seed), so the same spec draws the same hyperparameters.
    if spec.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=spec.search_seed)
        num_samples = spec.samples * spec.cells
        max_concurrent = spec.max_concurrent  # Tune wraps a Searcher in a ConcurrencyLimiter
    else:
        # The grid x random draws; random_state seeds the draws of every domain. The
        # generator limits concurrency itself: Tune ignores max_concurrent_trials (with a
        # log line only) when it is given a generator.
        search_alg = BasicVariantGenerator(random_state=spec.search_seed,
                                           max_concurrent=spec.max_concurrent or 0)
        num_samples = spec.samples
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
