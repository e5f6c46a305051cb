"""The protocol's selection (bench.spec.stages) value by value: what stage 1 chooses per
dataset, ties, infinite and missing scores, the choice's exact fields, the selection table,
and the stage specs' every setting. Each test names the mutants of
``tests/mutation/run.py --groups selection`` it was written to kill (docs/mutation.md)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.common.cells import cell_label
from bench.spec.model import Scheduler, Space, SweepDataset, SweepSpec
from bench.spec.protocol import Protocol
from bench.spec.stages import (
    _Chosen,
    final_param_space,
    final_stage,
    select_params,
    selection_table,
    tune_stage,
)


def _spec(**changes) -> SweepSpec:
    base = dict(
        name="p", datasets=(SweepDataset("shapes"),), models=(), losses=(), seeds=(7,),
        epochs=3, params={"batch_size": 16, "lr": Space("loguniform", (1e-4, 1e-2))},
        samples=8, search="optuna", scheduler=Scheduler("asha", grace_period=2),
        protocol=Protocol(tune_samples=4, tune_scheduler=Scheduler("asha"), tune_seeds=(0, 1),
                          final_seeds=(2, 3, 4)),
    )
    base.update(changes)
    return SweepSpec(**base)


def _trial(trial_id: str, value: float, lr: float, **more) -> dict:
    return {"trial_id": trial_id, "model": "a", "loss": "dice", "status": "TERMINATED",
            "val_mean_iou": value, "batch_size": 16, "lr": lr, **more}


def test_each_dataset_chooses_apart_and_the_choice_names_its_dataset():
    # One model x loss on two datasets, and a row whose dataset is missing: three cells.
    # On "a" lr 1e-3 wins, on "b" lr 2e-3: the same configuration is judged per dataset.
    trials = pd.DataFrame([
        _trial("t1", 0.8, 1e-3, dataset="a"), _trial("t2", 0.6, 2e-3, dataset="a"),
        _trial("t3", 0.3, 1e-3, dataset="b"), _trial("t4", 0.5, 2e-3, dataset="b"),
        _trial("t5", 0.4, 5e-3, dataset=None),
    ])
    chosen = select_params(trials, _spec())
    assert chosen == {
        "a | a | dice": {"dataset": "a", "model": "a", "loss": "dice", "batch_size": 16,
                         "lr": 1e-3, "_trial_id": "t1", "_score": 0.8},
        "b | a | dice": {"dataset": "b", "model": "a", "loss": "dice", "batch_size": 16,
                         "lr": 2e-3, "_trial_id": "t4", "_score": 0.5},
        # No dataset: the cell is "model | loss" and its choice has no dataset key.
        "a | dice": {"model": "a", "loss": "dice", "batch_size": 16, "lr": 5e-3,
                     "_trial_id": "t5", "_score": 0.4},
    }
    # A float NaN dataset (what Parquet gives for a missing string) is no dataset either.
    nan_row = pd.DataFrame([_trial("t6", 0.4, 5e-3, dataset=math.nan)])
    assert list(select_params(nan_row, _spec())) == ["a | dice"]


def test_the_best_configuration_wins_wherever_it_comes_and_ties_go_to_the_first():
    # The best first, worse ones after it: a choice that kept the last one seen is wrong.
    trials = pd.DataFrame([_trial("t1", 0.9, 1e-3), _trial("t2", 0.5, 2e-3),
                           _trial("t3", 0.7, 3e-3)])
    (chosen,) = select_params(trials, _spec()).values()
    assert (chosen["_trial_id"], chosen["lr"]) == ("t1", 1e-3)
    # Two configurations with the same mean: the first seen is kept, not the later one.
    tied = pd.DataFrame([_trial("t1", 0.6, 1e-3), _trial("t2", 0.6, 2e-3)])
    (chosen,) = select_params(tied, _spec()).values()
    assert (chosen["_trial_id"], chosen["lr"]) == ("t1", 1e-3)


def test_an_infinite_score_is_no_candidate():
    # +inf would beat every real score; it is a diverged or broken trial, not a choice.
    trials = pd.DataFrame([_trial("t1", math.inf, 1e-3), _trial("t2", 0.4, 2e-3),
                           _trial("t3", -math.inf, 3e-3)])
    (chosen,) = select_params(trials, _spec()).values()
    assert (chosen["_trial_id"], chosen["_score"]) == ("t2", 0.4)


def test_mode_min_scores_are_the_negated_mean_and_the_table_gives_the_value_back():
    trials = pd.DataFrame([
        {"trial_id": "t1", "model": "a", "loss": "dice", "status": "TERMINATED",
         "val_loss": 0.3, "batch_size": 8, "lr": 1e-3},
        {"trial_id": "t2", "model": "a", "loss": "dice", "status": "TERMINATED",
         "val_loss": 0.2, "batch_size": 32, "lr": 2e-3},
    ])
    spec = _spec(metric="val_loss", mode="min")
    chosen = select_params(trials, spec)
    assert chosen == {"a | dice": {"model": "a", "loss": "dice", "batch_size": 32,
                                   "lr": 2e-3, "_trial_id": "t2", "_score": -0.2}}
    table = selection_table(chosen, spec)
    assert table.to_dict("records") == [{"model": "a", "loss": "dice", "tune_trial_id": "t2",
                                         "tune_val_loss": 0.2, "batch_size": 32, "lr": 2e-3}]


def test_selection_table_has_one_row_per_cell_with_its_dataset_trial_and_score():
    chosen = {
        "a | u | dice": {"dataset": "a", "model": "u", "loss": "dice", "batch_size": 16,
                         "lr": 1e-3, "_trial_id": "t1", "_score": 0.8},
        "b | u | dice": {"dataset": "b", "model": "u", "loss": "dice", "batch_size": 8,
                         "lr": 2e-3, "_trial_id": "t4", "_score": 0.5},
    }
    table = selection_table(chosen, _spec())
    assert list(table.columns) == ["dataset", "model", "loss", "tune_trial_id",
                                   "tune_val_mean_iou", "batch_size", "lr"]
    assert table.to_dict("records") == [
        {"dataset": "a", "model": "u", "loss": "dice", "tune_trial_id": "t1",
         "tune_val_mean_iou": 0.8, "batch_size": 16, "lr": 1e-3},
        {"dataset": "b", "model": "u", "loss": "dice", "tune_trial_id": "t4",
         "tune_val_mean_iou": 0.5, "batch_size": 8, "lr": 2e-3}]
    # A choice without its trial id (older selections): the column holds None.
    no_id = {"u | dice": {"model": "u", "loss": "dice", "batch_size": 16, "lr": 1e-3,
                          "_score": 0.7}}
    assert selection_table(no_id, _spec()).loc[0, "tune_trial_id"] is None


def test_stage_specs_replace_every_setting_the_protocol_owns():
    # The spec's own samples (8), search (optuna), scheduler (asha) and seeds (7) differ from
    # what each stage must run with, so a setting left unchanged shows.
    spec = _spec()
    tune = tune_stage(spec)
    assert (tune.samples, tune.scheduler, tune.seeds) == (4, Scheduler("asha"), (0, 1))
    final = final_stage(spec)
    assert (final.samples, final.scheduler, final.seeds, final.search) == (
        1, Scheduler("fifo"), (2, 3, 4), "random")
    assert (final.epochs, final.params, final.metric) == (spec.epochs, spec.params,
                                                         spec.metric)


def test_a_spec_without_a_protocol_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^sweep 'plain' has no protocol$"):
        tune_stage(_spec(name="plain", protocol=None))
    # An object without the attribute at all (a spec from before protocols) too.
    with pytest.raises(ValueError, match=r"^sweep 'old' has no protocol$"):
        final_stage(SimpleNamespace(name="old"))


def test_final_param_space_draws_the_dataset_when_the_choices_have_one():
    chosen = {"a | u | dice": {"dataset": "a", "model": "u", "loss": "dice",
                               "batch_size": 16, "lr": 1e-3}}
    space = final_param_space(_spec(), chosen)
    assert list(space) == ["cell", "seed", "dataset", "model", "loss", "batch_size", "lr"]
    assert space["dataset"].func({"cell": "a | u | dice"}) == "a"
    without = {"u | dice": {"model": "u", "loss": "dice", "batch_size": 16, "lr": 1e-3}}
    assert "dataset" not in final_param_space(_spec(), without)


def test_a_chosen_value_is_looked_up_from_a_plain_config_or_a_tune_spec():
    chosen = {"u | dice": {"model": "u", "loss": "dice", "lr": 1e-3}}
    draw = _Chosen(chosen, "lr")
    assert draw({"cell": "u | dice"}) == 1e-3  # a plain config dict
    assert draw(SimpleNamespace(config={"cell": "u | dice"})) == 1e-3  # Tune's spec
    assert cell_label("u", "dice") == "u | dice"
