"""A trial's end: test the selected (best validation epoch's) weights, once, on the test split.

Called from the last epoch's bookkeeping when the trial ends by itself (completed,
patience, time budget), except in a protocol's ``tune`` stage, whose trials are never
tested (``untested_end``): it loads the best epoch's weights, evaluates them on the test
split (``test_<name>`` for every ``val_<name>``), scores each test case
(``bench.run.trial.cases``), and logs these weights to MLflow as the trial's model with a
predictions picture. A trial a scheduler stops never gets here: it was not selected.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.names import CASES_FILE, PREDICTIONS_PNG
from bench.run.trial.cases import case_frame, case_means, predict_cases, write_cases
from bench.run.trial.cost import forward_function
from bench.run.trial.cost_cache import trial_cost_later
from bench.run.trial.rollout import rollout_metrics
from bench.run.trial.state import TrialState, mlflow_epoch_metrics


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
    data, ``bench.run.trial.rollout``), the cost columns (``bench.run.trial.cost``: ``flops``,
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
    # One forward function, traced once, predicts the cases and the picture and is timed
    # for the cost (Keras' predict would trace again for each new batch shape).
    forward = forward_or_none(model, tuple(trial.info.input_shape))
    predict = _predictor(model, forward)
    cases = None
    if trial.info.task == "segmentation":  # next-frame targets have no classes
        truth, pred = predict_cases(predict, trial.test_ds)
        cases = case_frame(truth, pred, trial.info.n_classes, list(trial.info.class_names),
                           trial.context.nsd_tolerance)
        write_cases(cases, folder / CASES_FILE)
    metrics.update(case_means(cases))
    # Next frames: PSNR n steps ahead, predictions fed back (test_psnr_step_k).
    model_name, model_options = trial.context.models[trial.config["model"]]
    metrics.update(rollout_metrics(model, model_name, model_options, trial.info, trial.test_ds))
    # Once per architecture x input: measured here, read, or (another trial measuring it
    # now) read after this trial has logged its model meanwhile.
    cost = trial_cost_later(trial, model, forward)
    metrics["selected_epoch"] = selected
    model_id = log_selected_model(trial, model, folder, selected, predict)
    metrics.update(cost())
    log_final_metrics(trial, metrics, selected, model_id)
    metrics["final_seconds"] = time.perf_counter() - start
    return metrics


def end_of_trial(trial: TrialState, model: Any, folder: Path) -> dict[str, Any]:
    """The result entries of a trial's own end (``TrialState.finish_epoch``'s ``end``): the
    selected weights tested (``test_selected``), or in a protocol's search stage only the
    selected epoch (``untested_end``)."""
    return test_selected(trial, model, folder) if trial.tested else untested_end(trial)


def untested_end(trial: TrialState) -> dict[str, Any]:
    """The end of a trial that is not tested (a protocol's ``tune`` stage): only its
    ``selected_epoch``, the best validation epoch (the last one without a finite metric).

    Nothing is evaluated on the test split, no case is scored and no model is logged:
    selection reads validation only, and the search stage's trials end sooner. The
    selected epoch's metrics still become the MLflow run's final values, as a tested
    trial's do (``log_final_metrics``), so MLflow agrees with ``trials.parquet``.
    """
    best = trial.best()
    selected = int(best["epoch"] if best else trial.history[-1]["epoch"])
    log_final_metrics(trial, {"selected_epoch": float(selected)}, selected, None)
    return {"selected_epoch": selected}




def log_final_metrics(trial: TrialState, tested: dict[str, Any], selected: int,
                      model_id: str | None) -> None:
    """Log the selected epoch's metrics again, with ``tested``, as the run's final values.

    MLflow shows a run's latest value of each key (highest step): after the per-epoch
    steps 1..E that is epoch E's, not the selected epoch's that ``trials.parquet`` and the
    leaderboard hold. So the selected epoch's training and validation metrics, the test
    metrics and ``selected_epoch`` are logged at step E + 1, as MLflow's Keras autologging
    logs the weights EarlyStopping restored; linked to the logged model (``model_id``), so
    its page and the Models tab show them too.
    """
    assert trial.run is not None
    row = next(r for r in trial.history if int(r["epoch"]) == selected)
    final = {k: v for k, v in mlflow_epoch_metrics(row).items()
             if k.startswith(("train_", "val_"))}
    final.update({k: float(v) for k, v in tested.items() if math.isfinite(v)})
    trial.run.log_epoch(final, int(trial.history[-1]["epoch"]) + 1, model_id=model_id)


def logged_model_name(config: dict[str, Any]) -> str:
    """The trial's configuration as an MLflow LoggedModel name: dataset (in a sweep of
    several), model and loss labels, learning rate, batch size, and the optimizer, weight
    decay and augmentation where they are not the defaults; e.g.
    ``testnet-dice-lr1e-3-bs8``. Seeds of one configuration share it. Characters MLflow
    refuses in the name (``/ : . % " '``) become ``_`` (a decimal point ``p``)."""
    parts = [config["dataset"]] if config.get("dataset") else []
    parts += [config["model"], config["loss"], f"lr{_compact(float(config['lr']))}",
              f"bs{int(config['batch_size'])}"]
    if config.get("optimizer", "adam") != "adam":
        parts.append(str(config["optimizer"]))
    if float(config.get("weight_decay") or 0.0):
        parts.append(f"wd{_compact(float(config['weight_decay']))}")
    if config.get("augment"):
        parts.append("aug")
    name = "-".join(str(part) for part in parts).replace(".", "p")
    return "".join("_" if c in "/:%\"'" else c for c in name)


def _compact(value: float) -> str:
    """``value`` in 3 significant digits without a decimal point: 0.001 -> ``1e-3``,
    0.00032 -> ``32e-5``."""
    mantissa, exponent = f"{value:.2e}".split("e")
    digits = mantissa.replace(".", "").replace("-", "")
    power = int(exponent) - 2
    while digits.endswith("0") and len(digits) > 1:
        digits, power = digits[:-1], power + 1
    return f"{'-' if value < 0 else ''}{digits}e{power}"


def forward_or_none(model: Any, input_shape: tuple[int, ...]) -> Any:
    """``bench.run.trial.cost.forward_function``, or None when the model cannot be traced so."""
    try:
        return forward_function(model, input_shape)
    except Exception:  # noqa: BLE001  (Keras' own predict is the fallback)
        return None


def _predictor(model: Any, forward: Any) -> Callable[[Any], np.ndarray]:
    """``x -> outputs`` as NumPy: ``forward`` when there is one, else Keras' predict."""
    if forward is None:
        return lambda x: np.asarray(model.predict_on_batch(x))

    import tensorflow as tf

    def predict(x: Any) -> np.ndarray:
        try:
            return np.asarray(forward(tf.cast(x, tf.float32)))
        except (tf.errors.OpError, ValueError, TypeError):  # a shape it was not traced for
            return np.asarray(model.predict_on_batch(x))

    return predict


def log_selected_model(trial: TrialState, model: Any, folder: Path, step: int = 0,
                       predict: Callable[[Any], np.ndarray] | None = None) -> str | None:
    """Log ``model`` (the selected weights) and its predictions picture to the MLflow run;
    the LoggedModel's id (None when the tracking server was away).

    The model is saved once and logged twice: as an MLflow 3 LoggedModel with the Keras
    flavour, named by the trial's configuration (``logged_model_name``; ``models:/ID``
    loads it; logged at ``step``, the selected epoch), and, the same file, as the run's
    folder ``model/``: ``model/model.keras`` (``keras.saving.load_model`` reads it after
    ``import zoo``) beside an ``MLmodel`` that points at it, so
    ``mlflow.pyfunc.load_model("runs:/RUN_ID/model")`` still predicts. ``predict`` makes
    the picture's predictions (default: Keras' predict). With the spec's ``log_models:
    none``, only the picture is logged (None).
    """
    assert trial.run is not None
    png = None
    if trial.val_sample is not None:  # the records keep the picture whatever MLflow does
        from bench.results.predictions import save_predictions_png

        x, y = trial.val_sample
        y_pred = predict(x) if predict is not None else model.predict(x, verbose=0)
        png = save_predictions_png(x, y, y_pred, trial.info.task, folder / PREDICTIONS_PNG)
    if not trial.run.online:  # the tracking server was away: the run is told it lacks them
        trial.run.missed_artifacts()
        return None
    model_id = None
    try:
        if trial.context.log_models != "none":  # the spec's choice: none logs the picture only
            model_id = _log_model_files(trial, model, step)
        if png is not None:
            trial.run.log_artifact(png)
    except Exception:  # noqa: BLE001  (the server went away: training results still count)
        trial.run.missed_artifacts()
        return None
    return model_id


def _log_model_files(trial: TrialState, model: Any, step: int) -> str:
    """``log_selected_model``'s model: the LoggedModel and the run's ``model/`` folder, one
    save; the LoggedModel's id."""
    assert trial.run is not None
    with tempfile.TemporaryDirectory(prefix="zoobench-final-") as scratch:
        run_folder = Path(scratch) / "model"
        run_folder.mkdir()
        model_path = run_folder / "model.keras"
        info = log_keras_model(model, step, keep=model_path,
                               name=logged_model_name(trial.config))
        if not model_path.exists():  # MLflow saved it elsewhere than we know
            model.save(model_path)
        write_run_mlmodel(info.model_id, run_folder)
        for path in (model_path, run_folder / "MLmodel"):
            trial.run.log_artifact(path, "model")
    return str(info.model_id)


def write_run_mlmodel(model_id: str, folder: Path) -> None:
    """Write into ``folder`` (which holds ``model.keras``) the LoggedModel ``model_id``'s
    ``MLmodel``, pointed at that file: MLflow 3 finds ``runs:/RUN_ID/model`` among the run's
    LoggedModels by name first, and, named by configuration, none is called ``model``, so
    the run's own folder ``model/`` answers (the weights are not stored a third time)."""
    from mlflow.models import Model

    conf = Model.load(f"models:/{model_id}")
    conf.flavors["keras"]["data"] = "model"  # mlflow.keras loads <folder>/model.keras
    conf.flavors.get("python_function", {}).pop("data", None)  # pyfunc: the folder itself
    conf.save(str(folder / "MLmodel"))


def model_signature(model: Any) -> Any:
    """The MLflow signature of a Keras model: float32 tensors, the batch axis free (-1)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(shape: tuple[Any, ...]) -> Any:
        return Schema([TensorSpec(np.dtype(np.float32), (-1, *shape[1:]))])

    return ModelSignature(inputs=spec(tuple(model.input_shape)),
                          outputs=spec(tuple(model.output_shape)))


class _KerasFlavourKeepingFile:
    """``mlflow.keras`` as ``Model.log`` uses a flavour, copying the ``.keras`` file it saves
    to ``keep`` (when given): the run's ``model/model.keras`` artifact then needs no second
    save."""

    __name__ = "mlflow.keras"

    def __init__(self, keep: Path | None) -> None:
        self.keep = keep

    def save_model(self, path: str, **kwargs: Any) -> None:
        import mlflow.keras

        with _requirements_unchecked():
            mlflow.keras.save_model(path=path, **kwargs)
        saved = sorted(Path(path).rglob("*.keras"))
        if self.keep is not None and len(saved) == 1:
            shutil.copyfile(saved[0], self.keep)


@contextlib.contextmanager
def _requirements_unchecked() -> Iterator[None]:
    """Within: MLflow does not check a model's pip requirements against the installed
    distributions. ``log_keras_model`` gives the versions this process has loaded, so the
    check cannot find a mismatch; it maps every installed distribution to its modules
    first (``packages_distributions``, a stat of each file every distribution installed:
    1.4 s per worker on 2 cores, more on a cluster image), at every worker's first trial
    end. Without MLflow's function (another version), nothing changes."""
    import mlflow.utils.environment as environment

    name = "warn_dependency_requirement_mismatches"
    check = getattr(environment, name, None)
    if check is None:
        yield
        return
    setattr(environment, name, lambda requirements: None)
    try:
        yield
    finally:
        setattr(environment, name, check)


def log_keras_model(model: Any, step: int = 0, keep: Path | None = None,
                    name: str = "model") -> Any:
    """Log ``model`` to the active MLflow run as the LoggedModel ``name`` (Keras flavour),
    at ``step``; with ``keep``, the ``.keras`` file it saved is copied there too. Returns
    MLflow's ``ModelInfo`` (``model_id``).

    No input example: MLflow 3.17's Keras flavour writes it before creating the model's
    folder (FileNotFoundError); the signature says the shapes instead. The pip
    requirements are given, because inferring them loads the model in a subprocess
    (~50 s per trial on 2 cores); they are the versions this trial ran with.
    """
    import keras
    import tensorflow as tf
    from mlflow.models import Model

    # What mlflow.keras.log_model does, with the flavour that can keep the saved file.
    return Model.log(artifact_path=None, flavor=_KerasFlavourKeepingFile(keep), name=name,
                     model=model, signature=model_signature(model), step=step,
                     pip_requirements=[f"keras=={keras.__version__}",
                                       f"tensorflow=={tf.__version__}"])
