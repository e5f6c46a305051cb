"""How much of a sweep's slot time trains: efficiency, time to the first step, set-up split.

Runs one short sweep as a ``zoobench sweep`` subprocess (digits 32x32, 384 training
images, 3 epochs, testnet / unet_shallow / segnet_shallow x 2 losses, 1 CPU a trial) once
per checkout given (``--baseline DIR`` adds a run of another checkout first, e.g. main,
so before and after are measured in the same command, under the same load), and prints
for each:

* efficiency: sum of every epoch's ``epoch_seconds`` / (slots x the command's wall time);
  ``efficiency_untraced`` leaves each trial's tracing (first epoch minus its later ones' median)
  out of the numerator, since a faster trace would otherwise lower the efficiency;
* first step: seconds from the command's start to the first trial's first training step;
* per-trial set-up medians: worker process start -> data (``setup_process_s``: Ray
  worker, imports, MLflow run), data, model build, compile (model built -> first step),
  and trace (first epoch minus the median of the later ones);
* end of trial: ``final_seconds`` (test evaluation, cases, model and PNG logging);
* the machine's load average before and after.

    git archive main | tar -x -C /tmp/zoobench-main   # the "before" checkout
    python tests/perf/sweep_throughput.py [--quick] [--baseline /tmp/zoobench-main]
        [--reuse-workers | --fresh-workers] [--floor]

``--floor``: also runs ``tests/perf/ray_floor.py --tune`` (the same trainings in a bare Ray
Tune run, warm actors: no MLflow, spec checks, checkpoints or tables; ``--floor-kind ray``
or ``processes`` for the other floors) in the same command, and prints this checkout's wall
and first step against it (ratio and difference), then where zoobench's own share goes,
from the timeline ``trials.parquet`` holds: the driver's start-up (command start -> first
trial started), each trial's set-up steps (``setup_process_s``, ``setup_data_s``,
``setup_model_s``, ``setup_compile_s``), tracing, its end (``final_seconds``, of which
``cost_seconds``) and the command's end (last trial ended -> command exit), each as the
median per trial and as slot-seconds (the sum over trials / slots: what it adds to the wall
when the slots are full).

``--floor-lean-import``: the floor's workers import TensorFlow as zoobench's do (without
Keras' scikit-learn, pyplot and IPython integrations: ``ray_floor.py --lean-import``), to
tell that saving apart from the rest of zoobench's share.

``--repeat N`` (with ``--floor``): N pairs of runs, zoobench and the floor alternating which
goes first, each pair's ratios and their medians: one run's wall moves by about ±10 % with
the machine, more than the difference being measured.

``--log-models all|none``: this checkout's spec gets that ``log_models``.

``--cpu``: also samples each run's processes (``cpu_roles.CpuByRole``) and prints their CPU
seconds by role, zoobench against the floor: the driver, the child that checks the spec,
the trial workers, Ray's own processes, and the machine's idle seconds. On 2 busy cores the
wall follows the CPU spent, so these say where zoobench's extra wall goes.

``--quick``: 2 models x 1 loss, 2 epochs, 128 training images. ``--reuse-workers`` /
``--fresh-workers``: this checkout's run has ``reuse_workers: true`` / ``false`` (warm workers
are the default since the leak fix; the baseline's spec is left as it is, so an older
checkout that does not know the key still reads it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from cpu_roles import CpuByRole  # noqa: E402  (beside this script)

SPEC = """\
name: throughput
dataset: {{name: digits, height: 32, width: 32, train: {train}, val: 128}}
models: {models}
losses: {losses}
seeds: [0]
epochs: {epochs}
params: {{batch_size: 32, lr: 1.0e-3, optimizer: adam}}
samples: 1
scheduler: fifo
metric: val_mean_iou
mode: max
resources: {{cpu: 1, gpu: 0}}
max_concurrent: {slots}
"""
REUSE = "reuse_workers: true\n"
FRESH = "reuse_workers: false\n"


def spec_text(quick: bool, slots: int) -> str:
    if quick:
        return SPEC.format(train=128, models="[testnet, unet_shallow]",
                           losses="[categorical_crossentropy]", epochs=2, slots=slots)
    return SPEC.format(train=384, models="[testnet, unet_shallow, segnet_shallow]",
                       losses="[categorical_crossentropy, dice]", epochs=3, slots=slots)


STEPS = (("setup_process_s", "trial set-up: worker -> data (process, imports, MLflow run)"),
         ("setup_data_s", "trial set-up: data"),
         ("setup_model_s", "trial set-up: model build"),
         ("setup_compile_s", "trial set-up: compile (model built -> first step)"),
         ("trace_s", "tracing (first epoch minus the later ones' median)"),
         ("final_seconds", "trial end: test split, cases, cost, MLflow model and picture"),
         ("cost_seconds", "  of which cost (cached after an architecture's first trial)"))


def zoobench_share(trials: pd.DataFrame, history: pd.DataFrame, start: float, wall: float,
                   slots: int) -> list[tuple[str, float, float]]:
    """Where zoobench's own time goes, from ``trials.parquet``'s timeline: rows of
    ``(step, median per trial s, slot-seconds)``; the driver's start-up and the command's
    end are once per command (their slot-seconds are their seconds)."""
    traces = {}
    for trial_id, rows in history.sort_values("epoch").groupby("trial_id"):
        seconds = rows["epoch_seconds"].tolist()
        if len(seconds) > 1:
            traces[trial_id] = seconds[0] - statistics.median(seconds[1:])
    per_trial = trials.set_index("trial_id")
    per_trial = per_trial.assign(trace_s=pd.Series(traces, dtype="float64"))
    startup = trials["started_at"].min().timestamp() - start
    ending = wall - (trials["ended_at"].max().timestamp() - start)
    rows = [("driver start-up: command start -> first trial started", startup, startup)]
    for column, words in STEPS:
        if column in per_trial and per_trial[column].notna().any():
            values = per_trial[column].astype("float64").dropna()
            rows.append((words, float(values.median()), float(values.sum()) / slots))
    rows.append(("command end: last trial ended -> exit (tables, MLflow, interpreter)",
                 ending, ending))
    return rows


def _cpu_sampler(cpu: bool) -> contextlib.AbstractContextManager:
    """``CpuByRole`` when ``--cpu`` asks for it (its sampling costs ~1 % of a core)."""
    return CpuByRole() if cpu else contextlib.nullcontext()


def _cpu_figures(sampler: object) -> dict[str, float]:
    """``cpu <role>`` seconds and the machine's idle seconds of a ``CpuByRole``, or none."""
    if not isinstance(sampler, CpuByRole):
        return {}
    return {**{f"cpu {name}": seconds for name, seconds in sampler.seconds().items()},
            "machine idle": sampler.idle_s}


