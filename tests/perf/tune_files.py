"""What Tune's own per-trial logger files cost a sweep's driver, at N trials.

Tune's driver adds three logger callbacks by default (CSV, JSON, TensorBoard): each writes
files for every trial into the experiment's staging folder on the driver, and every
experiment snapshot (at least every 10 s) copies that whole folder to the storage path with
``pyarrow.fs.copy_files``, every trial's files again. zoobench's sweeps leave the callbacks
out (``bench.run.tune_files``). For each N this script:

* makes N trials' folders as Tune does, once with the three callbacks fed one result per
  trial (zoobench's result: its metric, epoch and attempt beside the ``details`` text) and
  once without them, and prints the callbacks' CPU per trial;
* copies each staging folder to a storage folder as a snapshot does (``--copies`` times,
  median CPU of one copy), and prints that CPU per copy and per finished trial at
  ``--rate`` finished trials a second (a snapshot every 10 s: Tune's shortest period).

    python tests/perf/tune_files.py [--n 100 1000 5000] [--copies 3] [--rate 1.1]

The rate default is the 2-core machine's: 1,000 trials of ``many_trials.py`` in ~900 s.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

SNAPSHOT_PERIOD_S = 10.0  # Tune's shortest experiment snapshot period ("auto" mode)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads: pyarrow copies in threads
    return usage.ru_utime + usage.ru_stime


def make_staging(root: Path, n: int, loggers: bool) -> tuple[float, Path]:
    """N trial folders as Tune's driver leaves them after one result each (its storage
    under ``root``): the logger callbacks' CPU per trial in seconds (0 without them) and
    the experiment's staging folder on the driver."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    callbacks = [CSVLoggerCallback(), JsonLoggerCallback(), TBXLoggerCallback()] if loggers \
        else []
    details = json.dumps({f"metric_{i}": 0.1 * i for i in range(60)})  # ~1.7 KB, as a trial's
    trials = []
    base = StorageContext(storage_path=str(root / "storage"), experiment_dir_name="exp")
    for i in range(n):
        storage = copy.copy(base)  # as Tune gives each trial the experiment's storage
        storage.trial_dir_name = f"trial_{i:05d}"
        trial = Trial("__fake", config={"model": "tiny_net", "lr": 1e-3, "seed": i},
                      stub=True, storage=storage)
        os.makedirs(trial.local_path, exist_ok=True)  # Tune makes each trial's folder
        trials.append(trial)
    start = _cpu()
    for i, trial in enumerate(trials):
        result = {"epoch": 1, "val_mean_iou": 0.3, "epochs_done": 1, "attempt": 1,
                  "end_reason": "completed", "details": details, "training_iteration": 1,
                  "trial_id": trial.trial_id, "time_this_iter_s": 2.0, "time_total_s": 2.0,
                  "timestamp": int(time.time()), "config": trial.config, "done": True}
        for callback in callbacks:
            callback.on_trial_start(iteration=i, trials=trials, trial=trial)
            callback.on_trial_result(iteration=i, trials=trials, trial=trial, result=result)
            callback.on_trial_complete(iteration=i, trials=trials, trial=trial)
    return (_cpu() - start) / n, Path(trials[0].storage.experiment_driver_staging_path)


def copy_cpu(staging: Path, target: Path, copies: int) -> tuple[float, int]:
    """Median CPU seconds of one snapshot's copy of ``staging`` to ``target``; files copied."""
    import pyarrow.fs

    local = pyarrow.fs.LocalFileSystem()
    seconds = []
    for _ in range(copies):
        shutil.rmtree(target, ignore_errors=True)
        start = _cpu()
        pyarrow.fs.copy_files(str(staging), str(target), source_filesystem=local,
                              destination_filesystem=local)
        seconds.append(_cpu() - start)
    files = sum(len(names) for _, _, names in os.walk(staging))
    return statistics.median(seconds), files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1.1,
                        help="finished trials a second (default: 2 cores, many_trials.py)")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # Trial's folders
    try:
        print(f"one snapshot every {SNAPSHOT_PERIOD_S:g} s, {args.rate:g} trials finished a "
              f"second: {SNAPSHOT_PERIOD_S * args.rate:g} trials per snapshot")
        for n in args.n:
            for loggers in (True, False):
                with tempfile.TemporaryDirectory(prefix="zoobench-tune-files-") as tmp:
                    root = Path(tmp)
                    per_trial, staging = make_staging(root, n, loggers)
                    copy, files = copy_cpu(staging, root / "copy", args.copies)
                    shutil.rmtree(staging, ignore_errors=True)
                label = "Tune's loggers" if loggers else "zoobench (none)"
                print(f"N {n:>5}  {label:<15}  callbacks {per_trial * 1000:5.2f} ms/trial  "
                      f"staging {files:>6} files  snapshot copy {copy * 1000:7.1f} ms CPU  "
                      f"= {copy * 1000 / (SNAPSHOT_PERIOD_S * args.rate):6.2f} ms per "
                      f"finished trial", flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
