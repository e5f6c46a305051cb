"""The selection, end to end: a trial whose best validation epoch is not its last tests the
best epoch's weights, and the records say so.

One real one-trial sweep (local Ray, in this process, so it shares the session's Ray) with
a learning rate too high for ``testnet`` on ``shapes``: the validation IoU peaks at epoch 2
and falls at epoch 3 (seed 0, on CPU; the test asserts the best epoch is not the last, so a
change of data, model or numerics cannot make it pass on a trial whose best epoch is its
last), where ``patience: 1`` stops the trial (of 5 epochs): early stopping by patience, end
to end, too. The weights are then evaluated afresh, outside the code under test: the model
rebuilt from the zoo, the arrays read with NumPy from the trial's final checkpoint
(``best.npz``: the kept best weights; ``state.npz``: the last epoch's weights, then the
optimizer's), the splits loaded again, the mean IoU counted here from the predictions.
Validation identifies which epoch the weights are (they reproduce that epoch's
``val_mean_iou`` in ``history.parquet``); test then shows the trial's ``test_mean_iou`` is
theirs and not the last epoch's.
"""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest

import zoo
from bench.run.trial.resume_point import CHECKPOINTS_KEPT
from tests.conftest import run_cli

DATASET = {"height": 16, "width": 16, "channels": 3, "classes": 3, "train": 16, "val": 8}
SELECTION_SPEC = """\
name: selection
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8}
models: [testnet]
losses: [categorical_crossentropy]
seeds: [0]
epochs: 5
patience: 1
params: {batch_size: 8, lr: 5.0e-2}
metric: val_mean_iou
mode: max
resources: {cpu: 1, gpu: 0}
"""


def numpy_mean_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean IoU over the split's pixels, as ``zoo.metrics.MeanIoU`` defines it, in NumPy:
    one confusion matrix of argmax labels; all-zero target rows (ignored pixels) left out;
    the mean over classes present in truth or prediction."""
    k = truth.shape[-1]
    labelled = truth.sum(-1) > 0
    t = truth.argmax(-1)[labelled]
    p = pred.argmax(-1)[labelled]
    confusion = np.zeros((k, k))
    np.add.at(confusion, (t, p), 1.0)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present]))


def split_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A batched split's inputs and targets, concatenated."""
    xs, ys = [], []
    for batch in dataset:
        xs.append(np.asarray(batch[0]))
        ys.append(np.asarray(batch[1]))
    return np.concatenate(xs), np.concatenate(ys)


