"""A sweep of N tiny trials: zoobench's driver against bare Ray Tune on the same trainings.

Each trial trains a one-layer plugin model (``tiny_net``: a 1x1 convolution to the classes,
registered by a plugin module this script writes) on 8 images of ``shapes`` (16x16, 3
classes), 1 epoch, batch 8; N trials (seeds 0..N-1), ``--slots`` at a time, 1 CPU each,
warm workers. Two runs, each in a process of its own (its own local Ray):

* ``zoobench``: ``bench.run.sweep.run_sweep`` (what ``zoobench sweep`` calls) on that spec;
* ``tune``: a bare ``Tuner`` of the same trainings (``zoo``'s public API: data, model,
  loss, metrics, ``fit``), one report per trial, warm actors, nothing else.

Printed for each: the wall (process start to end), the driver's CPU per finished trial
over the first and the last 100 finished trials (``time.process_time`` of the driver at
each trial's end; a tenth of N each when N < 300), the driver's resident memory at those
two points, every window's CPU per trial in order (``cpu_by_window_ms``), the seconds
from the last trial's end until the sweep call returns (``end_s``: zoobench's tables and
MLflow at the end; before Ray's shutdown on both sides), and for
zoobench the time its table callback takes per trial end
(``LiveTables.trial_ended``: median and mean). Then zoobench / tune for wall and the
last-100 CPU, and zoobench's last / first CPU ratio (goal: at most 1.5).

    python tests/perf/many_trials.py [--n 100] [--slots 2] [--only zoobench|tune]

N = 100 and 1,000 are the figures to take; 5,000 is the slow run (hours on 2 cores).
"""

from __future__ import annotations

import time

START = time.time()  # the run's clock starts before its imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_MODULE = "many_trials_plugin"
PLUGIN = '''\
"""tiny_net: one 1x1 convolution to the classes (many_trials.py)."""
import keras

import zoo


@zoo.register_model("tiny_net", kind="image")
def build_tiny_net(input_height, input_width, input_channels, n_classes):
    """One layer: a 1x1 convolution, softmax over the classes."""
    inputs = keras.Input((input_height, input_width, input_channels))
    outputs = keras.layers.Conv2D(n_classes, 1, activation="softmax")(inputs)
    return keras.Model(inputs, outputs, name="tiny_net")
'''
DATA = {"height": 16, "width": 16, "channels": 3, "classes": 3, "train": 8, "val": 8,
        "test": 8}
SPEC = """\
name: many
plugins: [{module}]
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 8, val: 8,
          test: 8}}
models: [tiny_net]
losses: [categorical_crossentropy]
seeds: {seeds}
epochs: 1
params: {{batch_size: 8, lr: 1.0e-3}}
scheduler: fifo
resources: {{cpu: 1, gpu: 0}}
max_concurrent: {slots}
reuse_workers: true
"""


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Ends:
    """The driver's CPU seconds, resident MiB and clock at each finished trial."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.rss: list[float] = []
        self.at: list[float] = []

    def mark(self) -> None:
        self.cpu.append(time.process_time())
        self.rss.append(_resident_mb())
        self.at.append(time.perf_counter())

    def end_s(self) -> float:
        """Seconds from the last trial's end to now (the sweep's own end)."""
        return time.perf_counter() - self.at[-1] if self.at else float("nan")


def run_zoobench(n: int, slots: int, folder: Path) -> dict:
    """``run_sweep`` of the tiny spec in this process; the driver's figures."""
    from bench.run import live_tables
    from bench.run.sweep import SweepOptions, run_sweep
    from bench.spec.model import load_spec

    ends, writes = Ends(), []
    trial_ended = live_tables.LiveTables.trial_ended

    def timed(self, trials, trial, status):  # noqa: ANN001, ANN202  (Tune's arguments)
        start = time.perf_counter()
        trial_ended(self, trials, trial, status)
        writes.append(time.perf_counter() - start)
        ends.mark()

    live_tables.LiveTables.trial_ended = timed  # measured, not changed
    spec_path = folder / "many.yaml"
    spec_path.write_text(SPEC.format(module=PLUGIN_MODULE, seeds=list(range(n)), slots=slots))
    outcome = run_sweep(load_spec(spec_path), SweepOptions(results=folder / "results"))
    figures = {"trials": len(outcome.trials), "failed": outcome.failed, "end_s": ends.end_s(),
               "table_write_median_ms": statistics.median(writes) * 1e3,
               "table_write_mean_ms": statistics.mean(writes) * 1e3}
    return {**figures, **_driver_figures(ends, n)}


