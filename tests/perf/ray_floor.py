"""The floor under ``sweep_throughput.py``: the same six trainings with nothing of zoobench's.

``sweep_throughput.py`` measures a ``zoobench sweep`` of 6 short trials (digits 32x32, 384
training images, 3 epochs, testnet / unet_shallow / segnet_shallow x 2 losses, 2 slots of
1 CPU). This script runs the same six ``model.fit`` calls, same data, models, losses,
batch size and thread settings, in two warm processes that take the trainings from a queue,
with no Tune, no MLflow, no checkpoints, no spec checks, no tables and no test evaluation:

* ``--ray`` (default): two Ray actors of 1 CPU each, on a local Ray started by the script;
* ``--tune``: a Ray Tune run of the six (2 trials at once, warm actors: ``reuse_actors``),
  each trial reporting once, at its end;
* ``--processes``: two ``multiprocessing`` (spawn) processes, no Ray at all.

It prints the same figures as ``sweep_throughput.py``, measured the same way:

* ``efficiency``: sum of every epoch's seconds / (2 x the script's wall time), and
  ``efficiency_untraced`` (each trial's tracing, first epoch minus the median of its later
  ones, left out of the sum);
* ``first_step_s``: the script's start (before ``import ray``) to the first training batch;
* ``ready_s``: the script's start to each worker having imported TensorFlow.

No design built on these parts can do better than these figures on the same machine: they
are what the goals of issue 12 (efficiency >= 0.85, first step <= 15 s) are held against.

    python tests/perf/ray_floor.py [--ray [--preload] | --tune | --processes] [--quick]
        [--lean-import]

``--lean-import``: the workers import TensorFlow as zoobench's trial workers do, without
the modules Keras imports for its optional integrations (``bench.common.tensorflow_import``),
to tell that saving apart from the rest of zoobench's share.

``--quick``: the trainings of ``sweep_throughput.py --quick`` (testnet and unet_shallow x
categorical_crossentropy, 128 training images, 2 epochs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Before any import a sweep needs: the command's start. sweep_throughput.py passes the time
# it launched this process, as it counts a zoobench sweep's from its launch.
START = float(os.environ.get("RAY_FLOOR_LAUNCHED_AT") or time.time())

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("testnet", "unet_shallow", "segnet_shallow")
LOSSES = ("categorical_crossentropy", "dice")
DATA = {"height": 32, "width": 32, "train": 384, "val": 128, "seed": 0}
EPOCHS = 3
BATCH = 32
LEAN_VARIABLE = "RAY_FLOOR_LEAN_IMPORT"  # set by --lean-import; the workers inherit it
# sweep_throughput.py --quick's trainings: (models, losses, training images, epochs).
QUICK = (("testnet", "unet_shallow"), ("categorical_crossentropy",), 128, 2)


class Worker:
    """One warm process: imports TensorFlow once, then trains what it is given."""

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if str(ROOT) not in sys.path:  # a warm Tune actor builds one Worker per trial
            sys.path.insert(0, str(ROOT))
        if os.environ.get(LEAN_VARIABLE) == "1":  # --lean-import: as zoobench's workers do
            from bench.common.tensorflow_import import import_tensorflow

            import_tensorflow()
        import tensorflow as tf

        import zoo

        # The trial's own settings for 1 CPU (bench.run.trial.run.configure_tensorflow).
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # a warm Tune actor's later trial: set by its first
        self.zoo = zoo
        self.ready_at = time.time()

    def ready(self) -> float:
        return self.ready_at

    def train(self, model_name: str, loss_name: str, train: int = DATA["train"],
              epochs: int = EPOCHS) -> dict:
        """One ``fit`` (``train`` images, ``epochs``); its first batch's time and each
        epoch's seconds."""
        import keras
        import tensorflow as tf

        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        train_ds, val_ds, info = self.zoo.datasets.load("digits", batch_size=BATCH,
                                                        **{**DATA, "train": train})
        # The trial's own data settings for 1 CPU (bench.run.trial.run.with_cpu_share).
        options = tf.data.Options()
        options.autotune.enabled = False
        options.threading.private_threadpool_size = 1
        train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)
        height, width, channels = info.input_shape
        model, _, _ = self.zoo.get_model(model_name, height, width, channels, info.n_classes)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=self.zoo.get_loss(loss_name),
                      weighted_metrics=self.zoo.metrics.default_metrics(info.n_classes,
                                                                         info.task))
        model.optimizer.build(model.trainable_variables)
        times: dict = {"first_step_at": None, "epochs": []}

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.start = time.perf_counter()

            def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
                if times["first_step_at"] is None:
                    times["first_step_at"] = time.time()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                times["epochs"].append(time.perf_counter() - self.start)

        model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0,
                  callbacks=[Clock()])
        return times


def _process_main(tasks, results) -> None:  # noqa: ANN001  (multiprocessing queues)
    worker = Worker()
    results.put(("ready", worker.ready()))
    while (task := tasks.get()) is not None:
        results.put(("trial", worker.train(*task)))


