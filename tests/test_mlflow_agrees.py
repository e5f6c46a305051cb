"""MLflow agrees with the tables (issue 30): a run's final metrics are its selected epoch's,
its model is named by its configuration, its dataset is an input, and the sweep's parent
run carries the leaderboard as a table. On the session's small real sweep (conftest)."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from bench.run.data_cache import dataset_key
from bench.run.trial.final import _compact, logged_model_name
from bench.run.trial.state import mlflow_epoch_metrics


@pytest.fixture(scope="module")
def tables(small_sweep):
    return {name: pd.read_parquet(small_sweep.results / f"{name}.parquet")
            for name in ("trials", "history", "leaderboard")}


def test_a_runs_final_metrics_are_the_selected_epochs(small_sweep, tables):
    client = MlflowClient(small_sweep.tracking_uri)
    trials, history = tables["trials"], tables["history"]
    for trial in trials.itertuples():
        run = client.get_run(trial.mlflow_run_id)
        # What the runs table's columns and the run page show: the tables' numbers.
        assert run.data.metrics["val_mean_iou"] == pytest.approx(trial.val_mean_iou, abs=1e-12)
        assert run.data.metrics["val_loss"] == pytest.approx(trial.val_loss, abs=1e-12)
        assert run.data.metrics["train_loss"] == pytest.approx(trial.train_loss, abs=1e-12)
        assert run.data.metrics["test_mean_iou"] == pytest.approx(trial.test_mean_iou)
        assert run.data.metrics["selected_epoch"] == trial.selected_epoch
        # Training metrics carry train_ as in the tables; no bare Keras name is logged.
        assert "train_mean_iou" in run.data.metrics and "mean_iou" not in run.data.metrics
        # The history is kept, one step per epoch, and the final step follows it.
        rows = history[history["trial_id"] == trial.trial_id].set_index("epoch")
        points = client.get_metric_history(trial.mlflow_run_id, "val_mean_iou")
        epochs = int(trial.epochs_done)
        assert sorted(p.step for p in points) == [*range(1, epochs + 1), epochs + 1]
        for point in points:
            expected = rows.loc[point.step if point.step <= epochs else trial.selected_epoch,
                                "val_mean_iou"]
            assert point.value == pytest.approx(expected, abs=1e-12), point.step


def test_the_model_is_named_by_its_configuration_and_carries_its_metrics(small_sweep, tables):
    client = MlflowClient(small_sweep.tracking_uri)
    for trial in tables["trials"].itertuples():
        outputs = client.get_run(trial.mlflow_run_id).outputs.model_outputs
        assert len(outputs) == 1 and outputs[0].step == trial.selected_epoch
        model = client.get_logged_model(outputs[0].model_id)
        # SMALL_SPEC: testnet, lr 1e-3, batch size 8, adam, no weight decay, no augmentation.
        assert model.name == f"testnet-{trial.loss}-lr1e-3-bs8"
        linked = {m.key: m.value for m in model.metrics if m.step == trial.epochs_done + 1}
        assert linked["val_mean_iou"] == pytest.approx(trial.val_mean_iou, abs=1e-12)
        assert linked["test_mean_iou"] == pytest.approx(trial.test_mean_iou)
    # runs:/RUN_ID/model still loads (the run's model/ folder holds an MLmodel), and so
    # does the LoggedModel itself, once the zoo's losses are registered (``import zoo``, as
    # the README says; this file alone does not import it otherwise).
    import zoo  # noqa: F401

    mlflow.set_tracking_uri(small_sweep.tracking_uri)
    run_id = tables["trials"]["mlflow_run_id"].iloc[0]
    x = np.zeros((2, 16, 16, 3), np.float32)
    by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(x)
    by_id = mlflow.pyfunc.load_model(f"models:/{outputs[0].model_id}")
    assert np.asarray(by_run).shape == (2, 16, 16, 3)
    assert np.allclose(np.asarray(by_run).sum(-1), 1.0, atol=1e-4)
    assert by_id.metadata.model_id is not None


def test_the_run_has_its_dataset_as_input(small_sweep, tables):
    client = MlflowClient(small_sweep.tracking_uri)
    for trial in tables["trials"].itertuples():
        inputs = client.get_run(trial.mlflow_run_id).inputs.dataset_inputs
        assert len(inputs) == 1
        dataset = inputs[0].dataset
        assert dataset.name == "shapes"
        options = {"height": 16, "width": 16, "channels": 3, "classes": 3, "train": 16,
                   "val": 8}
        profile = json.loads(dataset.profile)
        assert (profile["train"], profile["val"], profile["classes"]) == (16, 8, 3)
        assert profile["input_shape"] == [16, 16, 3]
        assert [t.value for t in inputs[0].tags if t.key == "mlflow.data.context"] == [
            "training"]
        # The digest is the data cache's key: name, options (defaults filled in), seed.
        assert len(dataset.digest) == 16 and dataset.digest != dataset_key("shapes", 0, options)
        assert dataset.digest == dataset_key("shapes", 0, {**_shapes_defaults(), **options})


def _shapes_defaults() -> dict:
    from bench.common.zoo_catalog import zoo_catalog

    return zoo_catalog()["datasets"]["shapes"]["options"]


def test_the_parent_run_carries_the_leaderboard_table(small_sweep, tables):
    client = MlflowClient(small_sweep.tracking_uri)
    trial_run = client.get_run(tables["trials"]["mlflow_run_id"].iloc[0])
    parent = trial_run.data.tags["mlflow.parentRunId"]
    logged = client.load_table(trial_run.info.experiment_id, "leaderboard.json",
                               run_ids=[parent])
    board = tables["leaderboard"]
    assert len(logged) == len(board)
    merged = logged.merge(board, on=["model", "loss"], suffixes=("_mlflow", ""))
    assert list(merged["rank_mlflow"]) == list(merged["rank"])
    assert np.allclose(merged["score_mlflow"].astype(float), merged["score"].astype(float))
    tag = json.loads(client.get_run(parent).data.tags["mlflow.loggedArtifacts"])
    assert {"path": "leaderboard.json", "type": "table"} in tag


@pytest.mark.parametrize(("config", "name"), [
    ({"model": "testnet", "loss": "dice", "lr": 1e-3, "batch_size": 8}, "testnet-dice-lr1e-3-bs8"),
    ({"model": "unet", "loss": "dice+0.5*focal", "lr": 3.2e-4, "batch_size": 16,
      "optimizer": "sgd", "weight_decay": 1e-4, "augment": True, "dataset": "shapes"},
     "shapes-unet-dice+0p5*focal-lr32e-5-bs16-sgd-wd1e-4-aug"),
    ({"model": "a/b:c", "loss": "ce", "lr": 0.01, "batch_size": 4, "weight_decay": 0.0},
     "a_b_c-ce-lr1e-2-bs4"),
])
def test_logged_model_names(config, name):
    assert logged_model_name(config) == name
    assert not set(name) & set("/:.%\"'")  # what MLflow refuses in a LoggedModel's name


@pytest.mark.parametrize(("value", "text"), [
    (1e-3, "1e-3"), (3.2e-4, "32e-5"), (0.0123, "123e-4"), (1.0, "1e0"), (250.0, "25e1")])
def test_compact_numbers(value, text):
    assert _compact(value) == text


def test_epoch_metrics_carry_the_tables_names():
    row = {"epoch": 3, "train_loss": 0.5, "mean_iou": 0.25, "iou_class_1": 0.5,
           "val_mean_iou": 0.2, "epoch_seconds": 1.5, "epoch_started_at": 1.0e9,
           "val_dice_coef": float("nan")}
    assert mlflow_epoch_metrics(row) == {"train_loss": 0.5,
                                         "train_mean_iou": 0.25, "train_iou_class_1": 0.5,
                                         "val_mean_iou": 0.2, "epoch_seconds": 1.5}
