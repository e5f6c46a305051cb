"""Where to look at a sweep in MLflow's UI, printed after the sweep's summary.

MLflow 3.17's UI chooses between its GenAI and its model-training views with a global
switch (the sidebar's "GenAI | Model training", remembered by the browser; the URL
parameter ``workflowType`` overrides it), not with the experiment's ``mlflow.experimentKind``
tag, and starts on GenAI. The link we print therefore carries
``workflowType=machine_learning``, which opens the experiment on its runs table.
"""

from __future__ import annotations

from bench.tracking.runs import Tracking

LOCAL_UI = "http://127.0.0.1:5000"


def experiment_url(tracking: Tracking, base: str | None = None) -> str:
    """The UI page of the sweep's experiment on its runs, e.g.
    ``http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning``.

    ``base`` is the UI's address; None is the tracking URI when it is a server, else
    ``mlflow ui``'s default address.
    """
    if base is None:
        base = tracking.uri if tracking.uri.startswith(("http://", "https://")) else LOCAL_UI
    page = f"#/experiments/{tracking.experiment_id}?workflowType=machine_learning"
    return f"{base.rstrip('/')}/{page}"


def ui_lines(tracking: Tracking) -> list[str]:
    """How to open the sweep's runs: the ``mlflow ui`` command for a local store, and the link."""
    lines = []
    if not tracking.uri.startswith(("http://", "https://")):
        lines.append(f"MLflow UI: mlflow ui --backend-store-uri {tracking.uri}")
    lines.append(f"  then open {experiment_url(tracking)}")
    return lines
