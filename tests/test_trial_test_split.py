"""A trial ends by testing its selected weights: label maps and per-case rows, best-weight
copies, weighted training metrics, the records' test columns, the MLflow Model, and one
real sweep on ``digits`` (no temporary folders left, selected epoch = best epoch)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from bench.results import records
from bench.run.checkpoints import assign_model_arrays, load_arrays, model_arrays, npz_bytes
from bench.run.trial.cases import case_frame, case_means, label_maps
from bench.run.trial.final import log_keras_model
from bench.run.trial.run import compile_model
from bench.spec.model import parse_spec
from tests.conftest import SMALL_SPEC


# ---- label maps and per-case rows
def test_label_maps_argmax_threshold_and_frames():
    y = np.zeros((1, 2, 2, 3), np.float32)
    y[0, 0, 0, 2] = y[0, 0, 1, 1] = y[0, 1, 0, 0] = y[0, 1, 1, 2] = 1.0
    assert label_maps(y).tolist() == [[[2, 1], [0, 2]]]
    binary = np.array([[[[0.49], [0.5]], [[0.9], [0.1]]]], np.float32)
    assert label_maps(binary).tolist() == [[[0, 1], [1, 0]]]
    sequences = np.arange(2 * 3 * 2 * 2 * 1, dtype=np.float32).reshape(2, 3, 2, 2, 1) / 24
    maps = label_maps(sequences)
    assert maps.shape == (6, 2, 2)  # N*T frames, frame t of sequence n at n*T + t
    assert np.array_equal(maps[4], (sequences[1, 1, ..., 0] >= 0.5).astype(int))


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[labels]


def test_case_frame_rows_per_case_and_class():
    truth = np.zeros((2, 4, 4), int)
    truth[0, :2, :2] = 1  # case 0: a 2x2 square of class 1, predicted exactly
    truth[1, :2, :2] = 1  # case 1: the same square, predicted shifted by 2 columns
    pred = truth.copy()
    pred[1] = 0
    pred[1, :2, 2:] = 1
    frame = case_frame(_one_hot(truth, 3), _one_hot(pred, 3), 3,
                       ["background", "square", "circle"], tolerance=1.0)
    assert list(frame.columns) == ["case", "class_index", "class_name", "dice", "iou", "nsd",
                                   "hd95"]
    assert len(frame) == 2 * 3
    row = frame.set_index(["case", "class_index"])
    assert row.loc[(0, 1), "dice"] == pytest.approx(1.0)
    assert row.loc[(0, 1), "class_name"] == "square"
    assert row.loc[(1, 1), "dice"] == pytest.approx(0.0)
    assert row.loc[(1, 0), "iou"] == pytest.approx(8 / 16)  # background: 8 shared of 16
    assert math.isnan(row.loc[(0, 2), "dice"])  # absent from truth and prediction
    # Foreground only (issue 25.8), worked by hand: class 1 scores dice 1 (case 0) and 0
    # (case 1); class 2 is absent from both cases (NaN, left out); the background's
    # dice 1 and 16/24 and IoU 1 and 8/16 are left out.
    means = case_means(frame)
    assert set(means) == {"test_case_dice_fg", "test_case_iou_fg",
                          "test_case_nsd_fg", "test_case_hd95_fg"}
    assert means["test_case_dice_fg"] == pytest.approx((1.0 + 0.0) / 2)
    assert means["test_case_iou_fg"] == pytest.approx((1.0 + 0.0) / 2)
    assert frame["dice"].dropna().mean() > 0.5  # with the background it would be higher
    assert math.isnan(case_means(None)["test_case_iou_fg"])


def test_case_means_leave_out_class_0_and_nan_rows():
    frame = pd.DataFrame({"case": [0, 0, 0, 1, 1, 1], "class_index": [0, 1, 2, 0, 1, 2],
                          "class_name": ["bg", "a", "b"] * 2,
                          "dice": [0.99, 0.2, np.nan, 0.97, 0.5, 0.8],
                          "iou": [0.98, 0.1, np.nan, 0.9, 0.4, 0.6],
                          "nsd": [1.0, 0.3, np.nan, 1.0, 0.7, 0.9],
                          "hd95": [0.0, 4.0, np.nan, 1.0, 2.0, 3.0]})
    means = case_means(frame)
    assert means["test_case_dice_fg"] == pytest.approx((0.2 + 0.5 + 0.8) / 3)
    assert means["test_case_iou_fg"] == pytest.approx((0.1 + 0.4 + 0.6) / 3)
    assert means["test_case_nsd_fg"] == pytest.approx((0.3 + 0.7 + 0.9) / 3)
    assert means["test_case_hd95_fg"] == pytest.approx((4.0 + 2.0 + 3.0) / 3)
    # K == 1: the frame holds the foreground (class_index 1) only; all of it counts.
    binary = frame[frame["class_index"] == 1]
    assert case_means(binary)["test_case_dice_fg"] == pytest.approx(0.35)
    only_background = frame[frame["class_index"] == 0]
    assert math.isnan(case_means(only_background)["test_case_dice_fg"])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(2, 5), st.data())
def test_case_means_ignore_every_background_value(cases, k, data):
    """Property: the fg means are the mean of the non-NaN rows of classes 1..K-1, whatever
    the background rows hold (here: replaced by anything, NaN included)."""
    n = cases * k
    value = st.one_of(st.floats(0, 1), st.just(math.nan))
    scores = {m: data.draw(st.lists(value, min_size=n, max_size=n)) for m in
              ("dice", "iou", "nsd", "hd95")}
    frame = pd.DataFrame({"case": np.repeat(np.arange(cases), k),
                          "class_index": np.tile(np.arange(k), cases),
                          "class_name": ["c"] * n, **scores})
    means = case_means(frame)
    background = frame["class_index"] == 0
    other = frame.copy()
    other.loc[background, ["dice", "iou", "nsd", "hd95"]] = data.draw(value)
    again = case_means(other)
    for metric in ("dice", "iou", "nsd", "hd95"):
        fg = np.array([v for v, c in zip(scores[metric], frame["class_index"], strict=True)
                       if c != 0 and not math.isnan(v)])
        got = means[f"test_case_{metric}_fg"]
        if fg.size:
            assert got == pytest.approx(fg.sum() / fg.size)
        else:
            assert math.isnan(got)
        assert (math.isnan(got) and math.isnan(again[f"test_case_{metric}_fg"])) or \
            got == again[f"test_case_{metric}_fg"]


def test_case_frame_binary_scores_the_foreground_only():
    truth = np.zeros((1, 4, 4, 1), np.float32)
    truth[0, 1, 1] = 1.0
    frame = case_frame(truth, truth, 1, ["foreground"], tolerance=1.0)
    assert frame[["class_index", "class_name"]].values.tolist() == [[1, "foreground"]]
    assert frame["dice"].tolist() == [pytest.approx(1.0)]


# ---- best weights
def test_best_weights_round_trip_through_npz(tmp_path):
    model, _, _ = zoo.get_model("testnet", 16, 16, 3, 3)
    kept = model_arrays(model)
    path = tmp_path / "best.npz"
    path.write_bytes(npz_bytes(kept))
    for variable in model.variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    assign_model_arrays(model, load_arrays(path), "best.npz")
    assert all(np.array_equal(v.numpy(), a) for v, a in zip(model.variables, kept, strict=True))
    with pytest.raises(ValueError, match="best.npz: holds 1 arrays"):
        assign_model_arrays(model, kept[:1], "best.npz")


# ---- issue 11 item 8: training metrics honour sample weights
def test_training_metrics_ignore_zero_weight_samples():
    """Unlabelled samples (weight 0, all-zero y) must not count as background in the IoU."""
    keras.utils.set_random_seed(0)
    model, _, _ = zoo.get_model("testnet", 16, 16, 3, 3)
    compile_model(model, optimizer=keras.optimizers.Adam(1e-3),
                  loss=zoo.get_loss("categorical_crossentropy"), n_classes=3,
                  task="segmentation")
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 3), dtype=np.float32)
    y = _one_hot(rng.integers(0, 3, (8, 16, 16)), 3)
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], np.float32)
    y[weights == 0] = 0.0  # what the loader gives unlabelled samples
    weighted = model.evaluate(x, y, sample_weight=weights, batch_size=8, verbose=0,
                              return_dict=True)
    labelled = model.evaluate(x[:4], y[:4], batch_size=4, verbose=0, return_dict=True)
    for name in ("mean_iou", "dice_coef", "pixel_accuracy"):
        assert weighted[name] == pytest.approx(labelled[name], abs=1e-5), name


# ---- records
def _outcome(trial_id: str, metrics: dict, cases: pd.DataFrame | None = None):
    history = [{"epoch": 1, "val_loss": 1.0, "val_mean_iou": 0.5},
               {"epoch": 2, "val_loss": 0.9, "val_mean_iou": 0.4}]
    config = {"model": "testnet", "loss": "dice", "seed": 0, "lr": 1e-3, "batch_size": 8}
    return records.TrialOutcome(trial_id, config, metrics, history, None, None, cases)


def test_records_carry_test_columns_and_nan_for_scheduler_stops(tmp_path):
    spec = parse_spec(SMALL_SPEC.replace("epochs: 2", "epochs: 3") + "scheduler: asha\n")
    cases = pd.DataFrame({"case": [0, 0], "class_index": [0, 1],
                          "class_name": ["background", "square"], "dice": [0.9, np.nan],
                          "iou": [0.8, np.nan], "nsd": [1.0, np.nan], "hd95": [0.0, np.nan]})
    tested = _outcome("t1", {"end_reason": "patience", "epochs_done": 2, "selected_epoch": 1,
                             "test_loss": 0.95, "test_mean_iou": 0.45,
                             "test_case_dice_fg": 0.9, "final_seconds": 1.5}, cases)
    stopped = _outcome("t2", {"epochs_done": 2})  # ASHA stopped it: no end reason, no test
    trials, _ = records.trial_rows([tested, stopped], spec, versions={}, run_ids={},
                                   experiment_id="0", png_paths={})
    first, second = trials.iloc[0], trials.iloc[1]
    assert list(trials["stage"]) == ["final", "final"]
    assert (first["selected_epoch"], first["best_epoch"]) == (1, 1)
    assert first["test_mean_iou"] == 0.45 and first["test_loss"] == 0.95
    assert math.isnan(first["test_case_iou_fg"])  # not in the result: NaN, column exists
    assert second["end_reason"] == "scheduler"
    for column in ("test_loss", "test_mean_iou", "test_dice_coef", "test_case_dice_fg"):
        assert math.isnan(second[column]), column
    assert pd.isna(second["selected_epoch"])
    rows = records.case_rows([tested, stopped], spec)
    assert list(rows.columns) == ["trial_id", "model", "loss", "dataset", "seed", "config_id",
                                  "stage", "case", "class_index", "class_name", "dice", "iou",
                                  "nsd", "hd95"]
    assert list(rows["stage"]) == ["final", "final"]
    assert rows["config_id"].tolist() == [trials["config_id"].iloc[0]] * 2
    assert list(rows["trial_id"]) == ["t1", "t1"] and list(rows["dataset"]) == ["shapes"] * 2
    assert list(records.case_rows([stopped], spec).columns) == list(rows.columns)
    # A sweep with no tested trial has the same column types: the tables read back as one.
    untested, _ = records.trial_rows([stopped], spec, versions={}, run_ids={},
                                     experiment_id="0", png_paths={})
    records.write_table(tmp_path, "trials", "a", untested)  # read first: its schema leads
    records.write_table(tmp_path, "trials", "b", trials)
    records.write_table(tmp_path, "cases", "a", records.case_rows([stopped], spec))
    records.write_table(tmp_path, "cases", "b", rows)
    both = pd.read_parquet(tmp_path / "trials.parquet")
    assert len(both) == 3 and both["test_mean_iou"].notna().sum() == 1
    assert len(pd.read_parquet(tmp_path / "cases.parquet")) == 2


# ---- MLflow Model
def test_selected_model_is_an_mlflow_model_pyfunc_predicts(tmp_path):
    model, _, _ = zoo.get_model("testnet", 16, 16, 3, 3)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Its own artifact folder: the default experiment's is ./mlruns in the working directory.
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        log_keras_model(model, step=2)
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    assert np.allclose(loaded.predict(x), model.predict(x, verbose=0), atol=1e-5)
    inputs = loaded.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, 16, 16, 3)


def test_logging_a_model_skips_the_scan_of_installed_distributions(tmp_path):
    """A worker's first model: MLflow does not map every installed distribution to its
    modules (1.4 s) to check requirements that are the loaded versions; the model still
    names them, and MLflow's check is back in place afterwards. In a fresh process: the
    map is kept for the process once made."""
    code = f"""
