"""A trial's end: test the selected (best validation epoch's) weights, once, on the test split.

Called from the last epoch's bookkeeping when the trial ends by itself (completed,
patience, time budget): it loads the best epoch's weights, evaluates them on the test
split (``test_<name>`` for every ``val_<name>``), scores each test case
(``bench.trial.cases``), and logs these weights to MLflow as the trial's model with a
predictions picture. A trial a scheduler stops never gets here: it was not selected.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.trial.cases import case_frame, case_means, predict_cases, write_cases
from bench.trial.context import CASES_FILE, PREDICTIONS_PNG
from bench.trial.cost import trial_cost
from bench.trial.rollout import rollout_metrics

if TYPE_CHECKING:
    from bench.trial.state import TrialState


def test_metrics(model: Any, test_ds: Any, val_names: list[str]) -> dict[str, float]:
    """``test_<name>`` for each ``val_<name>`` in ``val_names``: one pass over ``test_ds``.

    A name the evaluation does not return is NaN (the columns always pair up).
    """
    logs = model.evaluate(test_ds, return_dict=True, verbose=0)
    tested = {}
    for val_name in val_names:
        name = val_name.removeprefix("val_")
        value = logs.get(name)
        tested[f"test_{name}"] = float(value) if value is not None else math.nan
    return tested


def test_selected(trial: TrialState, model: Any, folder: Path) -> dict[str, Any]:
    """Test the trial's selected weights; its result entries, files in ``folder``.

    Returns ``test_*`` metrics, ``test_case_*_mean``, ``test_psnr_step_*`` (next-frame
    data, ``bench.trial.rollout``), the cost columns (``bench.trial.cost``: ``flops``,
    ``latency_ms``, ``throughput``, ``peak_memory_mb``, ...), ``selected_epoch`` and
    ``final_seconds`` (what this testing, measuring and logging took); writes
    ``cases.parquet`` (segmentation only) and ``predictions.png`` into ``folder`` (the
    final checkpoint, which carries them to the driver). ``model`` keeps the selected
    weights afterwards.
    """
    assert trial.run is not None
    start = time.perf_counter()
    selected = trial.select(model)
    val_names = [key for key in trial.history[-1] if key.startswith("val_")]
    metrics: dict[str, Any] = test_metrics(model, trial.test_ds, val_names)
    cases = None
    if trial.info.task == "segmentation":  # next-frame targets have no classes
        truth, pred = predict_cases(model, trial.test_ds)
        cases = case_frame(truth, pred, trial.info.n_classes, list(trial.info.class_names),
                           trial.context.nsd_tolerance)
        write_cases(cases, folder / CASES_FILE)
    metrics.update(case_means(cases))
    # Next frames: PSNR n steps ahead, predictions fed back (test_psnr_step_k).
    model_name, model_options = trial.context.models[trial.config["model"]]
    metrics.update(rollout_metrics(model, model_name, model_options, trial.info, trial.test_ds))
    metrics.update(trial_cost(model, tuple(trial.info.input_shape),
                              int(trial.config["batch_size"])))
    metrics["selected_epoch"] = selected
    trial.run.log_epoch({k: v for k, v in metrics.items() if math.isfinite(v)}, selected)
    log_selected_model(trial, model, folder, selected)
    metrics["final_seconds"] = time.perf_counter() - start
    return metrics


def log_selected_model(trial: TrialState, model: Any, folder: Path, step: int = 0) -> None:
    """Log ``model`` (the selected weights) and its predictions picture to the MLflow run.

    The model goes twice: as an MLflow Model with the Keras flavour named ``model``
    (``mlflow.pyfunc.load_model("runs:/RUN_ID/model")`` predicts; linked to the run's
    metrics at ``step``, the selected epoch) and as the run artifact ``model/model.keras``
    that ``keras.saving.load_model`` reads after ``import zoo``.
    """
    assert trial.run is not None
    png = None
    if trial.val_sample is not None:  # the records keep the picture whatever MLflow does
        from bench.predictions import save_predictions_png

        x, y = trial.val_sample
        y_pred = model.predict(x, verbose=0)
        png = save_predictions_png(x, y, y_pred, trial.info.task, folder / PREDICTIONS_PNG)
    if not trial.run.online:  # the tracking server was away: the run is told it lacks them
        trial.run.missed_artifacts()
        return
    try:
        log_keras_model(model, step)
        with tempfile.TemporaryDirectory(prefix="zoobench-final-") as scratch:
            model_path = Path(scratch) / "model.keras"
            model.save(model_path)
            trial.run.log_artifact(model_path, "model")
        if png is not None:
            trial.run.log_artifact(png)
    except Exception:  # noqa: BLE001  (the server went away: training results still count)
        trial.run.missed_artifacts()


def model_signature(model: Any) -> Any:
    """The MLflow signature of a Keras model: float32 tensors, the batch axis free (-1)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(shape: tuple[Any, ...]) -> Any:
        return Schema([TensorSpec(np.dtype(np.float32), (-1, *shape[1:]))])

    return ModelSignature(inputs=spec(tuple(model.input_shape)),
                          outputs=spec(tuple(model.output_shape)))


def log_keras_model(model: Any, step: int = 0) -> None:
    """Log ``model`` to the active MLflow run as the MLflow Model ``model`` (Keras flavour).

    No input example: MLflow 3.17's Keras flavour writes it before creating the model's
    folder (FileNotFoundError); the signature says the shapes instead. The pip
    requirements are given, because inferring them loads the model in a subprocess
    (~50 s per trial on 2 cores); they are the versions this trial ran with.
    """
    import keras
    import mlflow.keras
    import tensorflow as tf

    mlflow.keras.log_model(
        model, name="model", signature=model_signature(model), step=step,
        pip_requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"],
    )
