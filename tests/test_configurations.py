"""Issue 25 item 1, end to end: the seeds of a configuration share its hyperparameters.

A real sweep (local Ray, MLflow sqlite, Parquet) of ``testnet x dice`` on seeds 0, 1, 2
with a random ``lr`` and ``samples: 2``: two configurations, each trained on every seed
with one learning rate, two leaderboard rows of n = 3. ``tests/test_plan.py`` checks the
same on the plan's own draws without training (and ``samples: 1``: one lr for 3 seeds).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_cli

SPEC = """\
name: shared
dataset: {name: shapes, height: 16, width: 16, channels: 3, classes: 3, train: 16, val: 8,
          test: 8}
models: [testnet]
losses: [dice]
seeds: [0, 1, 2]
samples: 2
epochs: 1
params:
  batch_size: 8
  lr: {loguniform: [1.0e-4, 1.0e-2]}
"""


@pytest.mark.slow  # six real trials through Ray: ~60-120 s on 2 shared cores
def test_samples_2_on_3_seeds_gives_2_configurations_of_3_seeds(tmp_path):
    spec = tmp_path / "shared.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    assert run_cli("sweep", str(spec), "--results", str(results)) == 0
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 6 and set(trials["status"]) == {"TERMINATED"}
    per_config = trials.groupby("config_id").agg(lrs=("lr", "nunique"), lr=("lr", "first"),
                                                 seeds=("seed", lambda s: sorted(s)))
    assert len(per_config) == 2
    assert per_config["lrs"].tolist() == [1, 1]  # one learning rate per configuration
    assert per_config["seeds"].tolist() == [[0, 1, 2], [0, 1, 2]]
    assert per_config["lr"].nunique() == 2
    assert trials["lr"].between(1e-4, 1e-2).all()
    board = pd.read_parquet(results / "leaderboard.parquet")
    assert len(board) == 2 and board["count"].tolist() == [3, 3]
    assert sorted(board["config_id"]) == sorted(per_config.index)
    for row in board.itertuples():
        lr = per_config.loc[row.config_id, "lr"]
        assert json.loads(row.hyperparameters)["lr"] == pytest.approx(lr)
        own = trials[trials["config_id"] == row.config_id]
        assert row.test_mean_iou_mean == pytest.approx(own["test_mean_iou"].mean())
        # The paired test pairs the two configurations seed by seed.
        assert sorted(json.loads(row.seed_values)) == ["0", "1", "2"]
    cases = pd.read_parquet(results / "cases.parquet")
    assert set(cases["config_id"]) == set(per_config.index) and set(cases["stage"]) == {"final"}
    # The same cases for every seed and configuration (the test split is the dataset's own).
    per_trial = cases.groupby("trial_id")["case"].nunique()
    assert per_trial.nunique() == 1 and len(per_trial) == 6
