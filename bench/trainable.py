"""The Tune trainable: build the data and model from the zoo, fit, report every epoch.

Kept thin on purpose (Tune owns scheduling, retries and checkpoints):

1. set TensorFlow's threads to the trial's CPU share and GPU memory growth, before its
   first op (Ray does not isolate GPU memory; without growth a trial takes the card);
2. build dataset, model, loss, metrics and optimizer from the trial's config;
3. continue from ``tune.get_checkpoint()`` when there is one (weights, optimizer
   state, epoch, history and the MLflow run id);
4. ``model.fit`` with ``EpochReporter``, which after every epoch logs to MLflow in one
   batched call, writes a checkpoint and calls ``tune.report`` with
   ``epoch_seconds``, ``cpu_seconds`` and ``samples_per_second``.

A trial whose loss turns non-finite stops itself with reason ``nan`` (ASHA never
stops it: ``nan < cutoff`` is false); a trial that raises is marked ERROR by Tune.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.checkpoints import load_state, save_state
from bench.tracking import Tracking, TrialRun

CHECKPOINT_VARIABLES = "state.npz"  # model and optimizer variables (bench.checkpoints)
CHECKPOINT_STATE = "state.json"  # epoch, MLflow run id, history, elapsed seconds
PREDICTIONS_PNG = "predictions.png"
PREDICTION_SAMPLES = 4

# Why a trial ended, as reported in its last result (``end_reason``).
END_COMPLETED, END_PATIENCE, END_TIME_BUDGET, END_NAN = (
    "completed", "patience", "time_budget", "nan",
)


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep shares (passed with ``tune.with_parameters``).

    ``models`` and ``losses`` map the labels in a trial's config to registry names
    and options, e.g. ``"focal(gamma=2)" -> ("focal", {"gamma": 2})``.
    """

    sweep: str
    dataset: str
    dataset_options: dict[str, Any]
    models: dict[str, tuple[str, dict[str, Any]]]
    losses: dict[str, tuple[str, dict[str, Any]]]
    epochs: int
    metric: str
    mode: str
    patience: int | None
    time_budget_s: float | None
    mixed_precision: str
    xla: bool
    cpu: float
    gpu: float
    tracking: Tracking


def configure_tensorflow(cpu: float) -> None:
    """Threads = the trial's CPU share; GPU memory growth on. Call before TF's first op.

    Raises nothing when TensorFlow is already initialised (a reused worker keeps the
    settings of its first trial, made with the same resources).
    """
    import tensorflow as tf

    threads = max(1, int(cpu))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # already initialised in this process


def _optimizer(name: str, lr: float, weight_decay: float) -> Any:
    import keras

    cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
           "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(learning_rate=lr, weight_decay=weight_decay or None)


def _crop_targets(dataset: Any, out_h: int, out_w: int, height: int, width: int) -> Any:
    """Centre-crop targets to a model output smaller than its input (valid convolutions)."""
    if (out_h, out_w) == (height, width):
        return dataset
    top, left = (height - out_h) // 2, (width - out_w) // 2

    def crop(x: Any, y: Any, *weight: Any) -> Any:
        y = y[..., top:top + out_h, left:left + out_w, :]
        return (x, y, *weight)

    return dataset.map(crop)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if not _finite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def make_reporter(trial: TrialState) -> Any:
    """The ``keras.callbacks.Callback`` doing a trial's per-epoch bookkeeping."""
    import keras
    from ray import tune

    class _Reporter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()
            self._started_at = time.time()
            self._cpu_start = time.process_time()  # every thread of this trial's process
            self._train_end: float | None = None

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if trial.first_step_at is None:
                trial.first_step_at = time.time()

        def on_test_begin(self, logs: dict | None = None) -> None:
            if self._train_end is None:  # validation starts: training of the epoch is over
                self._train_end = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            end = time.perf_counter()
            train_seconds = (self._train_end or end) - self._start
            row = trial.epoch_row(epoch + 1, logs or {}, end - self._start, train_seconds)
            # CPU time against epoch_seconds shows how much of the CPU share the trial got.
            row["cpu_seconds"] = time.process_time() - self._cpu_start
            # Successive starts also time what the bookkeeping below costs (perf checks).
            row["epoch_started_at"] = self._started_at
            reason = trial.end_reason(row)
            if reason is not None:
                self.model.stop_training = True
            metrics, checkpoint_dir = trial.finish_epoch(row, reason, self.model)
            try:
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
            finally:  # Tune has copied it to the trial's storage
                shutil.rmtree(checkpoint_dir, ignore_errors=True)

    # Keras needs the class at fit time only; defining it here keeps ``import bench``
    # free of TensorFlow until a trial runs.
    return _Reporter()


