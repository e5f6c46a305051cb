"""Resuming a killed sweep, and trials that fail (ERROR) or diverge (NAN) while others finish."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyarrow import fs as pafs

from bench.run.trial.resume_point import checkpoint_epoch
from tests.conftest import kill_sweep_when, run_cli

SPEC = """\
name: {name}
dataset: {{name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 32, val: 8}}
models: [testnet]
losses: {losses}
epochs: {epochs}
params: {params}
"""


def _write_spec(folder: Path, name: str, *, losses: str, epochs: int, params: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, losses=losses, epochs=epochs, params=params))
    return path


def _read(results: Path, table: str, sweep: str) -> pd.DataFrame:
    frame = pd.read_parquet(results / f"{table}.parquet")
    frame["sweep"] = frame["sweep"].astype(str)
    return frame[frame["sweep"] == sweep].reset_index(drop=True)


def _tracking(results: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")


@pytest.mark.slow  # real sweeps in subprocesses: ~70 s
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_killed_sweep_resumes_and_every_trial_trains_once(tmp_path, capsys):
    epochs = 4
    spec = _write_spec(tmp_path, "resumed", losses="[categorical_crossentropy, dice]",
                       epochs=epochs, params="{batch_size: 8, lr: 1.0e-3}")
    results = tmp_path / "results"
    argv = ["sweep", str(spec), "--results", str(results)]
    kill_sweep_when(argv, lambda: list((results / "ray" / "resumed").glob("*/checkpoint_*")),
                    waiting_for="its first checkpoint", within_s=400)
    assert not (results / "trials.parquet").exists()  # killed before the end

    assert run_cli(*argv) == 0
    trials = _read(results, "trials", "resumed")
    history = _read(results, "history", "resumed")
    assert len(trials) == 2 and trials["trial_id"].is_unique
    assert set(trials["status"]) == {"TERMINATED"}
    assert list(trials["epochs_done"]) == [epochs, epochs]
    # A resumed sweep continues its trials' starts: neither an attempt nor a retry.
    assert list(trials["attempts"]) == [1, 1]
    assert list(trials["machinery_retries"]) == [0, 0]
    for trial_id, rows in history.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, epochs + 1)), trial_id
        # The best epoch may be one before the kill: its weights came back from best.npz.
        trial = trials[trials["trial_id"] == trial_id].iloc[0]
        best = rows.sort_values("epoch").set_index("epoch")["val_mean_iou"].idxmax()
        assert trial["selected_epoch"] == best == trial["best_epoch"], trial_id
        assert 0.0 <= trial["test_mean_iou"] <= 1.0 and pd.notna(trial["test_loss"])
    client = _tracking(results)
    experiment = client.get_experiment_by_name("zoobench").experiment_id
    for trial in trials.itertuples():
        runs = client.search_runs([experiment],
                                  f"tags.`zoobench.trial_id` = '{trial.trial_id}'")
        assert [r.info.run_id for r in runs] == [trial.mlflow_run_id]  # continued, not new
        assert runs[0].info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(trial.mlflow_run_id, "val_loss")]
        # epochs, then the final (selected) step; each once: no epoch trained twice
        assert sorted(steps) == list(range(1, epochs + 2))

    # The same name with another spec is refused before anything starts.
    changed = _write_spec(tmp_path, "resumed", losses="[dice]", epochs=epochs,
                          params="{batch_size: 8, lr: 1.0e-3}")
    capsys.readouterr()
    assert run_cli("sweep", str(changed), "--results", str(results)) == 2
    assert "sweep 'resumed' already ran with another spec" in capsys.readouterr().err

    # Once more: nothing left to run, the same rows.
    spec.write_text(SPEC.format(name="resumed", losses="[categorical_crossentropy, dice]",
                                epochs=epochs, params="{batch_size: 8, lr: 1.0e-3}"))
    assert run_cli(*argv) == 0
    again = _read(results, "trials", "resumed")
    assert sorted(again["trial_id"]) == sorted(trials["trial_id"])
    assert list(again["epochs_done"]) == [epochs, epochs]


@pytest.mark.slow  # a real sweep in a subprocess, killed, then resumed: ~40 s
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_a_trial_that_ended_after_tunes_last_snapshot_keeps_its_end(tmp_path):
    """The driver is killed after the trial's last checkpoint but before Tune's experiment
    snapshot knew it (Tune snapshots on a timer, here one hour, and when a trial has
    written CHECKPOINTS_KEPT checkpoints since the last). Tune restarts the trial with no
    checkpoint; the trial finds its final one and reports its end again, as it was."""
    # Two trials, one after the other: the sweep (whose end Tune does snapshot) is not over.
    spec = _write_spec(tmp_path, "ended", losses="[categorical_crossentropy, dice]", epochs=1,
                       params="{batch_size: 8, lr: 1.0e-3}\nmax_concurrent: 1")
    results = tmp_path / "results"
    argv = ["sweep", str(spec), "--results", str(results)]
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "3600"}
    local = pafs.LocalFileSystem()
    whole = kill_sweep_when(
        argv, lambda: [p for p in (results / "ray" / "ended").glob("*/checkpoint_*")
                       if checkpoint_epoch(local, str(p)) == 1],
        waiting_for="a whole checkpoint", within_s=400, env=env, poll_s=0.2)
    (state_file,) = (results / "ray" / "ended").glob("experiment_state-*.json")
    (checkpoint,) = whole
    trial_id = checkpoint.parent.name
    snapshot = {json.loads(t[0])["trial_id"]: json.loads(t[0])["status"] for t in json.loads(
        state_file.read_text())["trial_data"]}
    assert snapshot.get(trial_id, "absent") != "TERMINATED"  # Tune did not know it ended
    ended = json.loads((checkpoint / "state.json").read_text())["result"]

    assert run_cli(*argv) == 0
    trials = _read(results, "trials", "ended").set_index("trial_id")
    assert list(trials["status"]) == ["TERMINATED"] * 2
    assert list(trials["epochs_done"]) == [1, 1]
    # the end reported before the kill, not a new one: the same test score, one start
    assert trials.loc[trial_id, "test_mean_iou"] == ended["test_mean_iou"]
    assert trials.loc[trial_id, "mlflow_run_id"] == ended["mlflow_run_id"]
    assert list(trials["attempts"]) == [1, 1]
    client = _tracking(results)
    steps = [m.step for m in client.get_metric_history(ended["mlflow_run_id"], "val_loss")]
    assert sorted(steps) == [1, 2]  # the epoch and the final (selected) step, once each


BOOM_PLUGIN = """\
import zoo


