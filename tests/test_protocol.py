"""Tune-then-test: stage specs, the selection of each cell's params, stage 2's grid."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.protocol import (
    Protocol,
    ProtocolError,
    cell_label,
    check_protocol,
    final_param_space,
    final_stage,
    select_params,
    tune_stage,
)
from bench.spec import Scheduler, Space, SweepSpec


def _spec(**changes) -> SweepSpec:
    base = dict(
        name="p", dataset="shapes", dataset_options={}, models=(), losses=(), seeds=(0,),
        epochs=3, params={"batch_size": 16, "lr": Space("loguniform", (1e-4, 1e-2))},
        protocol=Protocol(tune_samples=4, tune_scheduler=Scheduler("asha"), tune_seeds=(0,),
                          final_seeds=(1, 2, 3)),
    )
    base.update(changes)
    return SweepSpec(**base)


def test_stage_specs_take_the_protocols_settings():
    spec = _spec()
    tune = tune_stage(spec)
    assert (tune.samples, tune.scheduler.name, tune.seeds) == (4, "asha", (0,))
    final = final_stage(spec)
    assert (final.samples, final.scheduler.name, final.seeds) == (1, "fifo", (1, 2, 3))
    assert final.epochs == spec.epochs


def test_select_params_takes_each_cells_best_validation_trial():
    trials = pd.DataFrame([
        # cell a x dice: the 0.7 trial wins; the failed 0.9 one is no candidate
        {"trial_id": "t1", "model": "a", "loss": "dice", "status": "TERMINATED",
         "val_mean_iou": 0.5, "batch_size": 16, "lr": 1e-3},
        {"trial_id": "t2", "model": "a", "loss": "dice", "status": "STOPPED",
         "val_mean_iou": 0.7, "batch_size": 16, "lr": 3e-3},
        {"trial_id": "t3", "model": "a", "loss": "dice", "status": "ERROR",
         "val_mean_iou": 0.9, "batch_size": 16, "lr": 9e-3},
        # cell b x dice: only a NaN metric and a failure: nothing to carry forward
        {"trial_id": "t4", "model": "b", "loss": "dice", "status": "NAN",
         "val_mean_iou": math.nan, "batch_size": 16, "lr": 1e-2},
        {"trial_id": "t5", "model": "b", "loss": "ce", "status": "TERMINATED",
         "val_mean_iou": 0.4, "batch_size": 16, "lr": 2e-4},
    ])
    chosen = select_params(trials, _spec())
    assert sorted(chosen) == [cell_label("a", "dice"), cell_label("b", "ce")]
    assert chosen[cell_label("a", "dice")]["lr"] == pytest.approx(3e-3)
    assert chosen[cell_label("a", "dice")]["_trial_id"] == "t2"
    assert chosen[cell_label("b", "ce")]["lr"] == pytest.approx(2e-4)


def test_select_params_follows_mode_min():
    trials = pd.DataFrame([
        {"trial_id": "t1", "model": "a", "loss": "dice", "status": "TERMINATED",
         "val_loss": 0.3, "batch_size": 8, "lr": 1e-3},
        {"trial_id": "t2", "model": "a", "loss": "dice", "status": "TERMINATED",
         "val_loss": 0.2, "batch_size": 32, "lr": 2e-3},
    ])
    chosen = select_params(trials, _spec(metric="val_loss", mode="min"))
    assert chosen[cell_label("a", "dice")]["batch_size"] == 32


def test_final_param_space_gives_flat_configs_per_cell_and_seed():
    from ray.tune.search.variant_generator import generate_variants

    spec = _spec()
    chosen = {cell_label("a", "dice"): {"model": "a", "loss": "dice", "batch_size": 16,
                                        "lr": 3e-3},
              cell_label("b", "ce"): {"model": "b", "loss": "ce", "batch_size": 8,
                                      "lr": 2e-4}}
    configs = [variant["config"] for _, variant in
               generate_variants({"config": final_param_space(spec, chosen)})]
    assert len(configs) == 2 * 3
    for config in configs:
        assert config["seed"] in (1, 2, 3)
        assert chosen[config["cell"]]["lr"] == config["lr"]
        assert cell_label(config["model"], config["loss"]) == config["cell"]
    assert sorted({(c["model"], c["seed"]) for c in configs}) == [
        ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]


def test_protocol_checks():
    fixed = {"batch_size": 16, "lr": 1e-3}
    with pytest.raises(ProtocolError, match="tune.samples: 4 samples but params has no search"):
        check_protocol(Protocol(4, Scheduler(), (0,), (0, 1)), fixed)
    with pytest.raises(ProtocolError, match=r"final.seeds: needs at least 2 seeds"):
        check_protocol(Protocol(1, Scheduler(), (0,), (0,)), fixed)
    check_protocol(Protocol(1, Scheduler(), (0,), (0, 1)), fixed)  # retrain only: fine