def run_checkout(checkout: Path, spec: Path, results: Path, slots: int, cpu: bool = False
                 ) -> tuple[dict[str, float], list[tuple[str, float, float]]]:
    """One ``zoobench sweep`` of ``spec`` with ``checkout`` on PYTHONPATH; its figures and
    ``zoobench_share`` (with ``cpu``, also the CPU seconds of its processes by role)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.time()
    with _cpu_sampler(cpu) as sampler:
        done = subprocess.run([sys.executable, "-m", "bench", "sweep", str(spec),
                               "--results", str(results)], env=env, cwd=results.parent,
                              capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0:
        sys.exit(f"{checkout}: zoobench sweep exited {done.returncode}\n{done.stderr[-3000:]}")
    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet")
    first_step = trials["first_step_at"].min().timestamp() - start
    figures = {"wall_s": wall, "trials": len(trials),
               "train_s": float(history["epoch_seconds"].sum()),
               "efficiency": float(history["epoch_seconds"].sum()) / (slots * wall),
               "first_step_s": first_step,
               "console_lines": len(done.stdout.splitlines()) + len(done.stderr.splitlines())}
    for column in ("setup_process_s", "setup_data_s", "setup_model_s", "setup_compile_s",
                   "final_seconds"):
        if column in trials and trials[column].notna().any():
            figures[column] = float(trials[column].median())
    traces = []
    for _, rows in history.sort_values("epoch").groupby("trial_id"):
        seconds = rows["epoch_seconds"].tolist()
        if len(seconds) > 1:
            traces.append(seconds[0] - statistics.median(seconds[1:]))
    if traces:
        figures["trace_s"] = statistics.median(traces)
        # Tracing counts as training above; this one counts only steady epochs' time.
        figures["efficiency_untraced"] = ((figures["train_s"] - sum(traces))
                                          / (slots * wall))
    start_to_step = (trials["first_step_at"] - trials["started_at"]).dt.total_seconds()
    figures["start_to_step_s"] = float(start_to_step.median())
    figures.update(_cpu_figures(sampler))
    return figures, zoobench_share(trials, history, start, wall, slots)


def run_floor(kind: str = "tune", quick: bool = False,
              lean_import: bool = False, cpu: bool = False) -> dict[str, float]:
    """``ray_floor.py --<kind>``'s figures (its ``<kind>: key value, ...`` line), its wall
    and first step measured as a sweep's are: from its launch, the wall to its exit (with
    ``cpu``, also the CPU seconds of its processes by role)."""
    launched = time.time()
    with _cpu_sampler(cpu) as sampler:
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("ray_floor.py")),
                               f"--{kind}", *(["--quick"] if quick else []),
                               *(["--lean-import"] if lean_import else [])],
                              env={**os.environ, "PYTHONPATH": str(ROOT),
                                   "RAY_FLOOR_LAUNCHED_AT": repr(launched)},
                              capture_output=True, text=True)
    wall = time.time() - launched
    label = {"ray": "ray", "tune": "tune", "processes": "processes"}[kind]
    line = next((x for x in done.stdout.splitlines() if x.startswith(f"{label}: ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"ray_floor.py exited {done.returncode}\n{done.stderr[-3000:]}")
    pairs = (item.rsplit(" ", 1) for item in line.removeprefix(f"{label}: ").split(", "))
    return {**{key: float(value) for key, value in pairs}, "wall_s": wall,
            **_cpu_figures(sampler)}


def cpu_lines(zoobench: list[dict[str, float]], floor: list[dict[str, float]]) -> list[str]:
    """``--cpu``: each role's CPU seconds, zoobench against the floor (medians over runs),
    and the difference: on a machine whose cores are all busy, zoobench's wall over the
    floor's follows its extra CPU seconds over the cores."""
    keys = [k for k in dict.fromkeys([*zoobench[0], *floor[0]])
            if k.startswith("cpu ") or k == "machine idle"]
    lines = [f"CPU seconds by role (median of {len(zoobench)} run(s) each): zoobench, floor, "
             f"difference"]
    for key in keys:
        ours = statistics.median(run.get(key, 0.0) for run in zoobench)
        theirs = statistics.median(run.get(key, 0.0) for run in floor)
        lines.append(f"  {key.removeprefix('cpu '):<22} {ours:7.1f} {theirs:7.1f} "
                     f"{ours - theirs:+7.1f}")
    return lines


