"""Sweeps that survive faults: a trial worker SIGKILLed mid-trial is retried from its last
checkpoint, its own MLflow run and history continued, no epoch lost or counted twice.

The sweep runs in a subprocess with a ``RAY_TMPDIR`` of its own: the local Ray it starts (and
every worker) inherits it, which is how the test finds exactly its own trial workers in
/proc. Nothing is killed by name; what the test started is killed by pid at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="finds its processes in /proc")

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 5
# The kill must land while the trial still trains: with 64 images (0.1 s epochs) a trial
# could end between the test seeing its first checkpoint and the kill, and its retry then
# only reports the saved end again (attempts 1, one machinery retry: failed once in 4 CI
# runs). 1,024 images and 5 epochs leave ~3 s between a first checkpoint and the last.
SPEC = f"""\
name: killed
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 1024, val: 8}}
models: [testnet]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: {EPOCHS}
params: {{batch_size: 8, lr: 1.0e-3}}
max_failures: 2
"""


def _pids_with(name: str, value: str) -> list[int]:
    """Live processes whose environment holds ``name=value`` (not this one)."""
    needle = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


def _trial_workers(ray_tmpdir: str) -> dict[int, str]:
    """Pid -> working folder of the Ray workers running a trial (``ray::ImplicitFunc...``)."""
    workers = {}
    for pid in _pids_with("RAY_TMPDIR", ray_tmpdir):
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            if title.startswith(b"ray::ImplicitFunc"):
                workers[pid] = os.readlink(f"/proc/{pid}/cwd")
    return workers


def _kill_all(ray_tmpdir: str) -> None:
    for pid in _pids_with("RAY_TMPDIR", ray_tmpdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow  # a real sweep, SIGKILL and a retry: ~70 s
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_killed_trial_worker_is_retried_from_its_checkpoint(tmp_path):
    spec = tmp_path / "killed.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    ray_tmpdir = tempfile.mkdtemp(prefix="zbf-", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "sweep.log"
    with open(log, "wb") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(spec),
                                  "--results", str(results)], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    killed_dir = None
    try:
        deadline = time.monotonic() + 600
        # Wait for a trial's first checkpoint, then kill the worker of that trial.
        while killed_dir is None:
            assert sweep.poll() is None, f"sweep ended first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            checkpointed = {p.parent.name for p in
                            (results / "ray" / "killed").glob("*/checkpoint_*")}
            for pid, cwd in _trial_workers(ray_tmpdir).items():
                if Path(cwd).name in checkpointed:
                    os.kill(pid, signal.SIGKILL)
                    killed_dir = Path(cwd).name
                    break
            time.sleep(0.2)
        code = sweep.wait(timeout=900)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
        _kill_all(ray_tmpdir)
    output = log.read_text()
    assert code == 0, output[-4000:]

    trials = pd.read_parquet(results / "trials.parquet").set_index("trial_id")
    history = pd.read_parquet(results / "history.parquet")
    assert killed_dir in trials.index
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"], trials["error"]
    assert list(trials["epochs_done"]) == [EPOCHS, EPOCHS]
    assert trials.loc[killed_dir, "attempts"] == 2
    assert (trials.drop(index=killed_dir)["attempts"] == 1).all()
    assert list(trials["machinery_retries"]) == [0, 0]  # a loss while training is the trial's
    for trial_id, rows in history.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, EPOCHS + 1)), trial_id  # each once
    # Its own MLflow run, continued: every epoch once, at its step, with Parquet's value.
    client = MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("zoobench").experiment_id
    for trial_id, trial in trials.iterrows():
        runs = client.search_runs([experiment], f"tags.`zoobench.trial_id` = '{trial_id}'")
        assert [r.info.run_id for r in runs] == [trial["mlflow_run_id"]]
        assert runs[0].info.status == "FINISHED"
        points = client.get_metric_history(trial["mlflow_run_id"], "val_loss")
        # Epochs 1..E, then step E + 1: the selected epoch's values (the run's final).
        assert sorted(p.step for p in points) == list(range(1, EPOCHS + 2)), trial_id
        parquet = history[history["trial_id"] == trial_id].set_index("epoch")["val_loss"]
        for point in (p for p in points if p.step <= EPOCHS):
            assert point.value == pytest.approx(parquet[point.step]), (trial_id, point.step)
