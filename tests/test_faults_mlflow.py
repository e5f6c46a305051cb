"""A tracking server that goes away mid-sweep: trials keep training, Parquet has everything,
the sweep ends 0 with one warning line, and ``zoobench sync-mlflow`` later sends MLflow every
epoch of every run, once.

A real ``mlflow server`` on loopback (SQLite backend, artifacts served), started in its own
process group and stopped by that group's id; restarted on the same port and store.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 4
SPEC = f"""\
name: offline
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 64, val: 8}}
models: [testnet]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: {EPOCHS}
params: {{batch_size: 8, lr: 1.0e-3}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_server(root: Path, port: int) -> subprocess.Popen:
    with open(root / "mlflow.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
             "--artifacts-destination", str(root / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600  # minutes on a busy machine
    try:
        while not _healthy(f"http://127.0.0.1:{port}"):
            assert server.poll() is None, (root / "mlflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "MLflow server not up within 600 s"
            time.sleep(0.5)
    except BaseException:
        _stop(server)
        raise
    return server


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_server_killed_mid_sweep_then_synced(tmp_path, capsys):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(tmp_path, port)
    spec = tmp_path / "offline.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "sweep.log"
    with open(log, "wb") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(spec),
                                  "--results", str(results), "--tracking-uri", uri],
                                 env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not list((results / "ray" / "offline").glob("*/checkpoint_*")):
            assert sweep.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.2)
        _stop(server)  # mid-sweep: a trial has finished an epoch, none has finished
        code = sweep.wait(timeout=900)
    finally:
        _stop(sweep)
        _stop(server)
    output = log.read_text()
    assert code == 0, output[-4000:]
    warnings = [line for line in output.splitlines() if "zoobench: warning: MLflow" in line]
    assert len(warnings) == 1, output[-4000:]
    assert f"zoobench sync-mlflow --sweep offline --results {results}" in warnings[0]

    trials = pd.read_parquet(results / "trials.parquet")
    history = pd.read_parquet(results / "history.parquet")
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"]
    assert list(trials["epochs_done"]) == [EPOCHS, EPOCHS]
    assert len(history) == 2 * EPOCHS
    assert list((results / "outbox" / "offline").glob("*.json"))

    server = _start_server(tmp_path, port)
    try:
        capsys.readouterr()
        assert run_cli("sync-mlflow", "--sweep", "offline", "--results", str(results)) == 0
        assert "sync-mlflow: sent" in capsys.readouterr().out
        assert not list((results / "outbox" / "offline").glob("*.json"))
        client = MlflowClient(uri)
        for trial in trials.itertuples():
            run = client.get_run(trial.mlflow_run_id)
            assert run.info.status == "FINISHED", trial.trial_id
            for metric in ("val_loss", "val_mean_iou"):
                steps = [p.step for p in client.get_metric_history(trial.mlflow_run_id,
                                                                   metric)]
                # Epochs 1..E, then E + 1: the selected epoch's values (the run's final).
                assert sorted(steps) == list(range(1, EPOCHS + 2)), (trial.trial_id, steps)
            assert "test_mean_iou" in run.data.metrics
        # Once more: nothing left to send.
        assert run_cli("sync-mlflow", "--sweep", "offline", "--results", str(results)) == 0
        assert "nothing to send" in capsys.readouterr().out
    finally:
        _stop(server)
