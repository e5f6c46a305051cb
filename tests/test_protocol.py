"""Tune-then-test: stage specs, the selection of each cell's params, stage 2's grid."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest

from bench.spec.model import Scheduler, Space, SweepDataset, SweepSpec
from bench.spec.protocol import Protocol, ProtocolError, check_protocol
from bench.spec.stages import (
    cell_label,
    final_param_space,
    final_stage,
    select_params,
    tune_stage,
)


def _spec(**changes) -> SweepSpec:
    base = dict(
        name="p", datasets=(SweepDataset("shapes"),), models=(), losses=(), seeds=(0,),
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


def test_select_params_scores_a_configuration_by_its_mean_over_tune_seeds():
    # lr 1e-3 on seeds 0, 1: 0.9 and 0.1 (mean 0.5); lr 2e-3: 0.6 and 0.6 (mean 0.6). Its
    # best single trial (0.9) does not make a configuration the choice; its mean does.
    rows = [("t1", 0, 1e-3, 0.9), ("t2", 1, 1e-3, 0.1), ("t3", 0, 2e-3, 0.6),
            ("t4", 1, 2e-3, 0.6), ("t5", 0, 3e-3, 0.7), ("t6", 1, 3e-3, math.nan)]
    trials = pd.DataFrame([{"trial_id": t, "model": "a", "loss": "dice", "seed": seed,
                            "status": "TERMINATED" if v == v else "NAN", "val_mean_iou": v,
                            "batch_size": 16, "lr": lr} for t, seed, lr, v in rows])
    # lr 3e-3: one diverged seed is not counted, so its mean is its other seed's 0.7.
    (chosen,) = select_params(trials, _spec()).values()
    assert chosen["lr"] == pytest.approx(3e-3) and chosen["_score"] == pytest.approx(0.7)
    (chosen,) = select_params(trials[trials["lr"] != 3e-3], _spec()).values()
    assert chosen["lr"] == pytest.approx(2e-3) and chosen["_score"] == pytest.approx(0.6)
    assert chosen["_trial_id"] == "t3"


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


# ---------------------------------------------------------------- end to end, real Ray

PROTOCOL_SPEC = """\
name: {name}
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 32, val: 8,
          test: 8}}
models: [testnet]
losses: [dice]
epochs: {epochs}
params:
  batch_size: 8
  lr: {{loguniform: [1.0e-4, 3.0e-2]}}
protocol:
  tune: {{samples: 2, seeds: [0]}}
  final: {{seeds: [1, 2]}}
