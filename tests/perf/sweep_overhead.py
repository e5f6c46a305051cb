"""What a sweep costs over a bare ``model.fit``: per-epoch time and time to the first step.

Trains the same model on the same data in one command, ``--rounds`` times over: as a
one-trial ``zoobench`` sweep (local Ray, MLflow sqlite store, a checkpoint and a Tune
report every epoch), then with a bare ``model.fit``. Prints the median
time per epoch of each from one epoch's start to the next (training, validation and, in
the sweep, the MLflow log, checkpoint and Tune report; first epochs are left out: they
trace the graph), their ratio (goal: at most 1.05), the share of the sweep's epoch spent
outside ``fit`` (measured within the trial, so immune to the machine's drift) and the
seconds from this command's start to the trial's first training step (Ray start-up,
worker start, data and model build).

    python tests/perf/sweep_overhead.py [--size 64] [--train 512] [--epochs 9]
"""

from __future__ import annotations

import time

COMMAND_START = time.time()

import argparse  # noqa: E402  (the clock starts before any import)
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
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


@dataclass
class Run:
    """One training's per-epoch figures, every epoch included (callers drop the first).

    ``cycles``: seconds from each epoch's start to the next one's; ``cpu``: CPU seconds of
    the training process (all threads) per epoch; sweep only: ``outside`` (seconds of each
    cycle spent outside ``fit``'s epoch: MLflow log, checkpoint, Tune report) and
    ``first_step`` (command start → the trial's first step).
    """

    cycles: list[float]
    cpu: list[float]
    outside: list[float] = field(default_factory=list)
    first_step: float = 0.0


def sweep_epochs(args: argparse.Namespace, folder: Path) -> Run:
    """The one-trial sweep's figures."""
    from bench.run.sweep import SweepOptions, run_sweep
    from bench.spec.model import parse_spec

    text = SPEC.format(size=args.size, train=args.train, val=args.train // 4, model=args.model,
                       epochs=args.epochs, batch=args.batch, cpu=args.cpu, gpu=args.gpu)
    outcome = run_sweep(parse_spec(text, "overhead.yaml"), SweepOptions(results=folder))
    trial = outcome.trials.iloc[0]
    assert trial["status"] == "TERMINATED", trial["error"]
    history = outcome.history.sort_values("epoch")
    cycles = _cycles(history["epoch_started_at"].tolist())
    return Run(
        cycles=cycles,
        cpu=history["cpu_seconds"].tolist(),
        outside=[c - e for c, e in zip(cycles, history["epoch_seconds"], strict=False)],
        first_step=trial["first_step_at"].timestamp() - COMMAND_START,
    )


def _cycles(starts: list[float]) -> list[float]:
    """Seconds from each epoch's start to the next one's."""
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


def bare_epochs(args: argparse.Namespace) -> Run:
    """The same training's figures with ``model.fit`` alone."""
    import keras

    import zoo

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.starts.append(time.time())
            self._cpu_start = time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.cpu.append(time.process_time() - self._cpu_start)

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
    return Run(cycles=_cycles(clock.starts), cpu=clock.cpu)


def _after_first(runs: list[Run], figure: str) -> list[float]:
    """``figure`` of every run pooled, each run's first epoch (graph tracing) left out."""
    return [value for run in runs for value in getattr(run, figure)[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_shallow")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=os.cpu_count() or 1,
                        help="CPUs of the trial (default: all; the bare fit uses all too)")
    parser.add_argument("--gpu", type=float, default=0)
    parser.add_argument("--rounds", type=int, default=2,
                        help="sweep-then-bare rounds; each side's epochs are pooled")
    args = parser.parse_args()

    import ray

    swept: list[Run] = []
    bare: list[Run] = []
    # This machine's epoch times drift by up to 2x from minute to minute (shared host):
    # alternating sweep and bare fits spreads the drift over both sides, and the
    # bookkeeping share is measured within the trial, immune to it.
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="zoobench-overhead-") as folder:
            swept.append(sweep_epochs(args, Path(folder)))
        ray.shutdown()  # its idle workers would otherwise share the CPUs with the bare fit
        bare.append(bare_epochs(args))
    sweep_median = statistics.median(_after_first(swept, "cycles"))
    bare_median = statistics.median(_after_first(bare, "cycles"))
    outside_median = statistics.median(s for run in swept for s in run.outside)
    print(f"model {args.model}, shapes {args.size}x{args.size}, {args.train} training "
          f"samples, batch {args.batch}, {args.epochs} epochs, {args.cpu} CPUs, "
          f"{args.gpu} GPU, {args.rounds} rounds")
    for i, (sweep_run, bare_run) in enumerate(zip(swept, bare, strict=True), start=1):
        print(f"round {i} sweep epochs: {', '.join(f'{s:.2f}' for s in sweep_run.cycles)}")
        print(f"round {i} bare  epochs: {', '.join(f'{s:.2f}' for s in bare_run.cycles)}")
    print(f"bare model.fit  median epoch: {bare_median:.3f} s  (first epochs left out)")
    print(f"zoobench sweep  median epoch: {sweep_median:.3f} s")
    print(f"  of which outside fit's epoch (MLflow log, checkpoint, Tune report): median "
          f"{outside_median:.3f} s = {outside_median / sweep_median:.1%} of the epoch")
    print(f"ratio sweep / bare: {sweep_median / bare_median:.3f}  (goal <= 1.05)")
    # The fastest epoch of each side is the one least disturbed by other tenants (the
    # timeit advice); slow epochs here are ones where the process got one core, not two.
    sweep_min, bare_min = min(_after_first(swept, "cycles")), min(_after_first(bare, "cycles"))
    print(f"ratio of the fastest epochs: {sweep_min:.3f} / {bare_min:.3f} s = "
          f"{sweep_min / bare_min:.3f}")
    # CPU time per epoch does not depend on how many cores the host lent us meanwhile.
    sweep_cpu = statistics.median(_after_first(swept, "cpu"))
    bare_cpu = statistics.median(_after_first(bare, "cpu"))
    print(f"CPU seconds per epoch (the training process, all threads): sweep {sweep_cpu:.2f}, "
          f"bare {bare_cpu:.2f}, ratio {sweep_cpu / bare_cpu:.3f}")
    # Later rounds start after earlier ones, not at the command's start.
    to_first_step = swept[0].first_step
    print(f"command start -> first trial's first step: {to_first_step:.1f} s")


if __name__ == "__main__":
    main()
