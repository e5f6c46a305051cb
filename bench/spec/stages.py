"""Tune-then-test: search on validation, then retrain each cell's choice on fresh seeds.

A spec with ``protocol`` runs two stages, each a Tune experiment of its own::

    protocol:
      tune: {samples: 8, scheduler: asha, seeds: [0]}   # stage 1: search ``params``
      final: {seeds: [0, 1, 2, 3, 4]}                    # stage 2: the chosen params, tested

* Stage ``tune`` is the spec itself with the protocol's ``samples``, ``scheduler`` and
  ``seeds``: every dataset x model x loss cell searches ``params`` on the validation split.
* Stage ``final`` takes, per cell (so per dataset too), the params of the tune
  configuration with the best validation value of the sweep's metric, averaged over its
  tune seeds (``select_params``), and trains them on every
  final seed for the full epochs with FIFO scheduling; each trial is then tested
  (its ``test_*`` columns). The leaderboard ranks this stage only; the ``tune`` stage's
  trials are never tested (no ``test_*`` numbers, no cases).

A cell whose every tune trial failed has nothing to carry forward and is left out of
stage ``final`` (its failures stay in the tables). Both stages resume: rerunning the
command restores stage ``tune`` (already finished: nothing runs), recomputes the same
selection from its results and restores stage ``final``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from bench.common.cells import cell_label
from bench.spec.configs import config_id
from bench.spec.model import SweepSpec
from bench.spec.parts import Scheduler
from bench.spec.protocol import Protocol

TUNE_STAGE, FINAL_STAGE = "tune", "final"
STAGES = (TUNE_STAGE, FINAL_STAGE)
FAILED = ("ERROR", "NAN")


def tune_stage(spec: SweepSpec) -> SweepSpec:
    """Stage 1's spec: ``spec`` with the protocol's samples, scheduler and seeds."""
    protocol = _protocol(spec)
    return replace(spec, samples=protocol.tune_samples, scheduler=protocol.tune_scheduler,
                   seeds=protocol.tune_seeds)


def final_stage(spec: SweepSpec) -> SweepSpec:
    """Stage 2's spec: the final seeds, one trial per cell and seed, FIFO.

    Its ``params`` are placeholders: ``final_param_space`` puts each cell's choice in.
    """
    protocol = _protocol(spec)
    return replace(spec, samples=1, scheduler=Scheduler("fifo"), seeds=protocol.final_seeds,
                   search="random")


def _protocol(spec: SweepSpec) -> Protocol:
    protocol = getattr(spec, "protocol", None)
    if protocol is None:
        raise ValueError(f"sweep {spec.name!r} has no protocol")
    return protocol


def select_params(trials: pd.DataFrame, spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Each cell's chosen params from the tune stage's ``trials`` table, on validation only.

    A configuration (its cell and ``params`` values, ``bench.spec.configs.config_id``) is
    scored by the mean of the sweep's metric over its tune seeds (one value with one tune
    seed); each cell keeps its best configuration.

    Args:
        trials: one row per tune trial with ``model``, ``loss``, ``status``, the
            sweep's metric (its best validation epoch's value) and the ``params``
            columns (``batch_size``, ``lr``, ...); with a ``dataset`` column, each
            dataset's cells are chosen apart.
        spec: the sweep (its ``metric``, ``mode`` and ``params`` keys).

    Returns:
        ``{cell_label(model, loss, dataset): {"dataset", "model", "loss", param: value,
        ...}}`` (``"model | loss"`` without a dataset column) with the params of the
        cell's configuration whose mean metric is best (ties: the one seen first), its
        ``_score`` and the ``_trial_id`` of its first trial. Failed trials and those
        without a finite metric are not counted; a cell without any is absent.
    """
    metric, sign = spec.metric, (1.0 if spec.mode == "max" else -1.0)
    keys = list(spec.params)
    # cell label -> config id -> (the configuration's values, its trials' scores)
    found: dict[str, dict[str, tuple[dict[str, Any], list[float]]]] = {}
    for row in trials.to_dict("records"):
        value = row.get(metric)
        if row.get("status") in FAILED or value is None or pd.isna(value) \
                or not math.isfinite(float(value)):
            continue
        dataset = row.get("dataset")
        dataset = None if dataset is None or pd.isna(dataset) else str(dataset)
        model, loss = str(row["model"]), str(row["loss"])
        params = {key: _plain(row.get(key)) for key in keys}
        where = {"dataset": dataset} if dataset is not None else {}
        configs = found.setdefault(cell_label(model, loss, dataset), {})
        entry = configs.setdefault(config_id(dataset, model, loss, params), (
            {**where, "model": model, "loss": loss, **params,
             "_trial_id": str(row.get("trial_id"))}, []))
        entry[1].append(sign * float(value))
    chosen: dict[str, dict[str, Any]] = {}
    for label, configs in found.items():
        best_values, best_score = None, -math.inf
        for values, scores in configs.values():
            score = sum(scores) / len(scores)
            if best_values is None or score > best_score:
                best_values, best_score = values, score
        assert best_values is not None
        chosen[label] = {**best_values, "_score": best_score}
    return chosen


def _plain(value: Any) -> Any:
    """NumPy / pandas scalars as plain Python values (Tune configs are JSON-logged)."""
    if hasattr(value, "item"):
        return value.item()
    return value


class _Chosen:
    """``tune.sample_from`` callable: a cell's chosen value of ``key`` (picklable)."""

    def __init__(self, chosen: Mapping[str, Mapping[str, Any]], key: str) -> None:
        self.chosen = {label: dict(values) for label, values in chosen.items()}
        self.key = key

    def __call__(self, spec: Any) -> Any:
        config = spec.config if hasattr(spec, "config") else spec
        return self.chosen[config["cell"]][self.key]


def final_param_space(spec: SweepSpec, chosen: Mapping[str, Mapping[str, Any]]
                      ) -> dict[str, Any]:
    """Tune's ``param_space`` for stage 2: a grid of cells x final seeds.

    ``dataset`` (when the cells have one), ``model``, ``loss`` and every param are drawn
    with ``tune.sample_from`` from the cell's choice, so trial configs stay flat
    (``dataset``, ``model``, ``lr``, ...) as in any sweep.
    """
    from ray import tune

    protocol = _protocol(spec)
    space: dict[str, Any] = {
        "cell": tune.grid_search(sorted(chosen)),
        "seed": tune.grid_search(list(protocol.final_seeds)),
    }
    with_dataset = any("dataset" in values for values in chosen.values())
    for key in ("dataset", "model", "loss", *spec.params):
        if key != "dataset" or with_dataset:
            space[key] = tune.sample_from(_Chosen(chosen, key))
    return space


def selection_table(chosen: Mapping[str, Mapping[str, Any]], spec: SweepSpec) -> pd.DataFrame:
    """One row per cell: what stage 1 chose and the tune trial it came from."""
    rows = [{**({"dataset": values["dataset"]} if "dataset" in values else {}),
             "model": values["model"], "loss": values["loss"],
             "tune_trial_id": values.get("_trial_id"),
             f"tune_{spec.metric}": (values["_score"] if spec.mode == "max"
                                     else -values["_score"]),
             **{key: values[key] for key in spec.params}}
            for values in chosen.values()]
    return pd.DataFrame(rows)
