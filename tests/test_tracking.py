"""MLflow parent runs: a sweep is its name and its results folder (one tracking store, many
folders), found again on resume."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from bench.tracking import runs as tracking


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