class TrialState:
    """A trial's progress (history, best epoch, time, MLflow run): what its checkpoint holds."""

    def __init__(self, context: SweepContext, config: dict[str, Any]) -> None:
        from ray import tune

        self.context = context
        self.config = config
        # Set once the data and model are built.
        self.info: Any = None
        self.val_sample: tuple[Any, Any] | None = None
        self.n_params = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.run_id: str | None = None
        tune_context = tune.get_context()
        self.trial_id = tune_context.get_trial_id()
        self.trial_name = tune_context.get_trial_name()
        import ray

        self.node = socket.gethostname()
        self.node_ip = ray.util.get_node_ip_address()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.run: TrialRun | None = None
        self.started_at = time.time()  # this attempt's start (a resumed trial starts again)
        self.first_step_at: float | None = None

    # ---- checkpoints
    def restore_progress(self, checkpoint_dir: Path) -> int:
        """History, elapsed time and MLflow run id from a checkpoint; the epochs done."""
        state = json.loads((checkpoint_dir / CHECKPOINT_STATE).read_text())
        self.history = state["history"]
        self.train_seconds = state["train_seconds"]
        self.run_id = state["mlflow_run_id"]
        return int(state["epoch"])

    @staticmethod
    def restore_weights(checkpoint_dir: Path, model: Any) -> None:
        """Weights and optimizer state, as the last epoch left them."""
        load_state(model, checkpoint_dir / CHECKPOINT_VARIABLES)

    def _write_checkpoint(self, model: Any, epoch: int, png: Path | None) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="zoobench-ckpt-"))
        save_state(model, folder / CHECKPOINT_VARIABLES)
        state = {"epoch": epoch, "history": self.history, "train_seconds": self.train_seconds,
                 "mlflow_run_id": self.run_id}
        (folder / CHECKPOINT_STATE).write_text(json.dumps(state))
        if png is not None:
            os.replace(png, folder / PREDICTIONS_PNG)
        return folder

    # ---- per epoch
    def epoch_row(self, epoch: int, logs: dict[str, Any], epoch_seconds: float,
                  train_seconds: float) -> dict[str, Any]:
        """History row of one epoch: Keras' logs plus timing and the learning rate."""
        row: dict[str, Any] = {"epoch": epoch}
        # Keras' ``loss`` is named ``train_loss``: in the records ``loss`` is the loss's name.
        row.update({("train_loss" if key == "loss" else key): float(value)
                    for key, value in logs.items() if key != "learning_rate"})
        row["epoch_seconds"] = epoch_seconds
        row["samples_per_second"] = self.info.train_size / max(train_seconds, 1e-9)
        row["lr"] = float(self.config["lr"])
        self.train_seconds += epoch_seconds
        self.history.append(row)
        return row

    def best(self) -> dict[str, Any] | None:
        """The best epoch's row so far by the sweep's metric and mode."""
        best_row, best_value = None, None
        for row in self.history:
            value = row.get(self.context.metric, float("nan"))
            if _is_better(value, best_value, self.context.mode):
                best_row, best_value = row, value
        return best_row

    def end_reason(self, row: dict[str, Any]) -> str | None:
        """Why the trial stops after this epoch, or None to go on."""
        context = self.context
        if not (_finite(row.get("train_loss")) and _finite(row.get("val_loss", 0.0))):
            return END_NAN
        if row["epoch"] >= context.epochs:
            return END_COMPLETED
        if context.patience is not None:
            best = self.best()
            if best is not None and row["epoch"] - best["epoch"] >= context.patience:
                return END_PATIENCE
        if context.time_budget_s is not None and self.train_seconds >= context.time_budget_s:
            return END_TIME_BUDGET
        return None

    def finish_epoch(self, row: dict[str, Any], reason: str | None,
                     model: Any) -> tuple[dict[str, Any], Path]:
        """Log the epoch to MLflow (and, on the last epoch, the model and PNG); the Tune result."""
        assert self.run is not None
        numbers = {k: v for k, v in row.items()
                   if k not in ("epoch", "epoch_started_at") and _finite(v)}
        self.run.log_epoch(numbers, row["epoch"])
        png = None
        if reason is not None and reason != END_NAN:
            png = self._log_final_artifacts(model)
        best = self.best()
        metrics = {
            **row,
            "epochs_done": row["epoch"],
            "end_reason": reason or "",
            "best_epoch": best["epoch"] if best else 0,
            "train_seconds": self.train_seconds,
            "n_params": self.n_params,
            "trial_name": self.trial_name,
            "attempt_started_at": self.started_at,
            "first_step_at": self.first_step_at,
            "node": self.node,
            "node_ip": self.node_ip,
            "node_id": self.node_id,
            "mlflow_run_id": self.run.run_id,
            "mlflow_experiment_id": self.context.tracking.experiment_id,
        }
        return metrics, self._write_checkpoint(model, row["epoch"], png)

    def _log_final_artifacts(self, model: Any) -> Path | None:
        """Save the model (.keras) and the predictions PNG to MLflow; the PNG's path."""
        assert self.run is not None
        folder = Path(tempfile.mkdtemp(prefix="zoobench-final-"))
        model_path = folder / "model.keras"
        model.save(model_path)
        self.run.log_artifact(model_path, "model")
        if self.val_sample is None:
            return None
        from bench.predictions import save_predictions_png

        x, y = self.val_sample
        y_pred = model.predict(x, verbose=0)
        png = save_predictions_png(x, y, y_pred, self.info.task, folder / PREDICTIONS_PNG)
        self.run.log_artifact(png)
        return png


