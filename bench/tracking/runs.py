"""MLflow: a parent run per sweep (driver side) and a child run per trial (trial side).

The trial logs its own run (params once, one batched ``log_metrics`` per epoch, the
model and the predictions PNG at the end) instead of Tune's ``MLflowLoggerCallback``,
which logs on the driver one key at a time and opens duplicate runs after a restore.
A resumed trial continues its own run: its id travels in the trial's checkpoint, and
as a fallback it is found again by the trial's tags.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_USER

from bench.tracking import store_template
from bench.tracking.outbox import Outbox, bound_http_retries, find_run
from bench.tracking.tags import (  # noqa: F401  (re-exported)
    EXPERIMENT,
    TAG_DATASET,
    TAG_RESULTS,
    TAG_ROLE,
    TAG_SWEEP,
    TAG_TRIAL,
)

# MLflow 3's UI opens an experiment of this kind on its runs, not on the GenAI overview
# (the UI reads this tag; its other value is "genai_development").
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _user() -> str:
    """``mlflow.user`` as MLflow's own context sets it."""
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "unknown"


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
    """``_start_sweep``, tried again a few times on a local store.

    Two sweeps starting at once on one new SQLite store both create its tables; MLflow's
    migration then fails in one of them ("Online migration expected to match one row"),
    and may leave a half-made table behind: a SQLite store is set up under a file lock
    beside it. A server is asked once (its client retries).
    """
    tries = 5 if _is_local_store(uri) else 1
    for attempt in range(tries):
        try:
            with _store_lock(uri):
                store_template.install(uri)  # a new store made while the spec was checked
                return _start_sweep(uri, results, sweep, spec_yaml, params)
        except Exception:  # noqa: BLE001  (re-raised on the last try)
            if attempt == tries - 1:
                raise
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold ``<db>.zoobench-lock`` (``flock``, dropped if we die) for a SQLite ``uri``."""
    file = store_template.sqlite_file(uri)
    if file is None:
        yield
        return
    lock = file.with_name(f"{file.name}.zoobench-lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_sweep(uri: str, results: Path, sweep: str, spec_yaml: str,
                 params: dict[str, Any]) -> Tracking:
    """Create (or find again, on resume) the experiment and the sweep's parent run.

    A sweep is its name *and* its results folder: two sweeps called ``smoke`` in different
    folders logging to one tracking server get a parent run each (tag ``zoobench.results``).
    With a local store the experiment's artifacts go to ``<results>/mlartifacts`` by
    absolute path: trials run in Ray's temporary folders, where a relative default
    would scatter them.
    """
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client, uri, results)
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


def _experiment_id(client: MlflowClient, uri: str, results: Path) -> str:
    """The ``zoobench`` experiment's id, created if missing.

    Two sweeps starting at once (other names, one store) may both find none: the second
    create fails, and the experiment the first made is found again.
    """
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        if "mlflow.experimentKind" not in experiment.tags:  # made by an older zoobench
            client.set_experiment_tag(experiment.experiment_id,
                                      *next(iter(EXPERIMENT_KIND.items())))
        return experiment.experiment_id
    location = None
    if _is_local_store(uri):
        location = (Path(results).resolve() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=location,
                                        tags=EXPERIMENT_KIND)
    except mlflow.exceptions.MlflowException:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            raise
        return experiment.experiment_id


LEADERBOARD_TABLE = "leaderboard.json"  # the parent run's table artifact


def log_leaderboard(tracking: Tracking, board: Any) -> None:
    """The sweep's leaderboard (a DataFrame) as the parent run's table artifact
    ``leaderboard.json``: the UI shows it, ``MlflowClient().load_table(EXPERIMENT_ID,
    "leaderboard.json", run_ids=[PARENT])`` reads it back.

    Written as ``MlflowClient.log_table`` writes it (pandas JSON, orient ``split``, and the
    run's ``mlflow.loggedArtifacts`` tag), but replaced, not appended to, when a resumed
    sweep logs it again. Raises what MLflow raises (the caller decides).
    """
    import tempfile

    client = MlflowClient(tracking_uri=tracking.uri)
    frame = board.astype(object).where(board.notna(), None)
    with tempfile.TemporaryDirectory(prefix="zoobench-board-") as scratch:
        path = Path(scratch) / LEADERBOARD_TABLE
        frame.to_json(path, orient="split", index=False, date_format="iso")
        client.log_artifact(tracking.parent_run_id, str(path))
    tag = "mlflow.loggedArtifacts"
    logged = json.loads(client.get_run(tracking.parent_run_id).data.tags.get(tag, "[]"))
    entry = {"path": LEADERBOARD_TABLE, "type": "table"}
    if entry not in logged:
        client.set_tag(tracking.parent_run_id, tag, json.dumps([*logged, entry]))


TAG_RESTARTED = "zoobench.restarted_at"  # set on a sweep's runs that --restart retired


def sweep_runs(uri: str, results: Path, sweep: str) -> list[str]:
    """Run ids of ``sweep``'s parent run(s) in ``results`` and of their children (active
    runs only); [] when the store or the experiment does not exist yet."""
    file = store_template.sqlite_file(uri)
    if file is not None and not file.exists():
        return []
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    folder = str(Path(results).resolve())
    parents = [run.info.run_id for run in client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG_SWEEP}` = '{sweep}' and tags.`{TAG_ROLE}` = 'sweep'",
        max_results=10_000) if run.data.tags.get(TAG_RESULTS) == folder]
    children = [run.info.run_id for parent in parents for run in client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10_000)]
    return [*parents, *children]


def retire_runs(uri: str, run_ids: list[str], when: str) -> None:
    """Tag each run ``zoobench.restarted_at = when`` and move it to MLflow's trash
    (``delete_run``: a soft delete; ``mlflow runs restore --run-id ID`` brings it back,
    ``mlflow gc`` removes it for good)."""
    client = MlflowClient(tracking_uri=uri)
    for run_id in run_ids:
        client.set_tag(run_id, TAG_RESTARTED, when)
        client.delete_run(run_id)


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


def dataset_input(name: str, digest: str, profile: dict[str, Any], path: str | None = None,
                  context: str = "training") -> Any:
    """An MLflow ``DatasetInput``: the dataset ``name`` with ``digest`` (16 hex digits that
    change with its content), ``profile`` (split sizes, shapes, classes) and its source (the
    ``path`` it was read from, or the code that made it), used in ``context``. Logging the
    same name and digest again (a resumed trial) adds nothing."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source_type, source = (("local", {"uri": path}) if path
                           else ("code", {"tags": {"zoobench.dataset": name}}))
    dataset = Dataset(name=name, digest=digest, source_type=source_type,
                      source=json.dumps(source), profile=json.dumps(profile, default=str))
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's limit on a param value