"""


def _protocol_tables(results, name):
    frames = {}
    for table in ("trials", "leaderboard", "cases"):
        frame = pd.read_parquet(results / f"{table}.parquet")
        frame["sweep"] = frame["sweep"].astype(str)
        frames[table] = frame[frame["sweep"] == name].reset_index(drop=True)
    return frames["trials"], frames["leaderboard"], frames["cases"]


def _check_protocol_outcome(trials: pd.DataFrame, board: pd.DataFrame, epochs: int,
                            cases: pd.DataFrame) -> None:
    tune = trials[trials["stage"] == "tune"]
    final = trials[trials["stage"] == "final"]
    assert len(tune) == 2 and len(final) == 2
    assert sorted(final["seed"]) == [1, 2] and list(tune["seed"]) == [0, 0]
    # Stage 2 retrains the tune trial that was best on validation, on every final seed.
    best = tune.loc[tune["val_mean_iou"].idxmax()]
    assert final["lr"].tolist() == pytest.approx([best["lr"]] * 2)
    assert set(final["status"]) == {"TERMINATED"} and list(final["epochs_done"]) == [epochs] * 2
    assert final["test_mean_iou"].between(0, 1).all()
    # The leaderboard ranks the final stage only: two seeds, not four trials.
    assert len(board) == 1 and int(board["count"].iloc[0]) == 2
    # Issue 25.3: only the final stage is tested. The tune trials ended by themselves (the
    # epoch they would have tested is recorded) but carry no test number and no case.
    assert set(tune["end_reason"]) == {"completed"} and tune["selected_epoch"].notna().all()
    tested = [c for c in trials.columns if c.startswith("test_")]
    assert "test_mean_iou" in tested and "test_case_dice_fg" in tested
    assert tune[tested].isna().all().all(), tune[tested]
    assert set(cases["stage"]) == {"final"}
    assert set(cases["trial_id"]) == set(final["trial_id"])
    # The final trials are the chosen tune configuration: one config_id, the tune trial's.
    assert set(final["config_id"]) == {best["config_id"]} == set(cases["config_id"])
    assert board["config_id"].tolist() == [best["config_id"]]


def test_protocol_sweep_tunes_then_retrains_the_choice_on_final_seeds(tmp_path, capsys):
    from tests.conftest import run_cli

    spec = tmp_path / "proto.yaml"
    spec.write_text(PROTOCOL_SPEC.format(name="proto", epochs=2))
    results = tmp_path / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    assert "retraining 1 chosen settings on seeds [1, 2]" in capsys.readouterr().out
    trials, board, cases = _protocol_tables(results, "proto")
    _check_protocol_outcome(trials, board, epochs=2, cases=cases)

    # A rerun resumes both stages: nothing trains again, the same rows come back. A trial
    # run again would end later and add history rows (and MLflow runs), whatever its id.
    history = pd.read_parquet(results / "history.parquet")
    client = mlflow.MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    again, _, _ = _protocol_tables(results, "proto")
    ended = dict(zip(trials["trial_id"], trials["ended_at"], strict=True))
    assert dict(zip(again["trial_id"], again["ended_at"], strict=True)) == ended
    tested = trials.set_index("trial_id")["test_mean_iou"].dropna()
    assert again.set_index("trial_id")["test_mean_iou"].dropna().to_dict() == tested.to_dict()
    history_again = pd.read_parquet(results / "history.parquet")
    assert len(history_again) == len(history) == 4 * 2  # 4 trials x 2 epochs
    runs_again = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.run_id for r in runs_again) == sorted(r.info.run_id for r in runs)


@pytest.mark.parametrize("change, message", [
    ("  tune: {samples: 4, seeds: [0]}\n  final: {seeds: [1, 2]}\n",
     "protocol.tune.samples: 4 samples but params has no search space"),
    ("  tune: {samples: 1}\n  final: {seeds: [1]}\n",
     "protocol.final.seeds: needs at least 2 seeds"),
])
def test_bad_protocols_exit_2_before_ray_starts(tmp_path, capsys, change, message):
    from tests.conftest import run_cli

    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "dataset: {name: shapes, height: 16, width: 16, classes: 3, train: 16, val: 8}\n"
        "models: [testnet]\nlosses: [dice]\nparams: {batch_size: 8, lr: 1.0e-3}\n"
        "protocol:\n" + change)
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r" / "trials.parquet").exists()


def test_protocol_with_top_level_seeds_is_refused(tmp_path):
    from bench.common.errors import UsageError
    from bench.spec.model import parse_spec

    text = ("dataset: {name: shapes, height: 16, width: 16, classes: 3, train: 16, val: 8}\n"
            "models: [testnet]\nlosses: [dice]\nseeds: [0, 1]\n"
            "params: {lr: {loguniform: [1.0e-4, 1.0e-2]}}\n"
            "protocol: {tune: {samples: 2}, final: {seeds: [0, 1]}}\n")
    with pytest.raises(UsageError, match="protocol: sets the stages' samples, seeds and "
                                         "scheduler; remove the top-level seeds"):
        parse_spec(text, "p.yaml")


@pytest.mark.slow
def test_protocol_sweep_killed_in_stage_2_resumes(tmp_path):
    """SIGKILL the whole sweep (driver, Ray, trials) once stage 2 checkpoints; rerun."""
    from tests.conftest import kill_sweep_when, run_cli

    epochs = 4
    spec = tmp_path / "killed.yaml"
    spec.write_text(PROTOCOL_SPEC.format(name="killed", epochs=epochs))
    results = tmp_path / "results"
    argv = ["sweep", str(spec), "--results", str(results)]
    kill_sweep_when(argv, lambda: list((results / "ray" / "killed.final").glob(
        "*/checkpoint_*")), waiting_for="a stage-2 checkpoint", within_s=900)
    # The live table (written as trials end) holds the tune stage, which ended before the
    # kill, and none of the final stage, whose trials were still training.
    live = pd.read_parquet(results / "trials.parquet")
    assert list(live["stage"].astype(str)) == ["tune", "tune"], live[["stage", "status"]]

    assert run_cli(*argv) == 0
    trials, board, cases = _protocol_tables(results, "killed")
    _check_protocol_outcome(trials, board, epochs=epochs, cases=cases)
    history = pd.read_parquet(results / "history.parquet")
    history = history[history["sweep"].astype(str) == "killed"]
    for trial_id, rows in history.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, epochs + 1)), trial_id
