"""The end of a sweep in MLflow: the driver sending each trial's final outbox copy again.

A trial's final checkpoint carries its MLflow outbox (the last epoch's metrics, the test
metrics at step E + 1), and the trial's own process sends the same entries right after it.
The driver cannot tell from the checkpoint whether that send happened, so at the end of
the sweep it delivers every such copy (``bench.tracking.outbox.deliver``). This script
makes a SQLite tracking store holding N trial runs as their processes leave them (3 epochs
of 16 metrics, a final step of 24, status FINISHED), copies it, and times the driver's
delivery of the N copies on each store, the same command:

* ``resend``: every copy sent again (``skip_sent=False``; MLflow's SQL store looks up
  each metric row and keeps one);
* ``ask first``: one query per run for the copy's last entry, then only the status
  (``skip_sent=True``, the default).

It prints the milliseconds per run of each, their ratio, and the metric rows each store
holds afterwards (they must be equal: nothing doubled, nothing lost).

    python tests/perf/sweep_end_mlflow.py [--runs 300]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

EPOCHS = 3
EPOCH_KEYS = [f"{split}_{name}" for split in ("train", "val") for name in (
    "loss", "mean_iou", "dice", "pixel_accuracy", "iou_0", "iou_1", "iou_2", "precision")]
FINAL_KEYS = [*EPOCH_KEYS, *(f"test_{name}" for name in (
    "loss", "mean_iou", "dice", "pixel_accuracy", "iou_0", "iou_1", "iou_2", "precision"))]


def make_store(uri: str, runs: int) -> list:
    """N trial runs as their processes leave them; the final outbox copy of each."""
    from mlflow.tracking import MlflowClient

    from bench.tracking.outbox import Outbox

    client = MlflowClient(uri)
    experiment = client.create_experiment("end")
    copies = []
    for i in range(runs):
        run_id = client.create_run(experiment, run_name=f"trial_{i}").info.run_id
        box = Outbox(uri, run_id)
        for epoch in range(1, EPOCHS):
            box.add_metrics({k: 0.001 * i + epoch for k in EPOCH_KEYS}, epoch)
            box.send(client)
        # The final epoch and the selected weights' test metrics: what the checkpoint carries.
        box.add_metrics({k: 0.001 * i + EPOCHS for k in EPOCH_KEYS}, EPOCHS)
        box.add_metrics({k: 0.002 * i for k in FINAL_KEYS}, EPOCHS + 1)
        box.status = "FINISHED"
        copies.append(copy.deepcopy(box))
        box.send(client)  # the trial's own process, right after its last report
    return copies


def metric_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from metrics").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    from bench.tracking.outbox import deliver

    with tempfile.TemporaryDirectory(prefix="zoobench-end-") as tmp:
        first = Path(tmp) / "resend.db"
        start = time.perf_counter()
        copies = make_store(f"sqlite:///{first}", args.runs)
        print(f"store of {args.runs} trial runs made in {time.perf_counter() - start:.1f} s",
              flush=True)
        second = Path(tmp) / "ask.db"
        shutil.copy(first, second)
        seconds = {}
        for name, path, skip in (("resend", first, False), ("ask first", second, True)):
            boxes = {f"t{i}": replace(box, uri=f"sqlite:///{path}")
                     for i, box in enumerate(copies)}
            start = time.perf_counter()
            left = deliver(boxes, Path(tmp) / name, "end", skip_sent=skip)
            seconds[name] = time.perf_counter() - start
            assert left.runs == 0, left
            print(f"{name}: {seconds[name] / args.runs * 1e3:.1f} ms a run "
                  f"({seconds[name]:.2f} s), metric rows after: {metric_rows(path)}",
                  flush=True)
        print(f"ask first / resend: {seconds['ask first'] / seconds['resend']:.2f}")


if __name__ == "__main__":
    main()
