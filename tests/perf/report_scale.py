"""What ``zoobench leaderboard`` and ``zoobench report`` cost as a sweep grows (issue 28).

Result tables of N configurations are made from the shipped reference sweep
(``results/reference``): its final trials (5 seeds per configuration) copied N / 10 times,
each copy's model names suffixed ``~k``, its learning rate and batch size redrawn per copy
(so the report has a search to show) and its scores shifted a little (so the rows differ);
its history copied the same way; its prediction pictures shared. Each command then runs in
a subprocess of its own; printed: wall time, the subprocess' peak memory (``wait4``'s
``ru_maxrss``) and, for the report, the file's size.

    python tests/perf/report_scale.py [N ...]        # default: 10 100 500 2000

The numbers depend on the machine and on what else runs on it; say which when quoting them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "results" / "reference"
SWEEP = "scale"


def make_results(root: Path, n_configs: int, seed: int = 0) -> Path:
    """A results folder of ``n_configs`` configurations (a multiple of the reference's 10,
    rounded up) built from the reference's final trials; returns the folder."""
    trials = pd.read_parquet(REFERENCE / "trials.parquet")
    history = pd.read_parquet(REFERENCE / "history.parquet")
    if "stage" in trials:
        trials = trials[trials["stage"].astype(str) == "final"]
    history = history[history["trial_id"].isin(trials["trial_id"])]
    per_copy = trials.groupby(["model", "loss"]).ngroups
    copies = -(-n_configs // per_copy)
    rng = np.random.default_rng(seed)
    scored = [c for c in trials if c.startswith(("val_", "test_")) and
              pd.api.types.is_float_dtype(trials[c])]
    hist_scored = [c for c in history if c.startswith("val_") and
                   pd.api.types.is_float_dtype(history[c])]
    t_parts, h_parts = [], []
    for k in range(copies):
        lr = float(10 ** rng.uniform(-4, -2))
        batch = int(rng.choice([8, 16, 32, 64]))
        # Better near lr = 1e-3 and at small batches: a search with a good region to find.
        shift = 1.0 - 0.15 * abs(np.log10(lr) + 3) - 0.02 * np.log2(batch / 8)
        t = trials.assign(model=trials["model"].astype(str) + f"~{k}", lr=lr,
                          batch_size=batch, trial_id=trials["trial_id"].astype(str) + f"-{k}")
        t[scored] = t[scored] * shift
        h = history.assign(model=history["model"].astype(str) + f"~{k}",
                           trial_id=history["trial_id"].astype(str) + f"-{k}")
        h[hist_scored] = h[hist_scored] * shift
        t_parts.append(t)
        h_parts.append(h)
    out = root / f"n{n_configs}"
    for name, frames in (("trials.parquet", t_parts), ("history.parquet", h_parts)):
        part = out / name / f"sweep={SWEEP}" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        pd.concat(frames, ignore_index=True).drop(columns=["sweep"], errors="ignore") \
            .to_parquet(part)
    for png in trials["predictions_png"].dropna().astype(str):
        target = out / png
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(REFERENCE / png)
    return out


def measure(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` in a subprocess (output discarded); its wall seconds and peak MB."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main(sizes: list[int]) -> None:
    print("| configurations | trials | leaderboard s | leaderboard MB | report s | report MB "
          "| report file MB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results = make_results(Path(tmp), n)
            n_trials = len(pd.read_parquet(results / "trials.parquet", columns=["trial_id"]))
            bench = [sys.executable, "-m", "bench"]
            lb_s, lb_mb = measure([*bench, "leaderboard", "--results", str(results),
                                   "--format", "csv"])
            out = results / "report.html"
            rep_s, rep_mb = measure([*bench, "report", "--results", str(results),
                                     "--out", str(out)])
            size = out.stat().st_size / 1e6
            print(f"| {n} | {n_trials} | {lb_s:.1f} | {lb_mb:.0f} | {rep_s:.1f} | {rep_mb:.0f} "
                  f"| {size:.2f} |", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 500, 2000])