class TrialRun:
    """The trial's own MLflow run, used from inside the trial process.

    Params, tags, metrics and the final status go through an ``Outbox`` (``bench.tracking.outbox``):
    sent when the server answers, kept (and checkpointed by the trial) when it does not, so
    a tracking server that goes away never stalls or fails a trial.
    """

    def __init__(self, tracking: Tracking, run_name: str, trial_id: str, sweep: str,
                 params: dict[str, Any], run_id: str | None,
                 outbox: dict[str, Any] | None = None) -> None:
        """Start the run, or continue ``run_id`` (or the run tagged with ``trial_id``).

        ``outbox`` is the unsent part a checkpoint carried; it is sent again first (entries
        keep their timestamps, so what an earlier attempt did deliver is not doubled).
        """
        bound_http_retries()
        mlflow.set_tracking_uri(tracking.uri)
        self.online = False  # whether this process holds the run as MLflow's active run
        self.outbox = Outbox(tracking.uri, run_id)
        if outbox is not None:
            self.outbox.merge(Outbox.from_dict(outbox))
        create = {"experiment_id": tracking.experiment_id, "run_name": run_name,
                  "tags": {"mlflow.parentRunId": tracking.parent_run_id, TAG_SWEEP: sweep,
                           TAG_TRIAL: trial_id, TAG_ROLE: "trial", MLFLOW_USER: _user(),
                           **source_tags(sweep)}}
        try:
            client = MlflowClient(tracking.uri)
            run_id = self.outbox.run_id or find_run(client, create)
            if run_id is None:
                # Made by the client, then made active: fluent start_run of a new run asks
                # every context provider first (the notebook one imports IPython: 0.2 s of
                # each worker's first trial), for tags these runs set themselves.
                run_id = client.create_run(tracking.experiment_id, run_name=run_name,
                                           tags=create["tags"]).info.run_id
                self.outbox.params.update({k: _param_text(v) for k, v in params.items()})
            mlflow.start_run(run_id=run_id)
            self.online = True
            self.outbox.run_id = run_id
        except Exception:  # noqa: BLE001  (server unreachable: the outbox keeps it all)
            if self.outbox.run_id is None:
                self.outbox.create = create
                self.outbox.params.update({k: _param_text(v) for k, v in params.items()})
        self.flush()

    @property
    def run_id(self) -> str | None:
        """The run's id; None while the server has not been reachable to create it."""
        return self.outbox.run_id

    def flush(self) -> bool:
        """Send what waits in the outbox; whether everything went."""
        if self.outbox.empty():
            return True
        try:
            self.outbox.send()
        except Exception:  # noqa: BLE001  (kept for the next flush, or the driver)
            return False
        return True

    def log_epoch(self, metrics: dict[str, float], epoch: int,
                  model_id: str | None = None) -> None:
        """Queue one epoch's metrics; ``epoch`` is 1-based and is MLflow's step; with
        ``model_id``, linked to that LoggedModel too.

        Sent by the next ``flush``, which the trial calls once the epoch's checkpoint is
        Tune's: a retry then never trains (and logs) again an epoch MLflow already has.
        """
        self.outbox.add_metrics(metrics, epoch, model_id)

    def log_dataset(self, dataset: Any) -> None:
        """Log ``dataset`` (``dataset_input``) as the run's input: the runs table's Dataset
        column. Skipped when the server is away (the tables keep the dataset's name)."""
        if not self.online or self.run_id is None:
            return
        client = MlflowClient(tracking_uri=mlflow.get_tracking_uri())
        # Trials that start together log the same dataset at once; the store looks for it
        # and then inserts it, so all but one of them hit its unique key. Again, it is found:
        # the insert that won has committed by then, so the first retry comes at once
        # (it waited 0.2-0.4 s, at the start of a slot's first training); the later, longer
        # waits are for a store that is briefly away.
        for wait in (0.01, 0.2, 0.5, 1.0, None):
            try:
                client.log_inputs(self.run_id, datasets=[dataset])
                return
            except Exception:  # noqa: BLE001  (training goes on regardless)
                if wait is None:
                    return
                time.sleep(wait * (1 + random.random()))

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_param(self, key: str, value: Any) -> None:
        self.outbox.params[key] = _param_text(value)

    def missed_artifacts(self) -> None:
        """Tag the run: its model and pictures could not be uploaded (the server was away)."""
        self.outbox.tags["zoobench.missing_artifacts"] = "model, predictions.png"

    def set_tag(self, key: str, value: str) -> None:
        self.outbox.tags[key] = str(value)

    def set_error(self, message: str) -> None:
        """Record why the trial failed (tag ``zoobench.error``, first 5000 characters)."""
        self.outbox.tags["zoobench.error"] = message[:5000]

    def end(self, status: str) -> None:
        """``FINISHED``, ``FAILED`` or ``KILLED``: sent with whatever still waits."""
        self.outbox.status = status
        if self.online:
            self.online = False
            try:
                mlflow.end_run(status=status)  # pops the active run before calling the server
                self.outbox.status = None
            except Exception:  # noqa: BLE001  (the outbox still holds the status)
                pass
        self.flush()