def _tune_trial(config: dict) -> None:
    """The same training as a zoobench trial of the tiny spec, nothing else."""
    import keras
    from ray import tune

    import zoo

    __import__(PLUGIN_MODULE)
    keras.backend.clear_session()
    keras.utils.set_random_seed(config["seed"])
    train_ds, val_ds, info = zoo.datasets.load("shapes", batch_size=8, seed=config["seed"],
                                               **DATA)
    height, width, channels = info.input_shape
    model, _, _ = zoo.get_model("tiny_net", height, width, channels, info.n_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=zoo.get_loss("categorical_crossentropy"),
                  weighted_metrics=zoo.metrics.default_metrics(info.n_classes, info.task))
    logs = model.fit(train_ds, validation_data=val_ds, epochs=1, verbose=0).history
    tune.report({k: float(v[-1]) for k, v in logs.items()})


def run_tune(n: int, slots: int, folder: Path) -> dict:
    """A bare Tune run of the same trainings in this process; the driver's figures."""
    import ray
    from ray import tune

    ends = Ends()

    class Probe(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
            ends.mark()

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
            ends.mark()

    ray.init(include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    try:
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": 1}),
            param_space={"seed": tune.grid_search(list(range(n)))},
            tune_config=tune.TuneConfig(max_concurrent_trials=slots, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=str(folder / "ray"), verbose=0,
                                      callbacks=[Probe()]))
        grid = tuner.fit()
        end_s = ends.end_s()
        failed = sum(r.error is not None for r in grid)
    finally:
        ray.shutdown()
    return {"trials": len(grid), "failed": failed, "end_s": end_s, **_driver_figures(ends, n)}


def _driver_figures(ends: Ends, n: int) -> dict:
    """CPU ms per finished trial and resident MiB over the first and the last window."""
    window = 100 if n >= 300 else max(2, n // 10)
    if len(ends.cpu) < 2 * window:
        return {"ends_seen": len(ends.cpu)}
    first = (ends.cpu[window] - ends.cpu[0]) / window
    last = (ends.cpu[-1] - ends.cpu[-1 - window]) / window
    # Every window's CPU per trial in order: growth through the sweep, told apart from a
    # first or last window that is cheap or dear on its own.
    series = [(ends.cpu[i + window] - ends.cpu[i]) / window * 1e3
              for i in range(0, len(ends.cpu) - window, window)]
    return {"window": window, "cpu_first_ms": first * 1e3, "cpu_last_ms": last * 1e3,
            "cpu_last_over_first": last / first if first else float("nan"),
            "cpu_by_window_ms": " ".join(f"{ms:.0f}" for ms in series),
            "rss_first_mb": ends.rss[window], "rss_last_mb": ends.rss[-1],
            "driver_cpu_s": ends.cpu[-1]}


def child(which: str, n: int, slots: int, out: Path) -> None:
    """One run in this process; its figures (and its wall) written to ``out`` as JSON."""
    with tempfile.TemporaryDirectory(prefix=f"zoobench-many-{which}-") as tmp:
        figures = (run_zoobench if which == "zoobench" else run_tune)(n, slots, Path(tmp))
    figures["wall_s"] = time.time() - START
    out.write_text(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--only", choices=("zoobench", "tune"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.slots, args.out)
        return
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="zoobench-many-") as tmp:
        plugins = Path(tmp) / "plugins"
        plugins.mkdir()
        (plugins / f"{PLUGIN_MODULE}.py").write_text(PLUGIN)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(
            filter(None, [str(plugins), str(ROOT), os.environ.get("PYTHONPATH")]))}
        for which in (args.only,) if args.only else ("zoobench", "tune"):
            out = Path(tmp) / f"{which}.json"
            log = Path(tmp) / f"{which}.log"
            with open(log, "wb") as handle:
                done = subprocess.run([sys.executable, __file__, "--child", which, "--n",
                                       str(args.n), "--slots", str(args.slots), "--out",
                                       str(out)], env=env, stdout=handle,
                                      stderr=subprocess.STDOUT, cwd=tmp)
            if done.returncode != 0 or not out.exists():
                sys.exit(f"{which} run exited {done.returncode}:\n"
                         f"{log.read_text(errors='replace')[-3000:]}")
            runs[which] = json.loads(out.read_text())
            print(f"{which}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float)
                                           else f"{k} {v}" for k, v in runs[which].items()),
                  flush=True)
    print(f"load average after: {os.getloadavg()}")
    if len(runs) == 2 and "cpu_last_ms" in runs["zoobench"] and "cpu_last_ms" in runs["tune"]:
        zoobench, tune = runs["zoobench"], runs["tune"]
        print(f"zoobench/tune wall: {zoobench['wall_s'] / tune['wall_s']:.2f} (goal <= 1.2 "
              f"at N = 1,000)")
        print(f"zoobench/tune driver CPU per trial, last window: "
              f"{zoobench['cpu_last_ms'] / tune['cpu_last_ms']:.2f}")
        print(f"zoobench driver CPU per trial, last / first window: "
              f"{zoobench['cpu_last_over_first']:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
