"""Guards before a sweep starts: one run per sweep name (a lock that a killed run does not
leave stuck), a spec that may not change under a name (compared parsed, wherever Tune's
state lives), and an interrupted ASHA sweep that says it was interrupted."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.common.errors import UsageError
from bench.spec import guards
from tests.conftest import run_cli
from tests.test_resume import _read, _write_spec

HOLD_LOCK = """\
import sys, time
from bench.spec.guards import SweepLock
lock = SweepLock(sys.argv[1], sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def _hold_lock(results: Path, sweep: str) -> subprocess.Popen:
    """A process holding ``sweep``'s lock under ``results`` (as a running sweep would)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(results), sweep],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_running_sweep_name_refuses_a_second_run_until_its_owner_dies(tmp_path, capsys):
    results = tmp_path / "results"
    spec = _write_spec(tmp_path, "busy", losses="[dice]", epochs=1,
                       params="{batch_size: 8, lr: 1.0e-3}")
    holder = _hold_lock(results, "busy")
    try:
        assert run_cli("sweep", str(spec), "--results", str(results)) == 2
        err = capsys.readouterr().err
        lock = results.resolve() / "locks" / "busy.lock"
        assert err == (f"zoobench: error: sweep 'busy' is already running (host "
                       f"{socket.gethostname()}, pid {holder.pid}; lock {lock}); wait for it "
                       f"to end, or pick another --name\n")
        assert not (results / "trials.parquet").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed owner left its file behind, not its lock.
    with guards.SweepLock(results, "busy") as lock:
        assert lock.path.read_text().count(f'"pid": {os.getpid()}') == 1


def test_different_sweep_names_lock_apart_and_one_name_once(tmp_path):
    with (guards.SweepLock(tmp_path, "a"), guards.SweepLock(tmp_path, "b"),
          pytest.raises(UsageError, match=r"sweep 'a' is already running \(host .*, pid "
                                          rf"{os.getpid()}; lock .*a\.lock\)")):
        guards.SweepLock(tmp_path, "a").acquire()
    with guards.SweepLock(tmp_path, "a"):  # released on exit
        pass


def test_spec_copy_compares_parsed_yaml_and_reads_uris(tmp_path):
    source = "name: s\nmodels: [testnet]\nlosses: [dice]\nepochs: 2\n"
    # A storage URI stays a URI: pyarrow reads and writes it ("file://" here, "s3://" on a
    # cluster); Path() would have squashed "//".
    experiment = (tmp_path / "ray" / "s").as_uri()
    copies = guards.spec_copies(tmp_path / "results", experiment, "s")
    assert copies == [str(tmp_path / "results" / "specs" / "s.yaml"),
                      f"{experiment}/zoobench-spec.yaml"]
    guards.record_spec(source, copies)
    assert (tmp_path / "ray" / "s" / "zoobench-spec.yaml").read_text() == source
    # Comments, layout and key order do not change a spec.
    guards.check_same_spec("# a note\nepochs: 2\nlosses:\n  - dice\nmodels: [testnet]\n"
                           "name: s\n", "s", copies)
    changed = source.replace("epochs: 2", "epochs: 3")
    for kept in copies:  # either copy alone refuses a changed spec
        with pytest.raises(UsageError, match=r"sweep 's' already ran with another spec \("
                                             + kept.replace(".", r"\.")):
            guards.check_same_spec(changed, "s", [kept])
    with pytest.raises(UsageError, match=r"start it over with --restart"):
        guards.check_same_spec(changed, "s", copies)
    guards.check_same_spec(changed, "new", [str(tmp_path / "nowhere.yaml")])  # a new sweep


def test_results_must_be_a_usable_folder(tmp_path):
    afile = tmp_path / "results.txt"
    afile.write_text("")
    with pytest.raises(UsageError, match=rf"^--results: {afile} is a file, not a folder$"):
        guards.usable_folder(afile)
    assert guards.usable_folder(tmp_path / "new" / "results") == tmp_path / "new" / "results"


@pytest.mark.slow  # a real sweep, interrupted: ~45 s
def test_interrupted_asha_sweep_exits_130_with_its_trials_unfinished(tmp_path, capsys):
    # ASHA with a grace period of 2 epochs stops nothing before epoch 2: Ctrl-C at the first
    # checkpoint interrupts both trials, which the old code labelled scheduler stops (exit 0).
    spec = _write_spec(tmp_path, "asha_int", losses="[categorical_crossentropy, dice]",
                       epochs=4, params="{batch_size: 8, lr: 1.0e-3}\n"
                                        "scheduler: {asha: {grace_period: 2}}")
    results = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "sweep", str(spec), "--results", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 500
        while not list((results / "ray" / "asha_int").glob("*/checkpoint_*")):
            assert process.poll() is None, "the sweep ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 500 s"
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # Ctrl-C, to the driver
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err[-2000:]
    trials = _read(results, "trials", "asha_int")
    assert len(trials) == 2
    assert set(trials["end_reason"]) == {"interrupted"}, trials[["end_reason", "epochs_done"]]
    assert "zoobench: interrupted with 2 trials unfinished; run the same command again " \
           "to resume" in err
    assert "Tuner.restore" not in out + err  # zoobench's hint is the only one
    # The summary says how far each trial got (not "nan after 0/4 epochs").
    for trial in trials.itertuples():
        done = int(trial.epochs_done)
        expected = (f"interrupted after epoch {done}/4: val_mean_iou" if done
                    else "interrupted before epoch 1/4 ended")
        line = next(line for line in out.splitlines() if f"x {trial.loss} seed 0:" in line)
        assert expected in line and "nan" not in line, line
    # Whether Tune recorded the first checkpoint before the Ctrl-C depends on the machine's
    # load: both cases are checked above, line by line, against epochs_done.

    # Without Tune's state (deleted, or another --storage) the spec copy beside the Parquet
    # still refuses a changed spec instead of starting the name afresh over its rows.
    shutil.rmtree(results / "ray")
    changed = _write_spec(tmp_path, "asha_int", losses="[dice]", epochs=4,
                          params="{batch_size: 8, lr: 1.0e-3}\n"
                                 "scheduler: {asha: {grace_period: 2}}")
    capsys.readouterr()
    assert run_cli("sweep", str(changed), "--results", str(results)) == 2
    assert capsys.readouterr().err == (
        f"zoobench: error: --name: sweep 'asha_int' already ran with another spec "
        f"({results.resolve() / 'specs' / 'asha_int.yaml'}); resume it with the same spec, "
        f"start it over with --restart (its earlier results are archived), or pick another "
        f"--name\n")


def test_a_trial_larger_than_the_cluster_exits_2_once_ray_is_up(tmp_path, capsys):
    spec = _write_spec(tmp_path, "huge", losses="[dice]", epochs=1,
                       params="{batch_size: 8, lr: 1.0e-3}\nresources: {cpu: 64}")
    assert run_cli("sweep", str(spec), "--results", str(tmp_path / "results")) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after MLflow's and Ray's start-up logs
    assert last.startswith("zoobench: error: resources.cpu: a trial asks for 64 CPUs, but its "
                           "largest node has "), last
