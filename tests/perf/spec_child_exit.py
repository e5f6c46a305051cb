"""What the spec's child costs after its last job: the CPU it spends exiting, both ways.

``zoobench sweep`` checks the spec in a child process that loads TensorFlow
(``bench.spec.check_process``), then has it build the first datasets into the sweep's
cache; the child then ends while the first trials' workers import TensorFlow and start. An
interpreter that finalizes with TensorFlow loaded spends most of a second of CPU in its
exit handlers and module teardown; the child now skips that (``_leave_without_finalizing``,
its last exit handler). This script runs the child both ways in one command, alternating
which goes first, and prints for each run the child's CPU seconds from the end of its job to
its exit and the seconds until it was gone, then the medians and their ratio:

    python tests/perf/spec_child_exit.py [--repeat 4] [--spec SPEC.yaml]

The default spec is ``sweep_throughput.py``'s 6-trial benchmark (digits 32x32).
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far; None once it has ended."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:  # a zombie too: it has ended, its parent has yet to wait
        return None
    return times.user + times.system


def prebuild_then_finalize(folder: Path, datasets: list) -> int:
    """The sweep's job for the child, with the exit as it was before: the child finalizes."""
    from bench.run.data_cache import prebuild
    from bench.spec import check_process

    atexit.unregister(check_process._leave_without_finalizing)
    return prebuild(folder, datasets)


def one_run(spec: Path, finalize: bool) -> tuple[float, float]:
    """``(CPU seconds after the job, seconds until the child was gone)`` of one child."""
    from bench.run import data_cache
    from bench.run.sweep import first_datasets
    from bench.spec.check_process import PendingSpec

    with tempfile.TemporaryDirectory(prefix="zoobench-child-exit-") as tmp:
        folder = data_cache.open_cache(Path(tmp), "s")
        with PendingSpec(spec, None, verbose=False) as pending:
            checked = pending.result()
            child = pending._child
            assert child is not None
            job = pending.then(prebuild_then_finalize if finalize else data_cache.prebuild,
                               folder, first_datasets(checked))
            assert job is not None
            job.result()
            ended_job, before = time.perf_counter(), _cpu_seconds(child)
            last = before
            while (now := _cpu_seconds(child)) is not None:
                last = now
                time.sleep(0.005)
            gone = time.perf_counter() - ended_job
    return (last or 0.0) - (before or 0.0), gone


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from sweep_throughput import spec_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4, metavar="N",
                        help="runs each way, alternating which goes first (default 4)")
    parser.add_argument("--spec", type=Path, help="spec file (default: the 6-trial benchmark)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    figures: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="zoobench-child-exit-spec-") as tmp:
        spec = args.spec or Path(tmp) / "throughput.yaml"
        if args.spec is None:
            spec.write_text(spec_text(quick=False, slots=2))
        for i in range(args.repeat):
            for finalize in ((True, False) if i % 2 == 0 else (False, True)):
                cpu, gone = one_run(spec, finalize)
                figures[finalize].append((cpu, gone))
                way = "finalizing (before)" if finalize else "leaving at once (now)"
                print(f"run {i + 1}, {way:22}: CPU after the job {cpu:.2f} s, "
                      f"gone after {gone:.2f} s", flush=True)
    medians = {way: (statistics.median(c for c, _ in runs), statistics.median(g for _, g in runs))
               for way, runs in figures.items()}
    before, now = medians[True], medians[False]
    print(f"median CPU after the job: before {before[0]:.2f} s, now {now[0]:.2f} s "
          f"({now[0] / before[0]:.2f}x)" if before[0] else "")
    print(f"median time to be gone:   before {before[1]:.2f} s, now {now[1]:.2f} s "
          f"({now[1] / before[1]:.2f}x)" if before[1] else "")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
