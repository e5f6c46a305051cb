"""What a sweep costs over a bare ``model.fit``: per-epoch time and time to the first step.

Trains the same model on the same data twice in one command: once as a one-trial
``zoobench`` sweep (local Ray, MLflow sqlite store, a checkpoint and a Tune report
every epoch), once with a bare ``model.fit``. Prints the median time per epoch of each
from one epoch's start to the next (training, validation and, in the sweep, the MLflow
log, checkpoint and Tune report; the first epoch is left out: it traces the graph), their
ratio (goal: at most 1.05) and the seconds from this command's start to the trial's first training
step (Ray start-up, worker start, data and model build).

    python tests/perf/sweep_overhead.py [--size 64] [--train 512] [--epochs 6]
"""

from __future__ import annotations

import time

COMMAND_START = time.time()

import argparse  # noqa: E402  (the clock starts before any import)
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = """\
name: overhead
dataset: {{name: shapes, height: {size}, width: {size}, channels: 3, classes: 4,
          train: {train}, val: {val}}}
models: [{model}]
losses: [categorical_crossentropy]
seeds: [0]
epochs: {epochs}
params: {{batch_size: {batch}, lr: 1.0e-3}}
resources: {{cpu: {cpu}, gpu: {gpu}}}
"""


def sweep_epochs(args: argparse.Namespace, folder: Path) -> tuple[list[float], float]:
    """Epoch-to-epoch seconds of the one-trial sweep, and command start → first step."""
    from bench.spec import parse_spec
    from bench.sweep import SweepOptions, run_sweep

    text = SPEC.format(size=args.size, train=args.train, val=args.train // 4, model=args.model,
                       epochs=args.epochs, batch=args.batch, cpu=args.cpu, gpu=args.gpu)
    outcome = run_sweep(parse_spec(text, "overhead.yaml"), SweepOptions(results=folder))
    trial = outcome.trials.iloc[0]
    assert trial["status"] == "TERMINATED", trial["error"]
    starts = outcome.history.sort_values("epoch")["epoch_started_at"].tolist()
    return _cycles(starts), trial["first_step_at"].timestamp() - COMMAND_START


def _cycles(starts: list[float]) -> list[float]:
    """Seconds from each epoch's start to the next one's."""
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


def bare_epochs(args: argparse.Namespace) -> list[float]:
    """Epoch-to-epoch seconds of the same training with ``model.fit`` alone."""
    import keras

    import zoo

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.starts.append(time.time())

    keras.utils.set_random_seed(0)
    train, val, info = zoo.datasets.load(
        "shapes", batch_size=args.batch, seed=0, height=args.size, width=args.size,
        channels=3, classes=4, train=args.train, val=args.train // 4)
    model, _, _ = zoo.get_model(args.model, args.size, args.size, 3, info.n_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=zoo.get_loss("categorical_crossentropy"),
                  metrics=zoo.metrics.default_metrics(info.n_classes, info.task))
    clock = Clock()
    model.fit(train, validation_data=val, epochs=args.epochs, callbacks=[clock], verbose=0,
              shuffle=False)
    return _cycles(clock.starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_shallow")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=os.cpu_count() or 1,
                        help="CPUs of the trial (default: all; the bare fit uses all too)")
    parser.add_argument("--gpu", type=float, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zoobench-overhead-") as folder:
        swept, to_first_step = sweep_epochs(args, Path(folder))
    import ray

    ray.shutdown()  # its idle workers would otherwise share the CPUs with the bare fit
    bare = bare_epochs(args)
    sweep_median = statistics.median(swept[1:])
    bare_median = statistics.median(bare[1:])
    print(f"model {args.model}, shapes {args.size}x{args.size}, {args.train} training "
          f"samples, batch {args.batch}, {args.epochs} epochs, {args.cpu} CPUs, "
          f"{args.gpu} GPU")
    print(f"bare model.fit  median epoch: {bare_median:.3f} s  (epochs: "
          f"{', '.join(f'{s:.2f}' for s in bare)})")
    print(f"zoobench sweep  median epoch: {sweep_median:.3f} s  (epochs: "
          f"{', '.join(f'{s:.2f}' for s in swept)})")
    print(f"ratio sweep / bare: {sweep_median / bare_median:.3f}  (goal <= 1.05)")
    print(f"command start -> first trial's first step: {to_first_step:.1f} s")


if __name__ == "__main__":
    main()
