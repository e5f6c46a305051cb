"""What a trial's end costs the driver's table callback as a sweep grows (live_tables).

No Ray: fake Tune trials with the attributes the callback reads (``trial_id``, ``path``,
``config``, ``last_result``, ``checkpoint``, ``status``, ...), each with a real checkpoint
folder holding a ``state.json`` shaped like the reference sweep's (its per-epoch rows, E
epochs). They end one after another, ``CONCURRENT`` of them running at each moment (so the
callback also writes running trials' parts), and each end is timed: wall and CPU of
``LiveTables.trial_ended``, the periodic leaderboard included when it falls on that end.
Printed: the mean and median cost of the trial ends around 100, 1,000 and 10,000 ended
trials (flat is the goal), the cost of one leaderboard at those sizes, the end-of-sweep
compaction, and the driver's resident memory.

    python tests/perf/live_tables.py [N=10000] [EPOCHS=5] [--board-every S]

``--board-every``: the leaderboard's interval (default ``BOARD_EVERY_S``, 30 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.results import records  # noqa: E402
from bench.run.live_tables import BOARD_EVERY_S, LiveTables  # noqa: E402
from bench.spec.model import load_spec  # noqa: E402

CONCURRENT = 8  # trials running while one ends
WINDOW = 50  # trial ends measured around each size


def _epoch_row() -> dict[str, float]:
    """One epoch's numbers from the reference sweep's history (their columns and values)."""
    history = pd.read_parquet(REPO / "results" / "reference" / "history.parquet")
    keys = ["sweep", "trial_id", "model", "loss", "dataset", "seed", "epoch"]
    return {k: float(v) for k, v in history.drop(columns=keys, errors="ignore").iloc[0].items()
            if isinstance(v, (int, float))}


def make_trials(root: Path, n: int, epochs: int) -> list[SimpleNamespace]:
    """``n`` fake Tune trials, all PENDING, each with a checkpoint holding ``state.json``."""
    from ray.tune import Checkpoint

    row = _epoch_row()
    rows = [{"epoch": e, **row} for e in range(1, epochs + 1)]
    state = json.dumps({"epoch": epochs, "history": rows, "train_seconds": 10.0})
    trials = []
    for i in range(n):
        folder = root / f"t{i:05d}"
        folder.mkdir()
        (folder / "state.json").write_text(state)
        config = {"model": "testnet", "loss": "dice", "seed": i, "lr": 1e-3,
                  "batch_size": 8, "optimizer": "adam", "weight_decay": 0.0,
                  "augment": False}
        last = {**rows[-1], "end_reason": "completed", "epochs_done": epochs,
                "training_iteration": epochs, "train_seconds": 10.0,
                "timestamp": time.time(), "time_total_s": 10.0, "mlflow_run_id": f"run{i}",
                "test_mean_iou": 0.5, "selected_epoch": epochs}
        trials.append(SimpleNamespace(
            trial_id=f"trial{i:05d}", path=str(root / f"trial{i:05d}"), config=config,
            last_result=last, has_reported_at_least_once=True,
            checkpoint=Checkpoint.from_directory(str(folder)), status="PENDING",
            num_failures=0, error_file=None))
    return trials


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("epochs", type=int, nargs="?", default=5)
    parser.add_argument("--board-every", type=float, default=BOARD_EVERY_S)
    args = parser.parse_args()
    n = args.n
    sizes = sorted({s for s in (100, 1_000, 10_000) if s <= n} | {n})
    spec = load_spec(None, "perf")
    print(f"load average before: {__import__('os').getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="zoobench-live-perf-") as tmp:
        root = Path(tmp)
        (root / "ckpt").mkdir()
        built = time.perf_counter()
        trials = make_trials(root / "ckpt", n, args.epochs)
        print(f"{n} fake trials with checkpoints in {time.perf_counter() - built:.1f} s",
              flush=True)
        live = LiveTables(root / "results", spec, "final", "0", {"zoobench": "perf"},
                          board_every_s=args.board_every)
        for trial in trials[:CONCURRENT]:
            trial.status = "RUNNING"
        walls, cpus = [], []
        boards: dict[int, tuple[float, float]] = {}
        start_all = time.perf_counter()
        for i, trial in enumerate(trials):
            start, cpu = time.perf_counter(), time.process_time()
            live.trial_ended(trials, trial, "TERMINATED")
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            trial.status = "TERMINATED"
            if i + CONCURRENT < n:
                trials[i + CONCURRENT].status = "RUNNING"
            if i + 1 in sizes:  # one leaderboard of everything so far, timed on its own
                start, cpu = time.perf_counter(), time.process_time()
                live.refresh(trials, force=True)
                boards[i + 1] = (time.perf_counter() - start, time.process_time() - cpu)
            if (i + 1) % 1000 == 0:
                print(f"  {i + 1} ended, {time.perf_counter() - start_all:.0f} s", flush=True)
        rss = _rss_mb()
        folder = records.table_path(root / "results", "trials", spec.name).parent
        read = time.perf_counter()
        during = pd.read_parquet(folder)
        read_s = time.perf_counter() - read
        assert len(during) == n and during["trial_id"].is_unique, len(during)
        compacting = time.perf_counter()
        records.compact(root / "results", "trials", spec.name, during)
        compact_s = time.perf_counter() - compacting
    print(f"per trial end (wall / CPU, ms; {CONCURRENT} running, {args.epochs} epochs, "
          f"leaderboard every {args.board_every:g} s):")
    for size in sizes:
        window = slice(max(0, size - WINDOW), size)
        wall, cpu = walls[window], cpus[window]
        board = boards.get(size, (float("nan"), float("nan")))
        print(f"  at {size:>6} trials: mean {statistics.mean(wall) * 1e3:6.1f} / "
              f"{statistics.mean(cpu) * 1e3:6.1f}, median {statistics.median(wall) * 1e3:6.1f} / "
              f"{statistics.median(cpu) * 1e3:6.1f}; one leaderboard "
              f"{board[0] * 1e3:.0f} / {board[1] * 1e3:.0f}")
    print(f"all {n} trial ends: {sum(walls):.1f} s wall, {sum(cpus):.1f} s CPU")
    print(f"reading the {n} parts as one table: {read_s:.2f} s; compacting them: "
          f"{compact_s:.2f} s; driver resident memory {rss:.0f} MiB")
    print(f"load average after: {__import__('os').getloadavg()}")


if __name__ == "__main__":
    main()
