"""What counts as an attempt (``bench.run.attempts``): the trial's own starts, apart from the
machinery's retries, and a machinery failure spends none of the spec's ``max_failures``.

The sweep test kills real trial workers by pid (found as ``tests/test_faults.py`` finds
them): one before the trial's code has counted its start (a failure of the machinery), one
after the trial's first checkpoint (the trial's own loss), under ``max_failures: 0``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.results import records
from bench.run.attempts import (
    MACHINERY_ALLOWANCE,
    STARTS_FILE,
    Attempts,
    TrialLostTooOftenError,
    check_start,
    count,
    read_marker,
    this_start,
    write_marker,
)

T1, T2 = "run-one", "run-two"  # two driver runs' tokens


# ---- counting a start


def test_first_start_is_one():
    assert this_start(None, None, T1) == 1


def test_retry_after_a_checkpoint_of_this_run_counts_one_more():
    # Tune retries a trial lost while it trained: its checkpoint says start 1, this run.
    assert this_start({"starts": 1, "run": T1}, {"starts": 1, "run": T1}, T1) == 2
    # Retried on another node: the marker is not there, the checkpoint still says so.
    assert this_start({"starts": 2, "run": T1}, None, T1) == 3


def test_retry_before_the_first_checkpoint_counts_from_the_marker():
    # Lost during its first epoch: no checkpoint, but its start was recorded.
    assert this_start(None, {"starts": 1, "run": T1}, T1) == 2


def test_a_resumed_sweep_continues_the_interrupted_start():
    # Ctrl-C, then the same command: a new driver run restores the checkpoint of the last.
    assert this_start({"starts": 1, "run": T1}, None, T2) == 1
    assert this_start({"starts": 2, "run": T1}, None, T2) == 2
    # ...and a loss after the resume, before its next checkpoint, is the next start.
    assert this_start({"starts": 2, "run": T1}, {"starts": 2, "run": T2}, T2) == 3


def test_a_checkpoint_written_before_starts_were_counted_is_one_start():
    assert this_start({"epoch": 3}, None, T1) == 1


def test_marker_round_trip(tmp_path):
    assert read_marker(tmp_path) is None
    write_marker(tmp_path / "trial", 2, T1)
    assert read_marker(tmp_path / "trial") == {"starts": 2, "run": T1}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / STARTS_FILE).write_text("{not json")
    assert read_marker(tmp_path / "bad") is None


@pytest.mark.parametrize(("max_failures", "allowed"), [(0, 1), (2, 3), (5, 6)])
def test_starts_past_max_failures_end_the_trial(max_failures, allowed):
    for start in range(1, allowed + 1):
        check_start(start, max_failures)  # within the user's retries: nothing
    with pytest.raises(TrialLostTooOftenError, match=f"max_failures {max_failures}"):
        check_start(allowed + 1, max_failures)


# ---- telling the machinery's retries from the trial's own


@pytest.mark.parametrize(("attempt", "num_failures", "expected"), [
    (None, 0, Attempts(1, 0)),   # never reported, never failed
    (1, 2, Attempts(1, 2)),      # the reference's pattern: 2 failures before any trial code
    (2, 1, Attempts(2, 0)),      # lost once while it trained, retried
    (3, 4, Attempts(3, 2)),      # both
    (2, 0, Attempts(2, 0)),      # never negative (a count Tune lost with its state)
])
def test_count(attempt, num_failures, expected):
    result = {"attempt": attempt} if attempt is not None else None
    assert count(result, num_failures) == expected


def test_outcome_carries_both_columns_into_the_trials_table(tmp_path):
    from bench.spec.model import parse_spec

    spec = parse_spec("name: counted\ndataset: {name: shapes}\nmodels: [testnet]\n"
                           "losses: [dice]\nepochs: 1\n")
    result = type("Result", (), {"path": str(tmp_path / "abc_00000"), "checkpoint": None,
                                 "config": {"model": "testnet", "loss": "dice", "seed": 0},
                                 "metrics": {"end_reason": "completed", "epoch": 1},
                                 "error": None})()
    outcome = records.outcome_from_result(result, tmp_path, attempts=2, machinery_retries=3)
    trials, _ = records.trial_rows([outcome], spec, versions={}, run_ids={},
                                   experiment_id="0", png_paths={})
    assert trials.loc[0, "attempts"] == 2
    assert trials.loc[0, "machinery_retries"] == 3
    assert str(trials["machinery_retries"].dtype) == "Int64"


# ---- a real sweep: the machinery's failure and the trial's own loss, max_failures 0

EPOCHS = 3
SPEC = f"""\
name: machinery
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 64, val: 8}}
models: [testnet]
losses: [categorical_crossentropy, dice]
seeds: [0]
epochs: {EPOCHS}
params: {{batch_size: 8, lr: 1.0e-3}}
resources: {{cpu: 1, gpu: 0}}
max_failures: 0
"""


def _working_dir_trial(cwd: str) -> str | None:
    """The trial a Ray worker works for, from its working folder (``.../working_dirs/<trial>``)."""
    path = Path(cwd)
    return path.name if path.parent.name == "working_dirs" else None


@pytest.mark.slow  # a real sweep, two workers killed and retried: ~85 s on 2 shared cores
@pytest.mark.faults
@pytest.mark.skipif(sys.platform != "linux", reason="finds its processes in /proc")
def test_machinery_failure_spends_no_retry_and_own_loss_does(tmp_path):
    from tests.test_faults import REPO, _kill_all, _trial_workers

    spec = tmp_path / "machinery.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    ray_tmpdir = tempfile.mkdtemp(prefix="zba-", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "sweep.log"
    with open(log, "wb") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(spec),
                                  "--results", str(results)], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    machinery = own = None
    try:
        deadline = time.monotonic() + 600
        while machinery is None or own is None:
            assert sweep.poll() is None, f"sweep ended first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no kill within 600 s"
            checkpointed = {p.parent.name for p in
                            (results / "ray" / "machinery").glob("*/checkpoint_*")}
            for pid, cwd in _trial_workers(ray_tmpdir).items():
                trial = _working_dir_trial(cwd)
                if trial is None:
                    continue
                if machinery is None and read_marker(Path(cwd)) is None:
                    # Up, in its trial's folder, still importing: the trial's code has not
                    # counted its start (bench.run.trial.run), so this is the machinery's.
                    os.kill(pid, signal.SIGKILL)
                    machinery = trial
                    break
                if own is None and trial != machinery and trial in checkpointed:
                    os.kill(pid, signal.SIGKILL)  # after its first epoch: its own loss
                    own = trial
                    break
            time.sleep(0.05)
        code = sweep.wait(timeout=900)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
        _kill_all(ray_tmpdir)
    output = log.read_text()
    assert code != 0, output[-4000:]  # one trial failed: the sweep says so in its exit status

    trials = pd.read_parquet(results / "trials.parquet").set_index("trial_id")
    history = pd.read_parquet(results / "history.parquet")
    # The machinery failed before the trial's code ran: retried although max_failures is 0,
    # finished, one attempt, one retry of the machinery.
    assert trials.loc[machinery, "status"] == "TERMINATED", trials.loc[machinery, "error"]
    assert trials.loc[machinery, "epochs_done"] == EPOCHS
    assert trials.loc[machinery, "attempts"] == 1
    assert trials.loc[machinery, "machinery_retries"] == 1
    epochs = sorted(history.loc[history["trial_id"] == machinery, "epoch"])
    assert epochs == list(range(1, EPOCHS + 1))
    # The trial's own loss under max_failures 0: its second start ends it, as an error.
    assert trials.loc[own, "status"] == "ERROR"
    assert trials.loc[own, "attempts"] == 2
    assert trials.loc[own, "machinery_retries"] == 0
    assert "max_failures 0" in trials.loc[own, "error"]
    # Killed right after its first checkpoint reached storage: Tune may not hold it yet,
    # and the retry starts over; its start is counted from the working folder's marker.
    assert trials.loc[own, "epochs_done"] < EPOCHS
    # Each retry is one line on the console; the summary names the machinery's.
    assert output.count("retrying  ") == 2, output[-4000:]
    assert "ActorDiedError" in output  # the retry's reason, from the driver's copy
    assert "1 retry of the machinery, not counted" in output


@pytest.mark.parametrize("max_failures", [0, 2])
def test_tune_retries_the_machinery_past_the_users_max_failures(max_failures):
    """Tune's own ``Trial`` with the sweep's ``FailureConfig``: it retries until the user's
    retries and the allowance are spent; the trainable ends a trial lost too often first."""
    from ray.tune.experiment import Trial

    trial = Trial("__fake", config={}, stub=True,
                  max_failures=max_failures + MACHINERY_ALLOWANCE)
    for failures in range(1, max_failures + MACHINERY_ALLOWANCE + 2):
        trial.run_metadata.num_failures = failures  # what Trial.handle_error adds up
        assert trial.should_recover() is (failures <= max_failures + MACHINERY_ALLOWANCE)
    # The first loss past the user's max_failures: Tune still retries it, so the trial's
    # next start runs, counts itself and ends the trial as an error.
    trial.run_metadata.num_failures = max_failures + 1
    assert trial.should_recover()
    with pytest.raises(TrialLostTooOftenError):
        check_start(max_failures + 2, max_failures)


def test_each_retry_is_one_progress_line():
    import io

    from ray.tune.experiment import Trial

    from bench.run.progress import ProgressView

    out = io.StringIO()
    view = ProgressView(1, "val_mean_iou", "max", out=out, clock=lambda: 100.0)
    trial = Trial("train_trial", config={"model": "testnet", "loss": "dice", "seed": 3},
                  trial_id="d4", stub=True)
    view.on_trial_start(0, [trial], trial)
    trial.run_metadata.num_failures = 1  # Tune counted the failure before the callback
    view.on_trial_recover(1, [trial], trial)
    assert out.getvalue().splitlines() == [
        "[  0:00] started   testnet x dice seed 3 (d4)",
        # a stub trial has no error file: the line still names the trial and the count
        "[  0:00] retrying  testnet x dice seed 3 (d4): error (Tune's failure 1)",
    ]
