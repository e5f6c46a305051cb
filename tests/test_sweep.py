"""A real sweep (local Ray, MLflow sqlite, Parquet): the contract's files, rows and columns,
and the same numbers in trials, history and MLflow."""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import zoo  # registers the custom layers, losses and metrics for loading
from tests.test_selection import numpy_mean_iou, split_arrays

TRIAL_COLUMNS = [
    "sweep", "trial_id", "model", "loss", "dataset", "seed", "lr", "batch_size", "epochs_done",
    "status", "params", "val_loss", "val_mean_iou", "val_dice_coef", "best_epoch",
    "train_seconds", "samples_per_second", "node", "node_id", "mlflow_run_id",
    "val_pixel_accuracy", "val_iou_class_0", "val_iou_class_2", "n_params", "error", "spec",
    "versions", "metric", "mode", "predictions_png", "epochs", "started_at", "ended_at",
    "stage", "selected_epoch", "test_loss", "test_mean_iou", "test_dice_coef",
    "test_pixel_accuracy", "test_iou_class_0", "test_iou_class_2", "test_case_dice_fg",
    "test_case_iou_fg", "test_case_nsd_fg", "test_case_hd95_fg", "config_id",
]
CASE_COLUMNS = [
    "sweep", "trial_id", "model", "loss", "dataset", "seed", "config_id", "stage", "case",
    "class_index", "class_name", "dice", "iou", "nsd", "hd95",
]
HISTORY_COLUMNS = [
    "sweep", "trial_id", "model", "loss", "dataset", "seed", "epoch", "train_loss", "val_loss",
    "train_mean_iou", "val_mean_iou", "train_dice_coef", "val_dice_coef", "train_pixel_accuracy",
    "val_pixel_accuracy", "val_iou_class_1", "epoch_seconds", "cpu_seconds",
    "samples_per_second", "lr",
]


@pytest.fixture(scope="module")
def tables(small_sweep):
    read = {name: pd.read_parquet(small_sweep.results / f"{name}.parquet")
            for name in ("trials", "history", "leaderboard", "cases")}
    for frame in read.values():
        frame["sweep"] = frame["sweep"].astype(str)
    return read


def test_trials_one_row_per_trial_fully_trained(tables):
    trials = tables["trials"]
    assert [c for c in TRIAL_COLUMNS if c not in trials.columns] == []
    assert len(trials) == 2 and trials["trial_id"].is_unique
    assert sorted(trials["loss"]) == ["categorical_crossentropy", "dice"]
    assert set(trials["model"]) == {"testnet"} and set(trials["dataset"]) == {"shapes"}
    assert set(trials["status"]) == {"TERMINATED"} and trials["error"].isna().all()
    assert list(trials["epochs_done"]) == [2, 2] and list(trials["sweep"]) == ["small"] * 2
    assert (trials["lr"] == 1e-3).all() and (trials["batch_size"] == 8).all()
    assert (trials["train_seconds"] > 0).all() and (trials["samples_per_second"] > 0).all()
    assert trials["node"].str.len().gt(0).all() and trials["node_id"].str.len().gt(20).all()
    assert (trials["n_params"] > 1000).all()
    params = json.loads(trials["params"].iloc[0])
    assert params["optimizer"] == "adam" and params["seed"] == 0
    assert json.loads(trials["versions"].iloc[0])["keras"] == keras.__version__
    assert (trials["ended_at"] > trials["started_at"]).all()


def test_history_matches_trials_best_epoch(tables):
    trials, history = tables["trials"], tables["history"]
    assert [c for c in HISTORY_COLUMNS if c not in history.columns] == []
    assert len(history) == 4
    for trial in trials.itertuples():
        rows = history[history["trial_id"] == trial.trial_id].sort_values("epoch")
        assert list(rows["epoch"]) == [1, 2]
        assert (rows["epoch_seconds"] > 0).all()
        # CPU time of the trial's process over the same span: positive, and no more than
        # every core of the machine busy for the whole epoch.
        assert (rows["cpu_seconds"] > 0).all()
        assert (rows["cpu_seconds"] <= rows["epoch_seconds"] * (os.cpu_count() or 1)).all()
        best = rows.loc[rows["val_mean_iou"].idxmax()]
        assert trial.best_epoch == best["epoch"]
        assert trial.val_mean_iou == pytest.approx(best["val_mean_iou"])
        assert trial.val_loss == pytest.approx(best["val_loss"])
        assert 0.0 <= trial.val_mean_iou <= 1.0