def _val_sample(val_ds: Any) -> tuple[Any, Any] | None:
    """Up to PREDICTION_SAMPLES validation inputs and targets as numpy arrays."""
    for batch in val_ds.unbatch().batch(PREDICTION_SAMPLES).take(1):
        return batch[0].numpy(), batch[1].numpy()
    return None


def train_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Tune function trainable for one model x loss x seed x hyperparameter draw.

    Args:
        config: ``model`` and ``loss`` labels, ``seed``, ``batch_size``, ``lr``,
            ``optimizer``, ``weight_decay``, ``augment`` (see ``bench.spec.PARAMS``).
        context: the sweep's shared settings.
    """
    configure_tensorflow(context.cpu)
    import keras
    from ray import tune

    import zoo

    keras.backend.clear_session()
    keras.utils.set_random_seed(int(config["seed"]))
    keras.mixed_precision.set_global_policy(
        "float32" if context.mixed_precision == "none" else f"mixed_{context.mixed_precision}"
    )
    model_name, model_options = context.models[config["model"]]
    loss_name, loss_params = context.losses[config["loss"]]

    # The MLflow run opens first, so a trial failing while it builds is visible there too.
    trial = TrialState(context, config)
    checkpoint = tune.get_checkpoint()
    checkpoint_dir = Path(checkpoint.to_directory()) if checkpoint is not None else None
    initial_epoch = trial.restore_progress(checkpoint_dir) if checkpoint_dir else 0
    params = {**config, "dataset": context.dataset, "epochs": context.epochs,
              "model_name": model_name, "loss_name": loss_name,
              "dataset_options": context.dataset_options, "model_options": model_options,
              "loss_params": loss_params, "mixed_precision": context.mixed_precision,
              "xla": context.xla}
    trial.run = TrialRun(context.tracking, trial.trial_name, trial.trial_id, context.sweep,
                         params, trial.run_id)
    trial.run_id = trial.run.run_id
    failed = False
    try:
        train_ds, val_ds, info = zoo.datasets.load(
            context.dataset, batch_size=int(config["batch_size"]), seed=int(config["seed"]),
            augment=bool(config["augment"]), **context.dataset_options,
        )
        height, width, channels = info.input_shape[-3:]
        model, out_h, out_w = zoo.get_model(model_name, height, width, channels,
                                            info.n_classes, **model_options)
        train_ds = _crop_targets(train_ds, out_h, out_w, height, width)
        val_ds = _crop_targets(val_ds, out_h, out_w, height, width)
        model.compile(
            optimizer=_optimizer(config["optimizer"], float(config["lr"]),
                                 float(config["weight_decay"])),
            loss=zoo.get_loss(loss_name, **loss_params),
            metrics=zoo.metrics.default_metrics(info.n_classes, info.task),
            jit_compile=context.xla,
        )
        trial.info, trial.val_sample = info, _val_sample(val_ds)
        trial.n_params = model.count_params()
        trial.run.log_param("n_params", trial.n_params)
        if checkpoint_dir is not None:
            trial.restore_weights(checkpoint_dir, model)
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if initial_epoch < context.epochs:
            model.fit(train_ds, validation_data=val_ds, epochs=context.epochs,
                      initial_epoch=initial_epoch, callbacks=[make_reporter(trial)], verbose=0,
                      shuffle=False)  # the dataset shuffles itself, seeded
    except Exception as error:
        failed = True
        trial.run.set_error(f"{type(error).__name__}: {error}")
        raise
    finally:
        # Tune stops a trial (scheduler decision, or right after its last report) by raising
        # a BaseException in it: that is an end, not a failure.
        last = trial.history[-1] if trial.history else None
        diverged = last is not None and trial.end_reason(last) == END_NAN
        trial.run.end("FAILED" if failed or diverged else "FINISHED")
