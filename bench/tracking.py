"""MLflow: a parent run per sweep (driver side) and a child run per trial (trial side).

The trial logs its own run (params once, one batched ``log_metrics`` per epoch, the
model and the predictions PNG at the end) instead of Tune's ``MLflowLoggerCallback``,
which logs on the driver one key at a time and opens duplicate runs after a restore.
A resumed trial continues its own run: its id travels in the trial's checkpoint, and
as a fallback it is found again by the trial's tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

EXPERIMENT = "zoobench"
TAG_SWEEP = "zoobench.sweep"
TAG_TRIAL = "zoobench.trial_id"
TAG_ROLE = "zoobench.role"
TAG_RESULTS = "zoobench.results"  # the parent run's results folder: a sweep is name + folder
# MLflow 3's UI opens an experiment of this kind on its runs, not on the GenAI overview
# (the UI reads this tag; its other value is "genai_development").
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def source_tags(sweep: str) -> dict[str, str]:
    """The runs' source as the UI shows it: the command, not Ray's ``default_worker.py``."""
    return {"mlflow.source.name": f"zoobench sweep {sweep}", "mlflow.source.type": "JOB"}


@dataclass(frozen=True)
class Tracking:
    """Where a sweep's runs go: tracking URI, experiment id and the sweep's parent run id."""

    uri: str
    experiment_id: str
    parent_run_id: str


def default_tracking_uri(results: Path) -> str:
    """The local store under the results folder: ``sqlite:///<results>/mlflow.db``."""
    return f"sqlite:///{Path(results).resolve() / 'mlflow.db'}"


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/")) or "://" not in uri


def start_sweep(uri: str, results: Path, sweep: str, spec_yaml: str,
                params: dict[str, Any]) -> Tracking:
    """Create (or find again, on resume) the experiment and the sweep's parent run.

    A sweep is its name *and* its results folder: two sweeps called ``smoke`` in different
    folders logging to one tracking server get a parent run each (tag ``zoobench.results``).
    With a local store the experiment's artifacts go to ``<results>/mlartifacts`` by
    absolute path: trials run in Ray's temporary folders, where a relative default
    would scatter them.
    """
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = None
        if _is_local_store(uri):
            location = (Path(results).resolve() / "mlartifacts").as_uri()
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=location,
                                                 tags=EXPERIMENT_KIND)
    else:
        experiment_id = experiment.experiment_id
        if "mlflow.experimentKind" not in experiment.tags:  # made by an older zoobench
            client.set_experiment_tag(experiment_id, *next(iter(EXPERIMENT_KIND.items())))
    folder = str(Path(results).resolve())
    # The folder is matched here, not in the filter: a path may hold quotes.
    found = [run for run in client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_SWEEP}` = '{sweep}' and tags.`{TAG_ROLE}` = 'sweep'",
        max_results=10_000,
    ) if run.data.tags.get(TAG_RESULTS) == folder]
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run = client.create_run(experiment_id, run_name=sweep,
                                tags={TAG_SWEEP: sweep, TAG_ROLE: "sweep", TAG_RESULTS: folder,
                                      **source_tags(sweep)})
        run_id = run.info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, _param_text(value))
        client.log_text(run_id, spec_yaml, "spec.yaml")
    return Tracking(uri, experiment_id, run_id)


def finish_sweep(tracking: Tracking, trial_statuses: dict[str, str], failed: bool) -> None:
    """Close the parent run, and any child run a stopped trial left ``RUNNING``.

    ``trial_statuses`` maps MLflow run id to the trial's status in the records;
    a trial stopped by the scheduler is killed mid-fit and cannot end its own run.
    """
    client = MlflowClient(tracking_uri=tracking.uri)
    for run_id, status in trial_statuses.items():
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            continue
        if run.info.status == "RUNNING":
            client.set_terminated(
                run_id, "FAILED" if status in ("ERROR", "NAN") else "FINISHED"
            )
    client.set_terminated(tracking.parent_run_id, "FAILED" if failed else "FINISHED")


def trial_run_ids(tracking: Tracking, sweep: str) -> dict[str, str]:
    """Trial id → MLflow run id of the sweep's trial runs (for trials that never reported).

    Only the children of this sweep's parent run: another folder's sweep of the same name
    has its own.
    """
    client = MlflowClient(tracking_uri=tracking.uri)
    runs = client.search_runs(
        [tracking.experiment_id],
        filter_string=f"tags.`{TAG_SWEEP}` = '{sweep}' and tags.`{TAG_ROLE}` = 'trial' and "
                      f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'",
        max_results=10_000,
    )
    return {run.data.tags[TAG_TRIAL]: run.info.run_id for run in runs}


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's limit on a param value


class TrialRun:
    """The trial's own MLflow run, used from inside the trial process."""

    def __init__(self, tracking: Tracking, run_name: str, trial_id: str, sweep: str,
                 params: dict[str, Any], run_id: str | None) -> None:
        """Start the run, or continue ``run_id`` (or the run tagged with ``trial_id``)."""
        mlflow.set_tracking_uri(tracking.uri)
        if run_id is None:
            found = MlflowClient(tracking.uri).search_runs(
                [tracking.experiment_id],
                filter_string=f"tags.`{TAG_TRIAL}` = '{trial_id}' and "
                              f"tags.`{TAG_SWEEP}` = '{sweep}' and "
                              f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'",
                max_results=1,
            )
            run_id = found[0].info.run_id if found else None
        if run_id is not None:
            self.run = mlflow.start_run(run_id=run_id)
        else:
            self.run = mlflow.start_run(
                experiment_id=tracking.experiment_id,
                run_name=run_name,
                tags={"mlflow.parentRunId": tracking.parent_run_id, TAG_SWEEP: sweep,
                      TAG_TRIAL: trial_id, TAG_ROLE: "trial", **source_tags(sweep)},
            )
            mlflow.log_params({key: _param_text(value) for key, value in params.items()})
        self.run_id = self.run.info.run_id

    def log_epoch(self, metrics: dict[str, float], epoch: int) -> None:
        """One batched call per epoch; ``epoch`` is 1-based and is MLflow's step."""
        mlflow.log_metrics(metrics, step=epoch)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_param(self, key: str, value: Any) -> None:
        mlflow.log_param(key, _param_text(value))

    def set_error(self, message: str) -> None:
        """Record why the trial failed (tag ``zoobench.error``, first 5000 characters)."""
        mlflow.set_tag("zoobench.error", message[:5000])

    def end(self, status: str) -> None:
        """``FINISHED``, ``FAILED`` or ``KILLED``."""
        mlflow.end_run(status=status)