def test_each_trial_tests_its_best_validation_epoch(tables):
    trials, history, cases = tables["trials"], tables["history"], tables["cases"]
    assert set(trials["stage"]) == {"final"}
    for trial in trials.itertuples():
        rows = history[history["trial_id"] == trial.trial_id]
        best = rows.loc[rows["val_mean_iou"].idxmax(), "epoch"]  # the first of ties
        assert trial.selected_epoch == best == trial.best_epoch
        row = trials[trials["trial_id"] == trial.trial_id].iloc[0]
        for column in [c for c in trials.columns if c.startswith("val_")]:
            assert math.isfinite(row[f"test_{column[4:]}"]), column
        assert 0.0 <= row["test_mean_iou"] <= 1.0
        own = cases[cases["trial_id"] == trial.trial_id]
        assert len(own) == own["case"].nunique() * 3  # every test case x each of 3 classes
        # Foreground classes only (K = 3): class 0 is left out of the per-case means.
        foreground = own[own["class_index"] != 0]
        assert row["test_case_dice_fg"] == pytest.approx(foreground["dice"].mean())
        assert set(own["stage"]) == {"final"} and set(own["config_id"]) == {row["config_id"]}
    assert [c for c in CASE_COLUMNS if c not in cases.columns] == []
    assert set(cases["class_name"]) == {"background", "circle", "square"}


def test_leaderboard_ranks_each_model_loss(tables, small_sweep):
    board, trials = tables["leaderboard"], tables["trials"]
    assert len(board) == 2 and sorted(board["rank"]) == [1, 2]
    # The board ranks the test twin of the sweep's metric (one seed: the mean is the value),
    # so rank 1 is the loss whose trial scored the higher test IoU.
    ordered = board.sort_values("rank")
    assert (ordered["metric"] == "test_mean_iou").all()
    by_loss = trials.set_index("loss")["test_mean_iou"]
    best = by_loss.sort_values(ascending=False)
    if best.iloc[0] > best.iloc[1]:  # equal scores (two all-background models) may go either way
        assert ordered["loss"].iloc[0] == best.index[0]
    for row in ordered.itertuples():
        assert row.test_mean_iou_mean == pytest.approx(by_loss[row.loss])
        assert row.count == 1


