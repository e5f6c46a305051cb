"""MLflow parent runs: a sweep is its name and its results folder (one tracking store, many
folders), found again on resume."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from bench.tracking import runs as tracking

REPO = Path(__file__).resolve().parent.parent


def _spec_text(client: MlflowClient, run_id: str) -> str:
    folder = client.download_artifacts(run_id, "spec.yaml")
    with open(folder) as handle:
        return handle.read()


def test_same_sweep_name_in_two_results_folders_gets_a_parent_run_each(tmp_path):
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    (tmp_path / "shared").mkdir()
    first, second = tmp_path / "a" / "results", tmp_path / "b" / "results"
    track_a = tracking.start_sweep(uri, first, "smoke", "epochs: 1\n", {"epochs": 1})
    track_b = tracking.start_sweep(uri, second, "smoke", "epochs: 5\n", {"epochs": 5})
    assert track_a.parent_run_id != track_b.parent_run_id

    client = MlflowClient(uri)
    for track, folder, epochs in ((track_a, first, "1"), (track_b, second, "5")):
        run = client.get_run(track.parent_run_id)
        assert run.data.params["epochs"] == epochs
        assert run.data.tags["zoobench.results"] == str(folder.resolve())
        assert _spec_text(client, track.parent_run_id) == f"epochs: {epochs}\n"

    # A resume of each finds its own parent again.
    assert tracking.start_sweep(uri, first, "smoke", "epochs: 1\n", {}).parent_run_id == \
        track_a.parent_run_id
    assert tracking.start_sweep(uri, second, "smoke", "epochs: 5\n", {}).parent_run_id == \
        track_b.parent_run_id

    # Trial runs are each parent's own: a trial of folder a is not one of folder b.
    client.create_run(track_a.experiment_id, tags={
        "mlflow.parentRunId": track_a.parent_run_id, tracking.TAG_SWEEP: "smoke",
        tracking.TAG_TRIAL: "t1", tracking.TAG_ROLE: "trial"})
    assert set(tracking.trial_run_ids(track_a, "smoke")) == {"t1"}
    assert tracking.trial_run_ids(track_b, "smoke") == {}


def _log_at_once(uri: str, results: str, index: int, barrier) -> str | None:
    """One trial process: its run, then the sweep's dataset logged as the others do."""
    track = tracking.start_sweep(uri, results, "race", "epochs: 1\n", {})
    run = tracking.TrialRun(track, f"t{index}", f"t_{index}", "race", {}, None)
    barrier.wait()
    run.log_dataset(tracking.dataset_input("shapes", "0123456789abcdef", {"train": 8}))
    run.end("FINISHED")
    return run.run_id


def test_trials_that_log_the_same_dataset_at_once_all_have_it(tmp_path):
    # The store looks for the dataset and then inserts it: trials that start together race
    # on its unique key (seen in CI as a run without its input). Each run must end with it.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "results"
    results.mkdir()
    tracking.start_sweep(uri, results, "race", "epochs: 1\n", {})  # tables made once
    context = multiprocessing.get_context("spawn")
    processes = 4
    with context.Manager() as manager, ProcessPoolExecutor(processes, context) as pool:
        barrier = manager.Barrier(processes)
        run_ids = list(pool.map(_log_at_once, [uri] * processes, [str(results)] * processes,
                                range(processes), [barrier] * processes))
    client = MlflowClient(uri)
    for run_id in run_ids:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [
            ("shapes", "0123456789abcdef")], run_id


def test_a_trial_s_run_starts_without_mlflow_s_notebook_context(tmp_path):
    """A worker's first trial makes its run with the client (no IPython import, 0.2 s)
    and the run carries the tags fluent ``start_run`` would have given it."""
    results = tmp_path / "results"
    results.mkdir()
    uri = tracking.default_tracking_uri(results)
    track = tracking.start_sweep(uri, results, "s", "name: s\n", {})
    code = f"""
import sys
import mlflow
from bench.tracking.runs import Tracking, TrialRun
run = TrialRun(Tracking({uri!r}, {track.experiment_id!r}, {track.parent_run_id!r}),
               "testnet x dice", "t_00000", "s", {{"lr": 0.001}}, None)
assert mlflow.active_run().info.run_id == run.run_id
run.end("FINISHED")
print(run.run_id, "IPython" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    run_id, ipython = done.stdout.split()
    assert ipython == "False"
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.info.run_name == "testnet x dice" and run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.001"}
    assert {k: run.data.tags[k] for k in ("mlflow.parentRunId", "mlflow.user",
                                          "mlflow.source.name", "zoobench.trial_id")} == {
        "mlflow.parentRunId": track.parent_run_id, "mlflow.user": getpass.getuser(),
        "mlflow.source.name": "zoobench sweep s", "zoobench.trial_id": "t_00000"}


def test_trial_run_ids_are_searched_only_when_a_trial_never_reported_its_run(tmp_path):
    """The sweep's end reads every trial run of the sweep only to name the run of a trial
    that failed before its first report; when every trial reported its run's id, it makes
    no search (one query that loads every run, per stage)."""
    from bench.results.records import TrialOutcome
    from bench.run.sweep import _trial_run_ids

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    track = tracking.start_sweep(uri, tmp_path / "results", "smoke", "epochs: 1\n", {})
    made = MlflowClient(uri).create_run(track.experiment_id, tags={
        "mlflow.parentRunId": track.parent_run_id, tracking.TAG_SWEEP: "smoke",
        tracking.TAG_TRIAL: "t1", tracking.TAG_ROLE: "trial"}).info.run_id

    def outcome(trial_id: str, metrics: dict) -> TrialOutcome:
        return TrialOutcome(trial_id, {}, metrics, [], None, None)

    reported = outcome("t0", {"mlflow_run_id": "run-of-t0"})
    assert _trial_run_ids(track, "smoke", [reported]) == {}  # t1's run is not read
    assert _trial_run_ids(track, "smoke", [reported, outcome("t1", {})]) == {"t1": made}
