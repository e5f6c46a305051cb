"""What rewriting the tables as each trial ends costs at ~100 trials (``bench.run.live_tables``).

Synthetic trials shaped like the reference sweep's (its trials' configs and per-epoch rows,
repeated to N trials of E epochs, a checkpoint ``state.json`` each), then the rewrite a
finishing trial triggers, timed at N finished trials, and summed over the N completions of
a sweep (the k-th completion rewrites k trials). Printed against the reference sweep's
median trial duration (``results/reference/trials.parquet``, ``train_seconds``): the share
of a sweep's time spent rewriting Parquet, at 1 and at 8 trials at a time (the rewrites run
on the driver while the trials go on; the share is what they would cost if they did not).

    python tests/perf/live_tables.py [N] [EPOCHS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.run.live_tables import LiveTables  # noqa: E402
from bench.spec.model import load_spec  # noqa: E402


def _trials(root: Path, n: int, epochs: int) -> list[SimpleNamespace]:
    from ray.tune import Checkpoint

    reference = REPO / "results" / "reference"
    history = pd.read_parquet(reference / "history.parquet")
    keys = ["sweep", "trial_id", "model", "loss", "dataset", "seed", "epoch"]
    row = {k: float(v) for k, v in history.drop(columns=keys, errors="ignore").iloc[0].items()
           if isinstance(v, (int, float))}
    trials = []
    for i in range(n):
        folder = root / f"t{i:05d}"
        folder.mkdir()
        rows = [{"epoch": e, **row} for e in range(1, epochs + 1)]
        (folder / "state.json").write_text(json.dumps({"epoch": epochs, "history": rows,
                                                       "train_seconds": 10.0}))
        config = {"model": "testnet", "loss": "dice", "seed": i % 5, "lr": 1e-3,
                  "batch_size": 8, "optimizer": "adam", "weight_decay": 0.0,
                  "augment": False}
        last = {**rows[-1], "end_reason": "completed", "epochs_done": epochs,
                "train_seconds": 10.0, "timestamp": time.time(), "time_total_s": 10.0,
                "mlflow_run_id": f"run{i}", "test_mean_iou": 0.5, "selected_epoch": epochs}
        trials.append(SimpleNamespace(
            trial_id=f"trial{i:05d}", path=str(root / f"trial{i:05d}"), config=config,
            last_result=last, has_reported_at_least_once=True,
            checkpoint=Checkpoint.from_directory(str(folder)), status="TERMINATED",
            num_failures=0, error_file=None))
    return trials


def main(n: int = 100, epochs: int = 20) -> None:
    spec = load_spec(None, "perf")
    reference = pd.read_parquet(REPO / "results" / "reference" / "trials.parquet")
    trial_seconds = float(reference["train_seconds"].median())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ckpt").mkdir()
        trials = _trials(root / "ckpt", n, epochs)
        live = LiveTables(root / "results", spec, "final", "0", {"zoobench": "perf"})
        live.refresh(trials[:2])  # imports and first-write costs out of the timing
        start, cpu = time.perf_counter(), time.process_time()
        live.refresh(trials)
        at_n, at_n_cpu = time.perf_counter() - start, time.process_time() - cpu
        steps = (n // 4, n // 2, 3 * n // 4, n)
        cost = {}
        for k in steps:
            start = time.perf_counter()
            live.refresh(trials[:k])
            cost[k] = time.perf_counter() - start
    # The k-th completion rewrites k trials: sum the measured costs over k = 1..n
    # (linear between the measured sizes).
    total = sum(cost[min(steps, key=lambda s: abs(s - k))] * k / min(steps, key=lambda s:
                abs(s - k)) for k in range(1, n + 1))
    print(f"one rewrite with {n} finished trials x {epochs} epochs: {at_n * 1000:.0f} ms "
          f"wall, {at_n_cpu * 1000:.0f} ms CPU (wall/CPU {at_n / at_n_cpu:.1f}: how busy the "
          f"machine is)")
    print("per size: " + ", ".join(f"{k} trials {v * 1000:.0f} ms" for k, v in cost.items()))
    print(f"all {n} rewrites of a sweep: {total:.1f} s")
    print(f"reference trial (median train_seconds): {trial_seconds:.1f} s; one rewrite / one "
          f"trial = {at_n / trial_seconds:.2%}")
    for concurrency in (1, 8):
        sweep_seconds = n * trial_seconds / concurrency
        print(f"share of a {n}-trial sweep at {concurrency} trial(s) at a time "
              f"({sweep_seconds:.0f} s): {total / sweep_seconds:.2%}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
