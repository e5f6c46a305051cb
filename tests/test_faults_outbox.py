"""The MLflow outbox (real MLflow SQLite store, no server) and how a trial's own error is
recorded (an ``error`` end reported by the trial, never retried)."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from bench.results import records
from bench.spec.model import load_spec
from bench.tracking import outbox
from bench.tracking import runs as tracking


def _store(tmp_path) -> tuple[str, str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    track = tracking.start_sweep(uri, tmp_path, "s", "epochs: 2\n", {})
    return uri, track.experiment_id, track.parent_run_id


def test_resending_an_outbox_never_doubles_a_step(tmp_path):
    uri, experiment, parent = _store(tmp_path)
    create = {"experiment_id": experiment, "run_name": "t1",
              "tags": {"mlflow.parentRunId": parent, tracking.TAG_SWEEP: "s",
                       tracking.TAG_TRIAL: "t1", tracking.TAG_ROLE: "trial"}}
    box = outbox.Outbox(uri, None, create, params={"lr": "0.001"})
    box.add_metrics({"val_loss": 1.0, "val_mean_iou": 0.2}, 1)
    box.add_metrics({"val_loss": 0.5, "val_mean_iou": 0.4}, 2)
    saved = outbox.Outbox.from_dict(box.to_dict())  # what a checkpoint holds
    assert (box.steps(), box.empty()) == (2, False)
    box.send()
    assert box.empty() and box.run_id is not None
    # An older copy sent again (a retry, or the driver at the end): the same run is found
    # by its tags and no step appears twice.
    saved.status = "FINISHED"
    saved.send()
    assert saved.run_id == box.run_id
    client = MlflowClient(uri)
    history = client.get_metric_history(box.run_id, "val_loss")
    assert sorted((p.step, p.value) for p in history) == [(1, 1.0), (2, 0.5)]
    run = client.get_run(box.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.001"}


def test_a_copy_the_run_already_holds_sends_only_its_status(tmp_path):
    """The driver's copy of a final checkpoint's outbox: when the trial's process sent the
    same entries, only the status goes; when it sent none or part, everything goes."""
    import copy

    uri, experiment, _ = _store(tmp_path)
    client = MlflowClient(uri)
    boxes, copies = {}, {}
    for name in ("sent", "unsent", "partly"):
        run_id = client.create_run(experiment, run_name=name).info.run_id
        box = outbox.Outbox(uri, run_id, tags={"zoobench.missing_artifacts": "model"})
        box.add_metrics({"val_loss": 1.0, "val_mean_iou": 0.2}, 1)
        box.add_metrics({"val_loss": 0.5, "test_mean_iou": 0.3}, 2)
        copies[name] = carried = copy.deepcopy(box)
        carried.status = "FINISHED"
        if name == "sent":
            box.send(client)
        elif name == "partly":  # the first step's entries only (the last one is missing)
            box.metrics = box.metrics[:2]
            box.send(client)
        boxes[name] = run_id
    asked = {name: box.sent_already(client) for name, box in copies.items()}
    assert asked == {"sent": True, "unsent": False, "partly": False}
    left = outbox.deliver(copies, tmp_path, "s")
    assert (left.runs, left.error) == (0, None)
    for name, run_id in boxes.items():
        history = client.get_metric_history(run_id, "val_loss")
        assert sorted((p.step, p.value) for p in history) == [(1, 1.0), (2, 0.5)], name
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED", name
        assert run.data.metrics["test_mean_iou"] == 0.3, name
        assert run.data.tags["zoobench.missing_artifacts"] == "model", name
    # An entry the run does not hold yet (a later step): asked, it goes.
    late = outbox.Outbox(uri, boxes["sent"])
    late.add_metrics({"val_loss": 0.4}, 3)
    assert not late.sent_already(client)


def test_undelivered_outboxes_are_saved_then_synced(tmp_path, capsys):
    uri, experiment, parent = _store(tmp_path)
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    run_id = MlflowClient(uri).create_run(experiment).info.run_id
    box = outbox.Outbox(dead, run_id)
    box.add_metrics({"val_loss": 1.0}, 1)
    outbox.bound_http_retries()
    left = outbox.deliver({"t1": box, "_sweep": outbox.Outbox(dead, parent, status="FAILED")},
                          tmp_path, "s")
    assert (left.runs, left.epochs) == (2, 1) and left.error
    assert sorted(p.name for p in outbox.folder(tmp_path, "s").iterdir()) == [
        "_sweep.json", "t1.json"]

    from bench.cli import main

    capsys.readouterr()
    assert main(["sync-mlflow", "--sweep", "s", "--results", str(tmp_path),
                 "--tracking-uri", uri]) == 0
    assert "sent 2 runs (1 epochs of metrics)" in capsys.readouterr().out
    assert list(outbox.folder(tmp_path, "s").iterdir()) == []
    client = MlflowClient(uri)
    assert [p.step for p in client.get_metric_history(run_id, "val_loss")] == [1]
    assert client.get_run(parent).info.status == "FAILED"


def test_a_trials_own_error_is_recorded_with_its_root_cause():
    spec = load_spec(None, "s")
    failed = records.TrialOutcome(
        "t1", {"model": "testnet", "loss": "dice", "seed": 0}, {
            "end_reason": "error", "epochs_done": 1, "mlflow_run_id": "r1",
            "error": "ValueError: dice: weights has 2 entries\n  more detail"},
        [{"epoch": 1, "val_mean_iou": 0.3, "train_loss": 1.0}], None, None, attempts=1)
    retried = records.TrialOutcome(
        "t2", {"model": "testnet", "loss": "dice", "seed": 1},
        {"end_reason": "completed", "epoch": 1},
        [{"epoch": 1, "val_mean_iou": 0.3, "train_loss": 1.0}], None, None, attempts=2)
    trials, _ = records.trial_rows([failed, retried], spec, versions={}, run_ids={},
                                   experiment_id="0", png_paths={})
    rows = trials.set_index("trial_id")
    assert rows.loc["t1", "status"] == "ERROR" and rows.loc["t1", "end_reason"] == "error"
    assert rows.loc["t1", "error"] == "ValueError: dice: weights has 2 entries"
    assert rows.loc["t1", "mlflow_run_id"] == "r1" and rows.loc["t1", "epochs_done"] == 1
    assert list(rows["attempts"]) == [1, 2]
    assert rows.loc["t2", "status"] == "TERMINATED"
    assert isinstance(trials["attempts"].dtype, pd.Int64Dtype)
