"""What measuring a trial's cost (FLOPs, latency, throughput, memory) adds to the trial.

Runs a sweep at the reference settings (``results/reference/spec.yaml``: digits on a
32x32 canvas, 384 training samples, batch 32, 4 epochs; by default the smallest and the
largest reference models, seed 0) and prints, per trial, ``cost_seconds`` against the
trial's training time and its whole wall time (Tune's start to end, which includes Ray's
worker start, data, model build, testing and MLflow logging). Goal: under 5% of the trial.
Both figures come from the same trial in the same command, so the machine's load affects
them alike.

    python tests/perf/cost_overhead.py [--models testnet "unet: {base_filters: 16}"]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = """\
name: cost_overhead
dataset: {{name: digits, height: 32, width: 32, train: 384, val: 128}}
models: [{models}]
losses: [categorical_crossentropy]
seeds: [0]
epochs: 4
params: {{batch_size: 32, lr: 1.0e-3, optimizer: adam}}
resources: {{cpu: 1, gpu: 0}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["testnet", "{segnet: {base_filters: 16}}"])
    args = parser.parse_args()
    import pandas as pd

    from bench.cli import main as cli

    with tempfile.TemporaryDirectory(prefix="zoobench-cost-") as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC.format(models=", ".join(args.models)))
        results = Path(tmp) / "results"
        code = cli(["sweep", str(spec), "--results", str(results)])
        trials = pd.read_parquet(results / "trials.parquet")
    wall = (trials["ended_at"] - trials["started_at"]).dt.total_seconds()
    table = pd.DataFrame({
        "model": trials["model"], "cost s": trials["cost_seconds"].round(2),
        "train s": trials["train_seconds"].round(1), "trial s": wall.round(1),
        "cost/train": (trials["cost_seconds"] / trials["train_seconds"]).round(3),
        "cost/trial": (trials["cost_seconds"] / wall).round(3),
        "latency ms": trials["latency_ms"].round(2), "flops": trials["flops"],
    })
    print(f"sweep exit status {code}")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