def run_ray(preload: bool, trainings: list[tuple]) -> tuple[list[float], list[dict]]:
    import ray

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # With --preload, Ray's prestarted workers import TensorFlow as Ray starts. An actor
    # takes a prestarted worker only when the job has no runtime_env: the variable above
    # reaches the workers through the environment instead.
    config = {"preload_python_modules": ["tensorflow", "keras"]} if preload else {}
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False,
             _system_config=config)
    try:
        actor = ray.remote(num_cpus=1)(Worker)
        workers = [actor.remote() for _ in range(2)]
        ready = ray.get([w.ready.remote() for w in workers])
        pending = list(trainings)
        running = {}
        for w in workers:
            running[w.train.remote(*pending.pop(0))] = w
        done = []
        while running:
            [ref], _ = ray.wait(list(running))
            w = running.pop(ref)
            done.append(ray.get(ref))
            if pending:
                running[w.train.remote(*pending.pop(0))] = w
        return ready, done
    finally:
        ray.shutdown()


def _tune_trial(config: dict) -> None:
    from ray import tune

    # A warm actor's later trials find TensorFlow imported: their Worker() is cheap.
    worker = Worker()
    times = worker.train(config["model"], config["loss"], config["train"], config["epochs"])
    tune.report({"pid": os.getpid(), "ready_at": worker.ready(),
                 "first_step_at": times["first_step_at"], "epochs": times["epochs"]})


def _tune_trial_of(config: dict) -> None:
    """``_tune_trial`` of one ``(model, loss, train, epochs)`` training of the grid."""
    model, loss, train, epochs = config["training"]
    _tune_trial({"model": model, "loss": loss, "train": train, "epochs": epochs})


def run_tune(trainings: list[tuple]) -> tuple[list[float], list[dict]]:
    import ray
    from ray import tune

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False)
    try:
        space = {"training": tune.grid_search([list(t) for t in trainings])}
        trial = tune.with_resources(_tune_trial_of, {"cpu": 1})
        tuner = tune.Tuner(trial, param_space=space,
                           tune_config=tune.TuneConfig(max_concurrent_trials=2,
                                                       reuse_actors=True),
                           run_config=tune.RunConfig(verbose=0))
        grid = tuner.fit()
        done = [r.metrics for r in grid]
        ready: dict[int, float] = {}  # each actor process: its first trial's import
        for d in done:
            ready[d["pid"]] = min(ready.get(d["pid"], d["ready_at"]), d["ready_at"])
        return list(ready.values()), done
    finally:
        ray.shutdown()


def run_processes(trainings: list[tuple]) -> tuple[list[float], list[dict]]:
    import multiprocessing as mp

    context = mp.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    for task in [*trainings, None, None]:
        tasks.put(task)
    processes = [context.Process(target=_process_main, args=(tasks, results))
                 for _ in range(2)]
    for p in processes:
        p.start()
    ready, done = [], []
    while len(done) < len(trainings):
        kind, value = results.get()
        (ready if kind == "ready" else done).append(value)
    for p in processes:
        p.join()
    return ready, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--ray", action="store_true", help="two Ray actors (default)")
    how.add_argument("--tune", action="store_true", help="a bare Ray Tune run, warm actors")
    how.add_argument("--processes", action="store_true", help="two plain processes, no Ray")
    parser.add_argument("--preload", action="store_true",
                        help="with Ray: its prestarted workers import TensorFlow as it starts")
    parser.add_argument("--quick", action="store_true",
                        help="sweep_throughput.py --quick's four trainings")
    parser.add_argument("--lean-import", action="store_true",
                        help="workers import TensorFlow as zoobench's do, without Keras' "
                             "integrations (bench.common.tensorflow_import)")
    args = parser.parse_args()
    if args.lean_import:
        os.environ[LEAN_VARIABLE] = "1"
    models, losses, train, epochs = QUICK if args.quick else (MODELS, LOSSES, DATA["train"],
                                                              EPOCHS)
    trainings = [(model, loss, train, epochs) for model in models for loss in losses]
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    ready, done = (run_processes(trainings) if args.processes else run_tune(trainings)
                   if args.tune else run_ray(args.preload, trainings))
    wall = time.time() - START
    epochs = [s for trial in done for s in trial["epochs"]]
    traces = [t["epochs"][0] - statistics.median(t["epochs"][1:]) for t in done]
    train = sum(epochs)
    figures = {
        "wall_s": wall,
        "train_s": train,
        "efficiency": train / (2 * wall),
        "efficiency_untraced": (train - sum(traces)) / (2 * wall),
        "first_step_s": min(t["first_step_at"] for t in done) - START,
        "ready_s": max(ready) - START,
        "trace_s": statistics.median(traces),
    }
    label = ("processes" if args.processes else "tune" if args.tune
             else "ray, preload" if args.preload else "ray")
    print(f"{label}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