def checkout_spec_lines(args: argparse.Namespace) -> str:
    """The spec lines this checkout's run adds (``--reuse-workers`` / ``--fresh-workers``,
    ``--log-models``)."""
    workers = REUSE if args.reuse_workers else FRESH if args.fresh_workers else ""
    return workers + (f"log_models: {args.log_models}\n" if args.log_models else "")


def repeat(args: argparse.Namespace) -> None:
    """``--repeat N --floor``: N pairs of this checkout's sweep and the floor, alternating
    which runs first, since one run's wall moves by ±10 % with the machine; each pair's
    wall ratio and first-step difference, then their medians (the figures to quote)."""
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    extra = checkout_spec_lines(args)
    ratios, steps = [], []
    sides: dict[str, list[dict[str, float]]] = {"zoobench": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="zoobench-throughput-") as tmp:
        spec = Path(tmp) / "throughput.yaml"
        spec.write_text(spec_text(args.quick, args.slots) + extra)
        for pair in range(args.repeat):
            runs: dict[str, dict[str, float]] = {}
            for side in (("zoobench", "floor") if pair % 2 == 0 else ("floor", "zoobench")):
                if side == "floor":
                    runs[side] = run_floor(args.floor_kind, args.quick, args.floor_lean_import,
                                           args.cpu)
                else:
                    runs[side] = run_checkout(ROOT, spec, Path(tmp) / f"run{pair}",
                                              args.slots, args.cpu)[0]
                sides[side].append(runs[side])
            ratio = runs["zoobench"]["wall_s"] / runs["floor"]["wall_s"]
            step = runs["zoobench"]["first_step_s"] - runs["floor"]["first_step_s"]
            ratios.append(ratio)
            steps.append(step)
            print(f"pair {pair + 1} ({'zoobench' if pair % 2 == 0 else 'floor'} first): wall "
                  f"{runs['zoobench']['wall_s']:.1f} / {runs['floor']['wall_s']:.1f} s = "
                  f"{ratio:.2f}x, first step {runs['zoobench']['first_step_s']:.1f} / "
                  f"{runs['floor']['first_step_s']:.1f} s = {step:+.1f} s, training "
                  f"{runs['zoobench']['train_s']:.1f} / {runs['floor']['train_s']:.1f} s",
                  flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"median of {args.repeat} pairs: wall {statistics.median(ratios):.2f}x the floor "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}), first step "
          f"{statistics.median(steps):+.1f} s (range {min(steps):+.1f} to {max(steps):+.1f})")
    if args.cpu:
        print("\n".join(cpu_lines(sides["zoobench"], sides["floor"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", type=Path, help="another checkout to run first")
    parser.add_argument("--slots", type=int, default=2)
    workers = parser.add_mutually_exclusive_group()
    workers.add_argument("--reuse-workers", action="store_true",
                         help="warm workers (reuse_workers: true) in this checkout's run")
    workers.add_argument("--fresh-workers", action="store_true",
                         help="a fresh worker per trial (reuse_workers: false) here")
    parser.add_argument("--floor", action="store_true",
                        help="also run ray_floor.py --tune and print the figures against it")
    parser.add_argument("--floor-kind", choices=("tune", "ray", "processes"), default="tune",
                        help="which floor --floor runs (default: bare Tune)")
    parser.add_argument("--floor-lean-import", action="store_true",
                        help="the floor's workers import TensorFlow as zoobench's do "
                             "(ray_floor.py --lean-import)")
    parser.add_argument("--log-models", choices=("all", "none"),
                        help="this checkout's spec gets log_models: all | none (default: the "
                             "spec's default, all)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="with --floor: N pairs of runs, zoobench and the floor, the "
                             "one that goes first alternating; prints each pair's ratios "
                             "and their medians")
    parser.add_argument("--cpu", action="store_true",
                        help="also sample the CPU seconds of each run's processes by role "
                             "(driver, spec check child, trial workers, Ray's own) and "
                             "print them, zoobench against the floor")
    args = parser.parse_args()
    if args.repeat > 1:
        if not args.floor or args.baseline:
            parser.error("--repeat needs --floor and no --baseline")
        repeat(args)
        return
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    runs, shares = {}, {}
    with tempfile.TemporaryDirectory(prefix="zoobench-throughput-") as tmp:
        spec = Path(tmp) / "throughput.yaml"
        checkouts = ([("before", args.baseline)] if args.baseline else []) + [("after", ROOT)]
        for label, checkout in checkouts:
            text = spec_text(args.quick, args.slots)
            extra = checkout_spec_lines(args)
            spec.write_text(text + (extra if label == "after" else ""))
            runs[label], shares[label] = run_checkout(checkout.resolve(), spec,
                                                      Path(tmp) / label, args.slots, args.cpu)
            print(f"{label}: " + ", ".join(f"{k} {v:.3g}" for k, v in runs[label].items()),
                  flush=True)
    if args.floor:
        runs["floor"] = run_floor(args.floor_kind, args.quick, args.floor_lean_import,
                                  args.cpu)
        print("floor: " + ", ".join(f"{k} {v:.3g}" for k, v in runs["floor"].items()),
              flush=True)
    print(f"load average after: {os.getloadavg()}")
    if "floor" in runs:
        after, floor = runs["after"], runs["floor"]
        print(f"against the floor (ray_floor.py --{args.floor_kind}, the same trainings):")
        for key in ("wall_s", "first_step_s"):
            print(f"  {key}: zoobench {after[key]:.1f} s, floor {floor[key]:.1f} s, ratio "
                  f"{after[key] / floor[key]:.2f}, zoobench + {after[key] - floor[key]:.1f} s")
        print(f"  efficiency (not comparable: zoobench's epoch_seconds leave tracing out): "
              f"{after['efficiency']:.2f} vs {floor['efficiency']:.2f}")
        if args.cpu:
            print("\n".join(cpu_lines([after], [floor])))
    print(f"zoobench's own share, this checkout ({args.slots} slots; slot-s = sum / slots):")
    for words, median, slot_seconds in shares["after"]:
        print(f"  {words:<72} median {median:6.2f} s  slot-s {slot_seconds:6.1f}")
    if "before" in runs:
        before, after = runs["before"], runs["after"]
        for key in ("wall_s", "efficiency", "first_step_s", "start_to_step_s"):
            print(f"after/before {key}: {after[key] / before[key]:.2f}")


if __name__ == "__main__":
    main()
