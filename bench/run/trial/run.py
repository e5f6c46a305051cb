"""``train_trial``: the Tune function trainable, from a trial's config to its last report."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import cells
from bench.common.names import END_NAN, PREDICTION_SAMPLES
from bench.common.tune_result import pack
from bench.run.attempts import check_start, read_marker, this_start, write_marker
from bench.run.trial.context import SweepContext
from bench.run.trial.reporter import make_reporter
from bench.run.trial.resume_point import resume_from
from bench.run.trial.state import TrialState
from bench.tracking.runs import TAG_DATASET, TrialRun

# Trials this worker process has entered: a reused worker (``reuse_workers``) has no
# process start or imports to pay for its second trial on.
_trials_entered = 0


def trial_threads(cpu: float) -> int:
    """The threads a trial of ``cpu`` CPUs runs on (at least 1): TensorFlow's ops and its
    data pipelines alike."""
    return max(1, int(cpu))


def configure_tensorflow(cpu: float, gpu_memory_mb: int | None = None) -> None:
    """Threads = the trial's CPU share; each visible GPU capped at ``gpu_memory_mb``, or
    with memory growth on when there is no cap. Call before TF's first op.

    Growth alone lets trials sharing a card take memory from each other until one runs
    out; a cap (``resources.gpu_memory_mb``) gives each its part. Raises nothing when
    TensorFlow is already initialised (a reused worker keeps the settings of its first
    trial, made with the same resources).
    """
    from bench.common.tensorflow_import import import_tensorflow

    import_tensorflow()  # a worker's first: without Keras' integrations, which no trial uses
    import tensorflow as tf

    threads = trial_threads(cpu)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        for gpu in tf.config.list_physical_devices("GPU"):
            if gpu_memory_mb:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=gpu_memory_mb)])
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # already initialised in this process


def with_cpu_share(datasets: tuple[Any, ...], cpu: float) -> tuple[Any, ...]:
    """``datasets`` (``tf.data``) set to run on the trial's CPU share: tf.data's autotuning
    off, and their functions on a private pool of ``trial_threads(cpu)`` threads.

    Autotuning runs a model of each pipeline in a background thread of every iterator, and
    an iterator's end waits for that thread: a trial's ``fit`` returned 1.4-5 s after its
    last epoch in about one trial of three on 2 cores (``py-spy dump --native``:
    ``RootDataset::Iterator::~Iterator`` waiting on it), and the model's optimisation took
    CPU from the trainings. Keras makes new iterators every epoch. Without it,
    ``num_parallel_calls``/``prefetch`` left to AUTOTUNE take a fixed default bounded by the
    pool. The data are arrays in memory (the sweep's cache), so there is no I/O to hide.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = trial_threads(cpu)
    return tuple(ds.with_options(options) for ds in datasets)


def _optimizer(name: str, lr: float, weight_decay: float) -> Any:
    import keras

    cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
           "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(learning_rate=lr, weight_decay=weight_decay or None)


def crop_targets(dataset: Any, out_h: int, out_w: int, height: int, width: int) -> Any:
    """Centre-crop targets to a model output smaller than its input (valid convolutions)."""
    if (out_h, out_w) == (height, width):
        return dataset
    top, left = (height - out_h) // 2, (width - out_w) // 2

    def crop(x: Any, y: Any, *weight: Any) -> Any:
        y = y[..., top:top + out_h, left:left + out_w, :]
        return (x, y, *weight)

    return dataset.map(crop)


def compile_model(model: Any, *, optimizer: Any, loss: Any, n_classes: int, task: str,
                  jit_compile: bool = False) -> None:
    """``model.compile`` with zoo's default metrics for ``task``.

    The metrics go to ``weighted_metrics``: Keras 3 passes sample weights only to
    those, and a semi-supervised dataset's weights (0 for unlabelled samples) must keep
    unlabelled samples out of the training metrics as they are kept out of the loss.
    The optimizer is built here, for a built ``model``, so ``fit`` traces its train
    function once (``tests/test_tracing.py``).
    """
    import zoo

    model.compile(optimizer=optimizer, loss=loss,
                  weighted_metrics=zoo.metrics.default_metrics(n_classes, task),
                  jit_compile=jit_compile)
    if model.built and model.trainable_variables:
        # Keras 3 on TensorFlow builds the optimizer inside the first trace of the train
        # function; TensorFlow then traces that function a second time, because the first
        # one created variables. Built here, it is traced once: ~6 s less per trial for a
        # shallow U-Net on one core, with the same numbers (zero-initialised slots either way).
        model.optimizer.build(model.trainable_variables)


def _val_sample(val_ds: Any) -> tuple[Any, Any] | None:
    """Up to PREDICTION_SAMPLES validation inputs and targets as numpy arrays."""
    for batch in val_ds.unbatch().batch(PREDICTION_SAMPLES).take(1):
        return batch[0].numpy(), batch[1].numpy()
    return None


def process_started_at(default: float) -> float:
    """When this worker process started (Ray worker start, imports); ``default`` if unknown."""
    try:  # Linux: field 22 of /proc/self/stat is the start in clock ticks after boot
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except Exception:  # noqa: BLE001  (a timing, never worth failing a trial over)
        return default


def setup_started_at(entered_at: float) -> float:
    """When this trial's set-up began: the process start for a worker's first trial (Ray
    worker start, imports), the trainable's entry for the next ones of a reused worker."""
    global _trials_entered
    _trials_entered += 1
    return process_started_at(entered_at) if _trials_entered == 1 else entered_at


def reset_process_state(first: bool = False) -> None:
    """What a reused worker must not carry from one trial to the next: Keras' graph and
    layer names, the last trial's traced graphs (``bench.run.trial.leaks``), garbage of the
    last model, the peak memory figure (``bench.run.trial.cost``).

    ``first``: the worker's first trial, which has no trial before it: the gradient
    registry's baseline is taken, and what the imports made (half a million objects,
    TensorFlow's) is frozen out of the garbage collector (``gc.freeze``): it lives as long
    as the worker, and every later collection, between trials or during training, would
    scan it again. A warm trial's reset took 0.62 s on 2 cores (a collection inside
    ``clear_session`` while the registry still held the last graphs, then another), now
    0.14 s (``python tests/perf/keras_model_leak.py`` shows the memory still levels off).
    """
    import gc

    import keras

    from bench.run.trial.cost import reset_peak_memory
    from bench.run.trial.leaks import forget_custom_gradients

    forget_custom_gradients()  # first: its entries hold the last trial's graphs
    if first:
        gc.freeze()
    else:
        keras.backend.clear_session(free_memory=False)
        gc.collect()  # once, with the registry's entries gone
    reset_peak_memory()


def load_trial_splits(context: SweepContext, config: dict[str, Any],
                      initial_epoch: int) -> Any:
    """The trial's ``zoo.datasets.Splits`` of its dataset (``config["dataset"]``, or the
    sweep's only one): arrays from the sweep's cache when it has one (one entry per
    dataset and seed)."""
    import zoo
    from bench.run.data_cache import cached_arrays

    seed = int(config["seed"])
    _, name, options = context.dataset_of(config)
    folder = Path(context.data_cache) if context.data_cache else None
    arrays = cached_arrays(folder, name, seed, options)
    return zoo.datasets.load_splits(
        name, batch_size=int(config["batch_size"]), seed=seed,
        augment=bool(config["augment"]), initial_epoch=initial_epoch, arrays=arrays,
        **options,
    )


def train_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Tune function trainable for one dataset x model x loss x seed x hyperparameter draw.

    Trains on the train split, selects on validation, and when the trial ends by
    itself tests the selected weights on the test split (``bench.run.trial.final``).

    Args:
        config: ``dataset`` (in a sweep of several), ``model`` and ``loss`` labels (or
            a ``cell`` naming the three, ``bench.common.cells``), ``seed``, ``batch_size``,
            ``lr``, ``optimizer``, ``weight_decay``, ``augment`` (``bench.spec.model.PARAMS``).
        context: the sweep's shared settings.
    """
    entered_at = time.time()
    setup_start = setup_started_at(entered_at)
    config = cells.resolve(config)
    configure_tensorflow(context.cpu, context.gpu_memory_mb)
    import keras
    from ray import tune

    import zoo
    from bench.spec.plugins import import_plugins_on_worker

    # The plugins register the models, losses and datasets this trial's labels may name.
    import_plugins_on_worker(context.plugins)

    reset_process_state(first=_trials_entered == 1)
    keras.utils.set_random_seed(int(config["seed"]))
    keras.mixed_precision.set_global_policy(
        "float32" if context.mixed_precision == "none" else f"mixed_{context.mixed_precision}"
    )
    model_name, model_options = context.models[config["model"]]
    loss_name, loss_params = context.losses[config["loss"]]

    # The MLflow run opens first, so a trial failing while it builds is visible there too.
    trial = TrialState(context, config)
    trial.worker_trial = _trials_entered
    checkpoint = resume_from(tune.get_checkpoint())
    checkpoint_dir = Path(checkpoint.to_directory()) if checkpoint is not None else None
    try:
        initial_epoch = trial.restore_progress(checkpoint_dir) if checkpoint_dir else 0
        if trial.ended_result is not None:
            # It ended after Tune's last snapshot (a killed driver): its end once more, as
            # it was, with its checkpoint; nothing is trained, tested or logged again.
            tune.report(pack(trial.ended_result, context.metric),
                        checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
    except BaseException:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        raise
    if trial.ended_result is not None:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return
    # Counted here, once the worker is up: what failed before is the machinery's.
    trial_dir = Path(tune.get_context().get_trial_dir())
    trial.attempt = this_start(trial.restored_starts, read_marker(trial_dir), context.run_token)
    write_marker(trial_dir, trial.attempt, context.run_token)
    dataset_label, dataset_name, dataset_options = context.dataset_of(config)
    params = {**config, "dataset": dataset_label, "dataset_name": dataset_name,
              "epochs": context.epochs, "model_name": model_name, "loss_name": loss_name,
              "dataset_options": dataset_options, "model_options": model_options,
              "loss_params": loss_params, "mixed_precision": context.mixed_precision,
              "xla": context.xla}
    trial.run = TrialRun(context.tracking, trial.trial_name, trial.trial_id, context.sweep,
                         params, trial.run_id, trial.outbox_state)
    trial.run_id = trial.run.run_id
    trial.run.set_tag(TAG_DATASET, dataset_label)
    failed = False
    try:
        check_start(trial.attempt, context.max_failures)  # ends it as an error if too many
        data_start = time.time()
        trial.setup["setup_process_s"] = data_start - setup_start
        # A resumed trial's epoch k sees the data an uninterrupted epoch k sees.
        splits = load_trial_splits(context, config, initial_epoch)
        info = splits.info
        height, width, channels = info.input_shape[-3:]
        model_start = time.time()
        trial.setup["setup_data_s"] = model_start - data_start
        model, out_h, out_w = zoo.get_model(model_name, height, width, channels,
                                            info.n_classes, **model_options)
        train_ds, val_ds, test_ds = with_cpu_share(
            tuple(crop_targets(ds, out_h, out_w, height, width)
                  for ds in (splits.train, splits.val, splits.test)), context.cpu)
        trial.model_built_at = time.time()
        trial.setup["setup_model_s"] = trial.model_built_at - model_start
        compile_model(model, optimizer=_optimizer(config["optimizer"], float(config["lr"]),
                                                  float(config["weight_decay"])),
                      loss=zoo.get_loss(loss_name, **loss_params), n_classes=info.n_classes,
                      task=info.task, jit_compile=context.xla)
        trial.info, trial.val_sample, trial.test_ds = info, _val_sample(val_ds), test_ds
        trial.n_params = model.count_params()
        trial.run.log_param("n_params", trial.n_params)
        if checkpoint_dir is not None:
            trial.restore_weights(checkpoint_dir, model)
        if initial_epoch < context.epochs:
            model.fit(train_ds, validation_data=val_ds, epochs=context.epochs,
                      initial_epoch=initial_epoch, callbacks=[make_reporter(trial)], verbose=0,
                      shuffle=False)  # the dataset shuffles itself, seeded
    except Exception as error:  # noqa: BLE001  (the trial's own code failed: reported, ends)
        # Not raised: Tune would retry it (FailureConfig retries any failure), and the same
        # code fails the same way again. A lost process or node never gets here; Tune
        # retries those from the last checkpoint.
        failed = True
        message = f"{type(error).__name__}: {error}"
        trial.run.set_error(message)
        tune.report(pack(trial.error_result(message), context.metric))
    finally:
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        # Tune stops a trial (scheduler decision, or right after its last report) by raising
        # a BaseException (SystemExit) in it: that is an end, not a failure.
        last = trial.history[-1] if trial.history else None
        diverged = last is not None and trial.end_reason(last) == END_NAN
        trial.run.end("FAILED" if failed or diverged else "FINISHED")
