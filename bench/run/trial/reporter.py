"""The Keras callback doing a trial's per-epoch bookkeeping and reporting to Tune."""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.run.trial.state import TrialState


def make_reporter(trial: TrialState) -> Any:
    """The ``keras.callbacks.Callback`` doing a trial's per-epoch bookkeeping."""
    import keras
    from ray import tune

    from bench.common.tune_result import pack
    from bench.run.trial.cost import resident_mb
    from bench.run.trial.final import end_of_trial

    class _Reporter(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            trial.run.log_dataset(trial_dataset(trial))  # the runs table's Dataset column

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
            # The process's memory now: a reused worker's must not grow trial after trial.
            row["rss_mb"] = resident_mb()
            # Successive starts also time what the bookkeeping below costs (perf checks).
            row["epoch_started_at"] = self._started_at
            reason = trial.end_reason(row)
            if reason is not None:
                self.model.stop_training = True
            checkpoint_dir = None
            try:
                metrics, checkpoint_dir = trial.finish_epoch(row, reason, self.model,
                                                             end_of_trial)
                # Tune gets the numbers it acts on; the rest as one text (bench.common.tune_result).
                tune.report(pack(metrics, trial.context.metric),
                            checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
                # Only now, with the epoch's checkpoint Tune's, does MLflow get the epoch: a
                # retry restarts from that checkpoint and never logs an epoch twice.
                trial.run.flush()
            finally:  # Tune has copied it to the trial's storage
                if checkpoint_dir is not None:
                    shutil.rmtree(checkpoint_dir, ignore_errors=True)

    # Keras needs the class at fit time only; defining it here keeps ``import bench``
    # free of TensorFlow until a trial runs.
    return _Reporter()


def trial_dataset(trial: TrialState) -> Any:
    """The trial's dataset as an MLflow input (``bench.tracking.runs.dataset_input``): its
    label, a digest of its name, options (defaults filled in) and seed (as the sweep's data
    cache keys what the arrays are made from), and its split sizes, shapes and classes."""
    from bench.run.data_cache import dataset_key
    from bench.tracking.runs import dataset_input

    label, name, options = trial.context.dataset_of(trial.config)
    info = trial.info
    profile = {"dataset": name, "train": info.train_size, "val": info.val_size,
               "test": info.test_size, "input_shape": list(info.input_shape),
               "classes": info.n_classes, "class_names": list(info.class_names),
               "task": info.task, "seed": int(trial.config["seed"])}
    path = options.get("path")
    # Every option, defaults filled in: a default changed in the zoo changes the digest.
    every = {**options, **(info.options or {})}
    return dataset_input(label, dataset_key(name, int(trial.config["seed"]), every), profile,
                         str(path) if path else None)
