"""A node lost mid-sweep: the two-node loopback cluster of ``tests/test_cluster.py`` loses its
second node (raylet, workers and all, SIGKILL) while a trial trains there. Tune retries that
trial from its last checkpoint on the surviving node; the sweep exits 0 with every trial
``TERMINATED``, every epoch in ``history.parquet`` and on the MLflow server exactly once.

Only processes this module started are killed, found by their parent chain from the second
node's ``ray start`` (never ``ray stop`` or a kill by name). Minutes: run with
``pytest -m slow tests/test_cluster_node_loss.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.test_cluster import Services, _tail, services  # noqa: F401  (the module's cluster)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="finds its processes in /proc"),
]

EPOCHS = 8
SPEC = textwrap.dedent(f"""\
    name: node-loss
    dataset: {{name: shapes, height: 16, width: 16, channels: 1, classes: 2, train: 64, val: 8,
              test: 8}}
    models: [testnet]
    losses: [categorical_crossentropy, dice]
    seeds: [0]
    epochs: {EPOCHS}
    params: {{batch_size: 8, lr: 1.0e-2}}
    scheduler: fifo
    metric: val_mean_iou
    mode: max
    resources: {{cpu: 1, gpu: 0}}
    max_failures: 2
    """)


def _children() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, for every live process."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # /proc/PID/stat: "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Ray's workers sit in process groups of their own
    below the raylet, so a process-group kill of ``ray start`` would miss them)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def _training_workers(pids: list[int]) -> dict[int, str]:
    """Pid -> trial folder name of those ``pids`` that are Ray workers running a trial."""
    workers = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                workers[pid] = Path(os.readlink(f"/proc/{pid}/cwd")).name
    return workers


@pytest.fixture(scope="module")
def lost_node(services: Services):  # noqa: F811  (the fixture imported above)
    """Run the sweep; once a trial on the second node has checkpointed, kill that node."""
    spec = services.root / "node-loss.yaml"
    spec.write_text(SPEC)
    results, storage = services.root / "results-node-loss", services.root / "storage-node-loss"
    sweep = services.start("sweep", [
        sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results),
        "--address", services.ray_address, "--tracking-uri", services.tracking_uri,
        "--storage", str(storage)])
    node = services.processes["ray-node"]
    killed: str | None = None
    deadline = time.monotonic() + 600
    while killed is None:
        assert sweep.poll() is None, f"sweep ended first:\n{_tail(services.root / 'sweep.log')}"
        assert time.monotonic() < deadline, "no trial checkpointed on the second node in 600 s"
        checkpointed = {p.parent.name for p in (storage / "node-loss").glob("*/checkpoint_*")}
        on_node = _training_workers(_descendants(node.pid))
        if any(folder in checkpointed for folder in on_node.values()):
            killed = next(folder for folder in on_node.values() if folder in checkpointed)
            for pid in _descendants(node.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            node.wait(timeout=30)
        time.sleep(0.2)
    returncode = sweep.wait(timeout=900)
    return returncode, killed, results


def test_the_sweep_survives_its_node_and_retries_the_trial(lost_node,
                                                           services: Services) -> None:  # noqa: F811
    returncode, killed, results = lost_node
    assert returncode == 0, _tail(services.root / "sweep.log", 6000)
    trials = pd.read_parquet(results / "trials.parquet").set_index("trial_id")
    assert killed in trials.index
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"], trials["error"]
    assert list(trials["epochs_done"]) == [EPOCHS, EPOCHS]
    assert trials.loc[killed, "attempts"] >= 2
    # The retried trial finished where a node was left: the head.
    surviving = set(services.node_ids) - {trials.loc[killed, "node_id"]}
    assert len(surviving) == 1
    assert trials["test_mean_iou"].between(0, 1).all()


def test_every_epoch_is_recorded_once_in_parquet_and_on_the_server(lost_node,
                                                                   services: Services) -> None:  # noqa: F811
    from mlflow import MlflowClient

    _, _, results = lost_node
    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet")
    client = MlflowClient(tracking_uri=services.tracking_uri)
    for row in trials.itertuples():
        epochs = sorted(history.loc[history["trial_id"] == row.trial_id, "epoch"])
        assert epochs == list(range(1, EPOCHS + 1)), row.trial_id
        steps = sorted(p.step for p in client.get_metric_history(row.mlflow_run_id, "val_loss"))
        # Epochs 1..E, then step E + 1: the selected epoch's values (the run's final).
        assert steps == list(range(1, EPOCHS + 2)), (row.trial_id, steps)
        assert client.get_run(row.mlflow_run_id).info.status == "FINISHED"