def _npz_arrays(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` arrays of a checkpoint ``.npz`` (``v00000``, ... in order)."""
    with np.load(path) as saved:
        names = sorted(saved.files)
        return [saved[name] for name in names[:count]]


@pytest.fixture(scope="module")
def selection(tmp_path_factory):
    """The sweep's trial row, its history, its final checkpoint folder and results."""
    root = tmp_path_factory.mktemp("selection")
    spec = root / "selection.yaml"
    spec.write_text(SELECTION_SPEC)
    results = root / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet").sort_values("epoch")
    assert len(trials) == 1
    trial = trials.iloc[0]
    checkpoints = sorted((results / "ray" / "selection").glob(
        f"{trial['trial_id']}/checkpoint_*"))
    # the last CHECKPOINTS_KEPT epochs' (bench.run.trial.resume_point), the last one last
    assert len(checkpoints) == CHECKPOINTS_KEPT, checkpoints
    return trial, history, checkpoints[-1], results


def test_trial_tests_the_best_epoch_weights_not_the_last(selection):
    trial, history, checkpoint, _ = selection
    val = dict(zip(history["epoch"].astype(int), history["val_mean_iou"], strict=True))
    best_epoch, last_epoch = int(trial["best_epoch"]), int(trial["epochs_done"])
    # The precondition: the best validation epoch is not the last, by a clear margin (here,
    # on CPU: 0.21 at epoch 2, 0.07 at epoch 3; the epochs are not pinned, the margins are).
    # Patience 1 stops it one epoch after its best, before the 5 epochs are done.
    assert best_epoch == max(val, key=lambda e: (val[e], -e)) == int(trial["selected_epoch"])
    assert (trial["end_reason"], last_epoch) == ("patience", best_epoch + 1), val
    assert last_epoch < int(trial["epochs"]) == 5
    assert history["epoch"].tolist() == list(range(1, last_epoch + 1))
    assert val[best_epoch] - val[last_epoch] > 0.02, val

    splits = zoo.datasets.load_splits("shapes", batch_size=8, seed=0, **DATASET)
    x_val, y_val = split_arrays(splits.val)
    x_test, y_test = split_arrays(splits.test)
    model, _, _ = zoo.get_model("testnet", 16, 16, 3, 3)
    n = len(model.variables)

    def evaluate(arrays: list[np.ndarray]) -> tuple[float, float]:
        for variable, value in zip(model.variables, arrays, strict=True):
            variable.assign(value)
        return (numpy_mean_iou(y_val, model.predict(x_val, verbose=0)),
                numpy_mean_iou(y_test, model.predict(x_test, verbose=0)))

    best_val, best_test = evaluate(_npz_arrays(checkpoint / "best.npz", n))
    last_val, last_test = evaluate(_npz_arrays(checkpoint / "state.npz", n))
    # Which epochs the two sets of weights are: each reproduces its epoch's validation IoU.
    assert best_val == pytest.approx(val[best_epoch], abs=1e-5)
    assert last_val == pytest.approx(val[last_epoch], abs=1e-5)
    # The trial's test IoU is the best epoch's weights', not the last epoch's.
    assert trial["test_mean_iou"] == pytest.approx(best_test, abs=1e-5)
    assert abs(best_test - last_test) > 1e-3, (best_test, last_test)
    assert trial["test_mean_iou"] != pytest.approx(last_test, abs=1e-5)
    assert trial["val_mean_iou"] == pytest.approx(val[best_epoch])


def test_logged_model_is_the_best_epoch_weights(selection):
    """The MLflow model of the trial holds the best epoch's weights too: its predictions
    score the trial's ``test_mean_iou``."""
    trial, _, checkpoint, results = selection
    mlflow.set_tracking_uri(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    path = mlflow.artifacts.download_artifacts(
        f"runs:/{trial['mlflow_run_id']}/model/model.keras")
    logged = keras.saving.load_model(path, safe_mode=True)
    best = _npz_arrays(checkpoint / "best.npz", len(logged.variables))
    for variable, value in zip(logged.variables, best, strict=True):
        np.testing.assert_array_equal(np.asarray(variable.numpy()), value)
    x_test, y_test = split_arrays(
        zoo.datasets.load_splits("shapes", batch_size=8, seed=0, **DATASET).test)
    assert numpy_mean_iou(y_test, logged.predict(x_test, verbose=0)) == pytest.approx(
        trial["test_mean_iou"], abs=1e-5)


# ---- early stopping by the time budget, end to end
BUDGET_SPEC = SELECTION_SPEC.replace("name: selection", "name: budget").replace(
    "lr: 5.0e-2", "lr: 1.0e-3").replace("patience: 1", "time_budget_s: 0.001")


def test_time_budget_stops_a_trial_after_the_epoch_that_spends_it(tmp_path):
    """``time_budget_s``: the first epoch spends 0.001 s of training time, so the trial of
    5 epochs ends after it as ``time_budget``, and is tested (its one epoch selected)."""
    spec = tmp_path / "budget.yaml"
    spec.write_text(BUDGET_SPEC)
    results = tmp_path / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    trial = pd.read_parquet(results / "trials.parquet").iloc[0]
    history = pd.read_parquet(results / "history.parquet")
    assert (trial["end_reason"], int(trial["epochs_done"]), int(trial["epochs"])) == (
        "time_budget", 1, 5)
    assert history["epoch"].tolist() == [1]
    assert int(trial["selected_epoch"]) == int(trial["best_epoch"]) == 1
    assert trial["train_seconds"] == pytest.approx(history["epoch_seconds"].sum())
    assert trial["train_seconds"] >= 0.001
    assert 0.0 <= trial["test_mean_iou"] <= 1.0
