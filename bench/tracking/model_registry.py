"""Register a sweep's best model in MLflow's model registry (the spec's ``register_best``)."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from bench.tracking.runs import TAG_DATASET, TAG_SWEEP, Tracking


def model_uri(client: MlflowClient, run_id: str) -> str:
    """``models:/MODEL_ID`` of the run's last logged model (MLflow 3's LoggedModel, so the
    registered version links to it and its metrics); ``runs:/RUN_ID/model`` without one."""
    outputs = client.get_run(run_id).outputs
    models = outputs.model_outputs if outputs is not None else []
    return f"models:/{models[-1].model_id}" if models else f"runs:/{run_id}/model"


def register_best(tracking: Tracking, board: pd.DataFrame, name: str, sweep: str) -> int | None:
    """Register the model of the leaderboard's rank-1 row's best trial as a version of ``name``;
    in a sweep of several datasets, each dataset's rank-1 model (tagged with its dataset).

    ``board`` is the sweep's leaderboard ranked on validation (``aggregate(trials,
    metric=<the sweep's val_* metric>)``: columns ``rank``, ``best_mlflow_run_id``, and
    ``dataset``), so both the configuration and its run are chosen on validation, never on
    the test split (``docs/trust.md``); the model is the trial's LoggedModel
    (``models:/MODEL_ID``, named by its configuration; ``runs:/RUN_ID/model`` for runs of
    earlier releases). Returns the version number (the last dataset's), or None when no
    ranked row has a run (every trial failed).

    Raises:
        ValueError: ``board`` is ranked on a ``test_*`` metric.
    """
    import mlflow

    metrics = board["metric"].dropna().astype(str) if "metric" in board else pd.Series([])
    if metrics.str.startswith("test_").any():
        raise ValueError(f"register_best: the board is ranked on {metrics.iloc[0]!r}; rank it "
                         f"on the sweep's validation metric")

    ranked = board[board["rank"] == 1].dropna(subset=["best_mlflow_run_id"])
    if ranked.empty:
        return None
    mlflow.set_tracking_uri(tracking.uri)
    client = MlflowClient(tracking_uri=tracking.uri)
    existing = {v.run_id: int(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    version = None
    for _, row in ranked.drop_duplicates(subset=["dataset"] if "dataset" in ranked
                                         else None).iterrows():
        run_id = str(row["best_mlflow_run_id"])
        # An earlier finished sweep's rerun registers nothing new when the best run is the same.
        if run_id in existing:
            version = existing[run_id]
            continue
        tags = {TAG_SWEEP: sweep}
        if "dataset" in row and isinstance(row["dataset"], str):
            tags[TAG_DATASET] = row["dataset"]
        version = int(mlflow.register_model(model_uri(client, run_id), name,
                                            tags=tags).version)
    return version
