"""What an MLflow run has not received yet: kept by the trial, in its checkpoints, and on disk.

A trial logs through an ``Outbox``: metrics (with the timestamp they were made at), params,
tags and the run's final status wait in it until the tracking server has taken them. Each
entry keeps its own timestamp, so sending it again is harmless: MLflow's SQL stores keep one
row per (key, step, timestamp, value), which is how a resumed trial, or the driver at the end
of the sweep, re-sends whatever an earlier attempt may or may not have delivered, without a
metric step appearing twice. The driver first asks whether the run already holds a copy's
last entry (``Outbox.sent_already``); if it does, only the status goes.

A run the server could not even create (down when the trial started) is created when the
outbox is sent, found first by its tags (``zoobench.trial_id`` under the sweep's parent run),
so two senders never make two runs.

What is still unsent when a sweep ends is written to ``<results>/outbox/<sweep>/<id>.json``;
``zoobench sync-mlflow --sweep NAME`` sends those files and deletes each one sent.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTBOX = "outbox"  # folder under the results folder
#: How MLflow's client authenticates to a server (basic auth, or a bearer token): read from
#: the environment by every process, never passed on a command line or logged.
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
BOUNDED_HTTP = {  # a dead server answers in seconds, not in minutes of urllib3 backoff
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def bound_http_retries() -> None:
    """Bound MLflow's HTTP retries in this process (a user's own settings win).

    MLflow's defaults retry a refused connection for minutes (7 retries, backoff factor 2,
    120 s timeout each); a trial must go on training instead and send later.
    """
    for name, value in BOUNDED_HTTP.items():
        os.environ.setdefault(name, value)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Outbox:
    """Unsent MLflow data of one run.

    Attributes:
        uri: the tracking URI the run lives at.
        run_id: the run, or None when it is still to be created.
        create: how to create it (``experiment_id``, ``run_name``, ``tags``) when ``run_id``
            is None; the tags must identify it (see ``find_run``).
        metrics: ``[key, value, timestamp_ms, step]`` entries (a fifth, the LoggedModel's
            id, on metrics linked to the trial's model).
        params: name -> text.
        tags: name -> text.
        status: the run's final status (``FINISHED``, ``FAILED``, ``KILLED``) once known.
    """

    uri: str
    run_id: str | None = None
    create: dict[str, Any] | None = None
    metrics: list[list[Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None

    # ---- filling
    def add_metrics(self, metrics: dict[str, float], step: int,
                    model_id: str | None = None) -> None:
        """Queue ``metrics`` at ``step``, stamped now; with ``model_id``, linked to that
        MLflow 3 LoggedModel too (its page and the Models tab show them)."""
        stamp = now_ms()
        link = [model_id] if model_id else []
        self.metrics.extend([key, float(value), stamp, int(step), *link]
                            for key, value in metrics.items())

    def empty(self) -> bool:
        return (self.run_id is not None and not self.metrics and not self.params
                and not self.tags and self.status is None)

    def steps(self) -> int:
        """How many distinct steps (epochs) have metrics waiting."""
        return len({entry[3] for entry in self.metrics})

    # ---- state
    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "run_id": self.run_id, "create": self.create,
                "metrics": self.metrics, "params": self.params, "tags": self.tags,
                "status": self.status}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outbox:
        return cls(data["uri"], data.get("run_id"), data.get("create"),
                   [list(m) for m in data.get("metrics", [])], dict(data.get("params", {})),
                   dict(data.get("tags", {})), data.get("status"))

    def merge(self, other: Outbox) -> None:
        """Add ``other``'s entries (an older copy of the same run's outbox) to these."""
        self.run_id = self.run_id or other.run_id
        self.create = self.create or other.create
        seen = {tuple(m) for m in self.metrics}
        self.metrics = [m for m in other.metrics if tuple(m) not in seen] + self.metrics
        self.params = {**other.params, **self.params}
        self.tags = {**other.tags, **self.tags}
        self.status = self.status or other.status

    # ---- sending
    def send(self, client: Any = None, skip_sent: bool = False) -> None:
        """Deliver everything to the server and empty the outbox; raises what MLflow raises.

        What was delivered before a failure is removed (a partial send is never repeated
        in a way that duplicates: entries keep their timestamps). ``skip_sent``: first ask
        whether the run already holds these entries (``sent_already``), and send only the
        status if it does.
        """
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        client = client or MlflowClient(tracking_uri=self.uri)
        if self.run_id is None:
            assert self.create is not None, "an outbox without run id says how to create it"
            self.run_id = find_run(client, self.create) or client.create_run(
                self.create["experiment_id"], run_name=self.create.get("run_name"),
                tags=self.create["tags"]).info.run_id
            self.create = None
        elif skip_sent and self.sent_already(client):
            self.metrics, self.params, self.tags = [], {}, {}
        if self.params or self.tags:
            client.log_batch(self.run_id,
                             params=[Param(k, v) for k, v in self.params.items()],
                             tags=[RunTag(k, v) for k, v in self.tags.items()])
            self.params, self.tags = {}, {}
        while self.metrics:
            chunk = self.metrics[:_BATCH]
            client.log_batch(self.run_id, metrics=[Metric(*entry[:4], model_id=(
                entry[4] if len(entry) > 4 else None)) for entry in chunk])
            self.metrics = self.metrics[len(chunk):]
        if self.status is not None:
            client.set_terminated(self.run_id, self.status)
            self.status = None

    def sent_already(self, client: Any) -> bool:
        """Whether the run holds this outbox's params, tags and metrics already: its last
        metric entry (same step, timestamp and value) is on the server.

        ``send`` sends params and tags first, then the metrics in order, and stops at a
        failure; so the last entry there means every other entry went before it. That is
        the case of a trial's final checkpoint, whose outbox copy the driver gets while the
        trial's own process sends the same entries right after. One query instead of
        sending them again, which MLflow's SQL stores answer by looking up every row
        (about 40 ms a run at the end of a 5,000-trial sweep). False when there is no metric to
        ask about.
        """
        if self.run_id is None or not self.metrics:
            return False
        key, value, stamp, step = self.metrics[-1][:4]
        return any(m.timestamp == stamp and m.step == step and m.value == value
                   for m in client.get_metric_history(self.run_id, key))


def find_run(client: Any, create: dict[str, Any]) -> str | None:
    """The run already made for ``create`` (same trial id, sweep and parent run), if any."""
    from bench.tracking.tags import TAG_SWEEP, TAG_TRIAL

    tags = create["tags"]
    if TAG_TRIAL not in tags:
        return None
    found = client.search_runs(
        [create["experiment_id"]],
        filter_string=f"tags.`{TAG_TRIAL}` = '{tags[TAG_TRIAL]}' and "
                      f"tags.`{TAG_SWEEP}` = '{tags[TAG_SWEEP]}' and "
                      f"tags.`mlflow.parentRunId` = '{tags['mlflow.parentRunId']}'",
        max_results=1,
    )
    return found[0].info.run_id if found else None


# ---- on disk, for ``zoobench sync-mlflow``


def folder(results: Path, sweep: str) -> Path:
    """``<results>/outbox/<sweep>``."""
    return Path(results) / OUTBOX / sweep


def write(results: Path, sweep: str, name: str, outbox: Outbox) -> Path:
    """Save ``outbox`` as ``<results>/outbox/<sweep>/<name>.json`` (atomically)."""
    path = folder(results, sweep) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(outbox.to_dict()))
    os.replace(tmp, path)
    return path


def read_all(results: Path, sweep: str) -> dict[Path, Outbox]:
    """Every saved outbox of ``sweep`` by its file.

    Only files inside the results folder are read (a results folder is data: an outbox
    that is a symlink to a file elsewhere would send that file's bytes to a server); each
    one skipped prints one line saying why.
    """
    from bench.common.paths import OutsideResultsError, read_contained

    where = folder(results, sweep)
    if not where.is_dir():
        return {}
    boxes = {}
    for path in sorted(where.glob("*.json")):
        try:
            data = read_contained(results, path.relative_to(results))
        except OutsideResultsError as error:
            print(f"zoobench: warning: outbox {path} skipped: {error}", file=sys.stderr)
            continue
        boxes[path] = Outbox.from_dict(json.loads(data))
    return boxes


@dataclass(frozen=True)
class Delivery:
    """What ``deliver`` could not send: runs and epochs (metric steps) MLflow lacks."""

    runs: int
    epochs: int
    error: str | None


def deliver(outboxes: dict[str, Outbox], results: Path, sweep: str,
            skip_sent: bool = True) -> Delivery:
    """Send each outbox; save the ones that fail (and every later one) under the results.

    The first failure stops the sending (the server is down: each further call would only
    wait for its own time-out); files of outboxes sent are removed. ``skip_sent``: an
    outbox whose entries the run already holds sends only its status (``Outbox.send``).
    """
    from mlflow.tracking import MlflowClient

    from bench.common.errors import error_line

    missing_runs = missing_epochs = 0
    error: str | None = None
    clients: dict[str, Any] = {}  # one client per tracking URI, not one per run
    for name, box in outboxes.items():
        if error is None:
            try:
                if box.uri not in clients:
                    clients[box.uri] = MlflowClient(tracking_uri=box.uri)
                box.send(clients[box.uri], skip_sent=skip_sent)
            except Exception as failure:  # noqa: BLE001  (whatever the client raises)
                error = error_line(failure)
        path = folder(results, sweep) / f"{name}.json"
        if box.empty():
            path.unlink(missing_ok=True)
            continue
        write(results, sweep, name, box)
        missing_runs += 1
        missing_epochs += box.steps()
    return Delivery(missing_runs, missing_epochs, error)