def test_prediction_pngs_are_written(tables, small_sweep):
    for relative in tables["trials"]["predictions_png"]:
        png = small_sweep.results / relative
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_runs_hold_params_metrics_and_model(tables, small_sweep, tmp_path):
    client = MlflowClient(small_sweep.tracking_uri)
    trials, history = tables["trials"], tables["history"]
    parents = {client.get_run(run_id).data.tags["mlflow.parentRunId"]
               for run_id in trials["mlflow_run_id"]}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.info.run_name == "small" and parent.info.status == "FINISHED"
    for trial in trials.itertuples():
        run = client.get_run(trial.mlflow_run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["loss"] == trial.loss and float(run.data.params["lr"]) == 1e-3
        assert int(run.data.params["n_params"]) == trial.n_params
        steps = client.get_metric_history(trial.mlflow_run_id, "val_mean_iou")
        # Steps 1..E are the epochs; step E + 1 repeats the selected epoch's (its final values).
        logged = {m.step: m.value for m in steps if m.step <= trial.epochs_done}
        rows = history[history["trial_id"] == trial.trial_id]
        assert logged == pytest.approx(dict(zip(rows["epoch"], rows["val_mean_iou"],
                                                strict=True)))
        tested = client.get_metric_history(trial.mlflow_run_id, "test_mean_iou")
        assert [(m.step, m.value) for m in tested] == [
            (trial.epochs_done + 1, pytest.approx(trial.test_mean_iou))]
        artifacts = {a.path for a in client.list_artifacts(trial.mlflow_run_id)}
        assert {"model", "predictions.png"} <= artifacts
    # Each run's model is the weights the trial tested: its predictions on the test split,
    # scored here in NumPy, give the trial's test_mean_iou.
    splits = zoo.datasets.load_splits("shapes", batch_size=8, seed=0, height=16, width=16,
                                      channels=3, classes=3, train=16, val=8)
    x_test, y_test = split_arrays(splits.test)
    for trial in trials.itertuples():
        path = client.download_artifacts(trial.mlflow_run_id, "model/model.keras",
                                         str(tmp_path / trial.trial_id))
        model = keras.saving.load_model(path, safe_mode=True)
        out = model.predict(x_test, verbose=0)
        assert out.shape == (len(x_test), 16, 16, 3)
        assert np.allclose(out.sum(-1), 1.0, atol=1e-4) and not math.isnan(out.sum())
        assert numpy_mean_iou(y_test, out) == pytest.approx(trial.test_mean_iou, abs=1e-5)


def test_tune_keeps_statistics_only_of_the_numbers_it_acts_on(small_sweep, tables):
    """Tune analyses every number of a result in every trial's snapshot state; a trial
    gives it the metric, the epoch and the attempt (bench.common.tune_result), and the
    tables still have every number."""
    from ray.tune.result import AUTO_RESULT_KEYS

    from bench.common.tune_result import KEPT

    (state,) = (small_sweep.results / "ray" / "small").glob("experiment_state-*.json")
    trials = json.loads(state.read_text())["trial_data"]
    assert len(trials) == 2
    for _, runtime in trials:
        analysed = set(json.loads(runtime)["metric_analysis"])
        assert {"val_mean_iou", "epoch"} <= analysed
        own = {*AUTO_RESULT_KEYS, "done", "should_checkpoint"}  # Tune adds these itself
        assert analysed - own <= {"val_mean_iou", *KEPT}
    row = tables["trials"].iloc[0]
    for column in ("val_loss", "test_mean_iou", "flops", "setup_process_s", "best_epoch"):
        assert math.isfinite(row[column]), column


def test_trial_folders_hold_no_tune_logger_files(small_sweep, tables):
    """Tune's own result.json, progress.csv, params and TensorBoard files are left out
    (bench.run.tune_files): the snapshots copy the trial folders every time, and the tables
    hold every number. The trials' checkpoints are still there, and Tune still knows each
    trial's last result (its ResultGrid reads the snapshot, not those files)."""
    from ray.tune import ExperimentAnalysis

    from bench.run.tune_files import VARIABLE

    experiment = small_sweep.results / "ray" / "small"
    folders = [p for p in experiment.iterdir() if p.is_dir()]
    assert len(folders) == len(tables["trials"]) == 2
    for folder in folders:
        names = {p.name for p in folder.iterdir()}
        assert not names & {"result.json", "progress.csv", "params.json", "params.pkl"}
        assert not any(name.startswith("events.out.tfevents") for name in names)
        assert any(name.startswith("checkpoint_") for name in names)
    analysis = ExperimentAnalysis(str(experiment))
    ends = {trial.trial_id: trial.last_result["end_reason"] for trial in analysis.trials}
    assert ends == dict.fromkeys(tables["trials"]["trial_id"], "completed")
    assert VARIABLE not in os.environ  # put back after the sweep


def test_log_models_none_logs_a_trials_metrics_and_picture_but_no_model(tmp_path):
    """``log_models: none``: a tested trial's run has its test metrics and its predictions
    picture, and neither a LoggedModel nor a ``model/`` folder; the tables are as with
    models."""
    from tests.conftest import SMALL_SPEC, run_cli

    spec = tmp_path / "nomodels.yaml"
    spec.write_text(SMALL_SPEC.replace("name: small", "name: nomodels")
                    .replace("[categorical_crossentropy, dice]", "[dice]")
                    .replace("epochs: 2", "epochs: 1") + "log_models: none\n")
    results = tmp_path / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 1 and math.isfinite(trials["test_mean_iou"].iloc[0])
    client = MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    run = client.get_run(trials["mlflow_run_id"].iloc[0])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_mean_iou"] == pytest.approx(trials["test_mean_iou"].iloc[0])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"predictions.png"}
    assert client.search_logged_models([run.info.experiment_id]) == []