@zoo.register_model("boom", kind="image")
def build_boom(input_height, input_width, input_channels, n_classes):
    \"\"\"A model whose builder always fails: what a buggy user model does.\"\"\"
    raise ValueError("boom: this model cannot be built")
"""


@pytest.mark.slow  # real sweeps in subprocesses: ~70 s
@pytest.mark.faults  # CI runs these after the default suite (-m faults)
def test_failing_and_diverging_trials_are_recorded_and_others_finish(tmp_path, capsys):
    results = tmp_path / "results"
    # A plugin model whose builder raises passes validation (models at their defaults are
    # checked, not built) and fails in its trial; the trial next to it finishes.
    (tmp_path / "boom_plugin.py").write_text(BOOM_PLUGIN)
    failing = _write_spec(tmp_path, "failing", losses="[categorical_crossentropy]",
                          epochs=1, params="{batch_size: 8, lr: 1.0e-3}")
    failing.write_text(failing.read_text().replace("models: [testnet]",
                                                   "models: [testnet, boom]\n"
                                                   "plugins: [boom_plugin]"))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd(),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "bench", "sweep", str(failing), "--results",
                           str(results)], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "1 of 2 trials failed" in done.stderr
    trials = _read(results, "trials", "failing").set_index("model")
    ok, bad = trials.loc["testnet"], trials.loc["boom"]
    assert (ok["status"], ok["epochs_done"]) == ("TERMINATED", 1)
    assert bad["status"] == "ERROR" and bad["epochs_done"] == 0
    assert bad["error"].startswith("ValueError: boom: this model cannot be built")
    assert bad["attempts"] == 1  # a trial's own error is not retried
    # Only a trial that ended by itself is tested.
    assert pd.notna(ok["test_mean_iou"]) and ok["selected_epoch"] == 1
    assert pd.isna(bad["test_mean_iou"]) and pd.isna(bad["selected_epoch"])
    client = _tracking(results)
    run = client.get_run(bad["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert "cannot be built" in run.data.tags["zoobench.error"]

    # An absurd learning rate: the loss turns non-finite in the first epoch; the trial stops.
    diverging = _write_spec(tmp_path, "diverging", losses="[categorical_crossentropy]",
                            epochs=3, params="{batch_size: 8, lr: 1.0e+30, optimizer: sgd}")
    assert run_cli("sweep", str(diverging), "--results", str(results)) == 1
    nan = _read(results, "trials", "diverging").iloc[0]
    assert (nan["status"], nan["epochs_done"], nan["end_reason"]) == ("NAN", 1, "nan")
    assert nan["error"] == "loss became non-finite at epoch 1"
    assert pd.isna(nan["test_loss"]) and pd.isna(nan["selected_epoch"])  # diverged: not tested
    cases = pd.read_parquet(results / "cases.parquet")
    assert set(cases["trial_id"]) == {ok["trial_id"]}
    assert client.get_run(nan["mlflow_run_id"]).info.status == "FAILED"
    # The second sweep was added beside the first, not over it.
    every = pd.read_parquet(results / "trials.parquet")
    assert sorted(every["sweep"].astype(str).unique()) == ["diverging", "failing"]