import json
import keras, mlflow, tensorflow as tf
import mlflow.utils.environment as environment
import mlflow.utils.requirements_utils as requirements
from bench.run.trial.final import log_keras_model
check = environment.warn_dependency_requirement_mismatches
mlflow.set_tracking_uri("sqlite:///{tmp_path / 'mlflow.db'}")
experiment = mlflow.create_experiment("x", artifact_location="{(tmp_path / 'art').as_uri()}")
inputs = keras.Input((8, 8, 3))
model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
with mlflow.start_run(experiment_id=experiment):
    info = log_keras_model(model)
folder = mlflow.get_logged_model(info.model_id).artifact_location
path = mlflow.artifacts.download_artifacts(artifact_uri=folder + "/requirements.txt")
print(json.dumps({{
    "scanned": requirements._MODULES_TO_PACKAGES is not None,
    "check_back": environment.warn_dependency_requirement_mismatches is check,
    "written": sorted(open(path).read().split()),
    "loaded": sorted([f"keras=={{keras.__version__}}", f"mlflow=={{mlflow.__version__}}",
                      f"tensorflow=={{tf.__version__}}"])}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert not seen["scanned"] and seen["check_back"]
    assert seen["written"] == seen["loaded"]


# ---- one real sweep on another dataset, in its own process and temporary folder
DIGITS_SPEC = """\
name: digits_tested
dataset: {name: digits, height: 16, width: 16, digit_size: 8, train: 16, val: 8, test: 8}
models: [testnet]
losses: [dice]
seeds: [0]
epochs: 3
params: {batch_size: 8, lr: 1.0e-2}
metric: val_mean_iou
mode: max
"""


@pytest.fixture(scope="module")
def digits_sweep(tmp_path_factory):
    """``zoobench sweep`` in a subprocess whose TMPDIR is a fresh, short folder (Ray's
    session and every trial's temporary folders go there): (results, tmpdir, exit code)."""
    root = tmp_path_factory.mktemp("digits_sweep")
    (root / "digits.yaml").write_text(DIGITS_SPEC)
    tmpdir = Path(tempfile.mkdtemp(prefix="zbt", dir="/tmp"))  # short: Ray's socket paths
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    before = sorted(p.name for p in tmpdir.glob("zoobench-*"))
    process = subprocess.run(
        [sys.executable, "-m", "bench", "sweep", str(root / "digits.yaml"),
         "--results", str(root / "results")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    yield root / "results", tmpdir, before, process
    import shutil

    shutil.rmtree(tmpdir, ignore_errors=True)


def test_sweep_leaves_no_temporary_folders(digits_sweep):
    _, tmpdir, before, process = digits_sweep
    assert process.returncode == 0, process.stderr[-3000:]
    assert before == []
    assert (tmpdir / "ray").is_dir()  # the sweep's processes did use this TMPDIR
    assert sorted(p.name for p in tmpdir.glob("zoobench-*")) == []


def test_sweep_tests_the_best_validation_epoch(digits_sweep):
    results, _, _, process = digits_sweep
    assert process.returncode == 0, process.stderr[-3000:]
    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet")
    assert len(trials) == 1 and trials["status"].tolist() == ["TERMINATED"]
    trial = trials.iloc[0]
    rows = history[history["trial_id"] == trial["trial_id"]].sort_values("epoch")
    best = int(rows.loc[rows["val_mean_iou"].idxmax(), "epoch"])  # the first of ties
    assert trial["selected_epoch"] == best == trial["best_epoch"]
    val_columns = [c for c in trials.columns if c.startswith("val_")]
    assert len(val_columns) >= 4 + 11  # loss, mean IoU, Dice, accuracy, IoU of each class
    for column in val_columns:
        assert math.isfinite(trial[f"test_{column[4:]}"]), column
    assert 0.0 <= trial["test_mean_iou"] <= 1.0 and trial["stage"] == "final"

    cases = pd.read_parquet(results / "cases.parquet")
    assert set(cases["trial_id"]) == {trial["trial_id"]}
    assert len(cases) == cases["case"].nunique() * 11
    assert sorted(cases["class_index"].unique()) == list(range(11))
    assert set(cases.loc[cases["class_index"] == 0, "class_name"]) == {"background"}
    foreground = cases[cases["class_index"] != 0]
    for metric in ("dice", "iou", "nsd", "hd95"):
        assert trial[f"test_case_{metric}_fg"] == pytest.approx(
            foreground[metric].mean()), metric
    assert set(cases["stage"]) == {"final"} and set(cases["config_id"]) == {trial["config_id"]}
    assert cases["dice"].dropna().between(0.0, 1.0).all()

    client = mlflow.MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    logged = client.get_metric_history(trial["mlflow_run_id"], "test_mean_iou")
    final_step = int(trial["epochs_done"]) + 1  # after the epochs, with the selected values
    assert [(m.step, m.value) for m in logged] == [
        (final_step, pytest.approx(trial["test_mean_iou"]))]
    mlflow.set_tracking_uri(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"runs:/{trial['mlflow_run_id']}/model")
    out = model.predict(np.zeros((1, 16, 16, 1), np.float32))
    assert out.shape == (1, 16, 16, 11) and np.allclose(out.sum(-1), 1.0, atol=1e-4)


def test_case_frame_leaves_ignored_truth_pixels_out():
    """An all-zero target row (a dataset's ``ignore_index``) counts in no per-case score:
    the class-1 object is predicted right where labelled, wrong on the ignored pixel."""
    from bench.run.trial.cases import case_frame

    truth = np.zeros((1, 4, 4, 2), np.float32)
    truth[0, :, :, 0] = 1.0
    truth[0, :2, :2] = [0.0, 1.0]  # a 2x2 object of class 1
    truth[0, 3, 3] = 0.0  # ignored pixel
    pred = truth.copy()
    pred[0, 3, 3] = [0.0, 1.0]  # predicted class 1 where the truth is ignored
    frame = case_frame(truth, pred, 2, ["background", "object"], 1.0).set_index("class_index")
    assert frame.loc[1, "dice"] == pytest.approx(1.0)  # 1 - 2*4/(4+5) if it counted
    assert frame.loc[0, "dice"] == pytest.approx(1.0)
