"""Tables written as trials finish, readable while the sweep runs; a full disk keeps the
previous version of a table and says which file in one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench.common.errors import UsageError
from bench.results import records
from bench.results.leaderboard import load_results
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent


def test_full_disk_keeps_the_previous_table_and_names_the_file(tmp_path, monkeypatch):
    old = pd.DataFrame({"trial_id": ["a"], "val_mean_iou": [0.5]})
    path = records.write_table(tmp_path, "trials", "s", old)

    def full(self, target, *args, **kwargs):  # half a file, then the disk is full
        Path(target).write_bytes(b"PAR1")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(pq, "write_table", full)
    new = pd.DataFrame({"trial_id": ["a", "b"], "val_mean_iou": [0.5, 0.7]})
    with pytest.raises(UsageError) as raised:
        records.write_table(tmp_path, "trials", "s", new)
    message = str(raised.value)
    assert message == (f"{path}: cannot write (No space left on device); the previous "
                       f"version is kept")
    assert "\n" not in message
    monkeypatch.undo()
    kept = pd.read_parquet(path)
    assert list(kept["trial_id"]) == ["a"] and list(kept["val_mean_iou"]) == [0.5]
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]  # no temporary left


SPEC = """\
name: live
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8}
models: [testnet]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: 2
params: {batch_size: 8, lr: 1.0e-3}
max_concurrent: 1
# A fresh process for the second trial keeps the sweep running for a good while after the
# first trial's tables appear, while the test reads them.
reuse_workers: false
"""


@pytest.mark.slow  # a real sweep read while it runs: ~70 s
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_tables_are_written_as_trials_finish(tmp_path, capsys):
    spec = tmp_path / "live.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "sweep.log"
    with open(log, "wb") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(spec),
                                  "--results", str(results)], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    table = results / "trials.parquet"
    # The leaderboard is written last of the three (bench.run.live_tables): once its file is
    # there, the trials and history of the same refresh are too.
    last = records.table_path(results, "leaderboard", "live")
    try:
        deadline = time.monotonic() + 600
        while not last.exists():  # one trial at a time: the first one's rows come first
            assert sweep.poll() is None, f"sweep ended first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no table within 600 s"
            time.sleep(0.2)
        during = pd.read_parquet(table)
        history = pd.read_parquet(results / "history.parquet")
        parts = sorted(p.name for p in results.glob("trials.parquet/sweep=live/*"))
        loaded = load_results(results)[0]
        still_running = sweep.poll() is None
        capsys.readouterr()
        board_code = run_cli("leaderboard", "--results", str(results))
        code = sweep.wait(timeout=900)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    assert code == 0, log.read_text()[-4000:]
    assert still_running
    # Each trial once while the sweep runs (one part file per trial), as after it (part-0).
    assert during["trial_id"].is_unique and loaded["trial_id"].is_unique
    assert set(loaded["trial_id"]) == set(during["trial_id"])
    assert records.SCHEMA_PART in parts and "part-0.parquet" not in parts, parts
    assert len(parts) == 1 + len(during), parts
    finished = during[during["status"] == "TERMINATED"]
    assert len(finished) == 1 and int(finished["epochs_done"].iloc[0]) == 2
    # The other trial is training or not started yet: RUNNING, or not in the table.
    assert set(during["status"]) <= {"TERMINATED", "RUNNING"}
    assert len(history[history["trial_id"] == finished["trial_id"].iloc[0]]) == 2
    assert board_code == 0 and "testnet" in capsys.readouterr().out
    after = pd.read_parquet(table)
    assert list(after["status"]) == ["TERMINATED", "TERMINATED"]
    assert after["trial_id"].is_unique and len(load_results(results)[0]) == 2
    assert [p.name for p in (table / "sweep=live").iterdir()] == ["part-0.parquet"]


TWO = """\
name: {name}
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8}}
models: [testnet]
losses: [{loss}]
seeds: [0]
epochs: 1
params: {{batch_size: 8, lr: 1.0e-3}}
"""


@pytest.mark.slow  # two sweeps side by side on 2 cores: minutes; run with -m slow
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_two_sweeps_at_once_in_one_results_folder(tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    sweeps = {}
    for name, loss in (("first", "dice"), ("second", "categorical_crossentropy")):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(TWO.format(name=name, loss=loss))
        with open(tmp_path / f"{name}.log", "wb") as out:
            sweeps[name] = subprocess.Popen(
                [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        codes = {name: process.wait(timeout=900) for name, process in sweeps.items()}
    finally:
        for process in sweeps.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for name, code in codes.items():
        assert code == 0, (tmp_path / f"{name}.log").read_text()[-4000:]
    for table in ("trials", "history", "leaderboard", "cases"):
        frame = pd.read_parquet(results / f"{table}.parquet")
        assert sorted(frame["sweep"].astype(str).unique()) == ["first", "second"], table
    trials = pd.read_parquet(results / "trials.parquet")
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("zoobench").experiment_id
    parents = client.search_runs([experiment], "tags.`zoobench.role` = 'sweep'")
    assert sorted(r.data.tags["zoobench.sweep"] for r in parents) == ["first", "second"]
    assert all(r.info.status == "FINISHED" for r in parents)
