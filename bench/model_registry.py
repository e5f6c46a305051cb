"""Register a sweep's best model in MLflow's model registry (the spec's ``register_best``)."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from bench.tracking import TAG_SWEEP, Tracking


def register_best(tracking: Tracking, board: pd.DataFrame, name: str, sweep: str) -> int | None:
    """Register the model of the leaderboard's rank-1 row's best trial as a version of ``name``.

    ``board`` is the sweep's leaderboard (columns ``rank``, ``best_mlflow_run_id``); the
    model is the trial's MLflow Model ``model`` (``runs:/RUN_ID/model``). Returns the new
    version number, or None when no ranked row has a run (every trial failed).
    """
    import mlflow

    ranked = board[board["rank"] == 1].dropna(subset=["best_mlflow_run_id"])
    if ranked.empty:
        return None
    run_id = str(ranked.iloc[0]["best_mlflow_run_id"])
    mlflow.set_tracking_uri(tracking.uri)
    # An earlier finished sweep's rerun registers nothing new when the best run is the same.
    client = MlflowClient(tracking_uri=tracking.uri)
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.run_id == run_id:
            return int(version.version)
    version = mlflow.register_model(f"runs:/{run_id}/model", name,
                                    tags={TAG_SWEEP: sweep})
    return int(version.version)
