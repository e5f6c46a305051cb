"""A warm worker runs trial after trial (``reuse_workers``, Tune's ``reuse_actors``).

Ray turned ``reuse_actors`` off by default after race conditions (ray PR #42951), so what
zoobench relies on is checked on real sweeps: one worker process runs every trial in
turn, and each trial's numbers equal those of the same network and seed in a fresh
process. The same network appears under two labels (``testnet`` and
``testnet(base_filters=16)``, its default), so one sweep holds both runs of a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli

SPEC = """\
name: {name}
dataset: {{name: digits, height: 16, width: 16, train: 64, val: 32, test: 32}}
models: [testnet, {{testnet: {{base_filters: 16}}}}]
losses: [dice]
seeds: {seeds}
epochs: {epochs}
params: {{batch_size: 16, lr: 1.0e-3}}
resources: {{cpu: 1}}
max_concurrent: 1
reuse_workers: {reuse}
"""
COMPARED = ["train_loss", "val_loss", "val_mean_iou", "val_dice_coef", "val_pixel_accuracy"]
TESTED = ["test_loss", "test_mean_iou", "test_dice_coef", "test_case_dice_fg"]


def _sweep(tmp: Path, name: str, seeds: list[int], epochs: int,
           reuse: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = tmp / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, seeds=seeds, epochs=epochs,
                                reuse=str(reuse).lower()))
    assert run_cli("sweep", str(spec), "--results", str(tmp / "results")) == 0
    trials = pd.read_parquet(tmp / "results" / "trials.parquet")
    history = pd.read_parquet(tmp / "results" / "history.parquet")
    trials, history = (frame[frame["sweep"].astype(str) == name] for frame in (trials, history))
    return trials.reset_index(drop=True), history.reset_index(drop=True)


def _assert_same_numbers(history: pd.DataFrame, trials: pd.DataFrame, a: str, b: str) -> None:
    """Trials ``a`` and ``b`` (ids) trained and tested to the same numbers."""
    rows = {t: history[history["trial_id"] == t].sort_values("epoch") for t in (a, b)}
    for column in COMPARED:
        np.testing.assert_allclose(rows[a][column].to_numpy(), rows[b][column].to_numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=column)
    tested = trials.set_index("trial_id")
    np.testing.assert_allclose(tested.loc[a, TESTED].to_numpy(float),
                               tested.loc[b, TESTED].to_numpy(float), rtol=1e-5, atol=1e-6)


def test_one_warm_worker_runs_every_trial_and_gives_a_fresh_workers_numbers(tmp_path: Path):
    trials, history = _sweep(tmp_path, "reuse", [0, 1], epochs=2)
    assert set(trials["status"]) == {"TERMINATED"} and len(trials) == 4
    # One process ran the four trials one after another (max_concurrent: 1).
    assert trials["worker_pid"].nunique() == 1
    assert sorted(trials["worker_trial"]) == [1, 2, 3, 4]
    for _, pair in trials.groupby("seed"):
        a, b = pair["trial_id"].tolist()
        _assert_same_numbers(history, trials, a, b)
    # Seed 0 pairs the worker's first trial (a fresh process) with a later one.
    first = trials.loc[trials["worker_trial"] == 1, "seed"].item()
    assert sorted(trials.loc[trials["seed"] == first, "worker_trial"])[1] > 1
    # Each trial's peak memory is its own (reset at its start), and the worker's memory
    # is recorded every epoch.
    assert trials["peak_memory_mb"].gt(0).all()
    assert history["rss_mb"].gt(0).all()


@pytest.fixture(scope="module")
def twenty_warm_trials(tmp_path_factory: pytest.TempPathFactory):
    """20 trials on one warm worker (10 seeds x the same network under two labels)."""
    tmp = tmp_path_factory.mktemp("warm")
    return tmp, *_sweep(tmp, "warm", list(range(10)), epochs=1)


@pytest.mark.slow
def test_twenty_trials_on_one_worker_match_fresh_processes(twenty_warm_trials):
    """20 trials on one warm worker, against the last seed's two trials each in a fresh
    process (``reuse_workers: false``)."""
    tmp, trials, history = twenty_warm_trials
    assert set(trials["status"]) == {"TERMINATED"} and len(trials) == 20
    assert trials["worker_pid"].nunique() == 1
    assert sorted(trials["worker_trial"]) == list(range(1, 21))
    for _, pair in trials.groupby("seed"):
        _assert_same_numbers(history, trials, *pair["trial_id"].tolist())

    last = int(trials["seed"].max())
    fresh_trials, fresh_history = _sweep(tmp, "fresh", [last], epochs=1, reuse=False)
    assert fresh_trials["worker_pid"].nunique() == 2
    assert set(fresh_trials["worker_trial"]) == {1}
    both_trials = pd.concat([trials, fresh_trials], ignore_index=True)
    both_history = pd.concat([history, fresh_history], ignore_index=True)
    for model in trials["model"].unique():
        warm = trials[(trials["seed"] == last) & (trials["model"] == model)]
        fresh = fresh_trials[fresh_trials["model"] == model]
        _assert_same_numbers(both_history, both_trials, warm["trial_id"].item(),
                             fresh["trial_id"].item())


@pytest.mark.slow
def test_a_warm_workers_memory_levels_off(twenty_warm_trials):
    """What the second ten trials add to the worker's resident memory is a small part of
    what the first ten did (TensorFlow's allocator and caches fill up first, then stay).

    It grew 45-80 MB a trial before ``bench.run.trial.leaks`` dropped each trial's traced
    graphs; 975 -> 1,042 -> 1,058 MiB over trials 1, 10 and 20 after."""
    _, trials, history = twenty_warm_trials
    rss = (history.merge(trials[["trial_id", "worker_trial"]], on="trial_id")
           .sort_values("worker_trial")["rss_mb"].to_numpy())
    first_half, second_half = rss[9] - rss[0], rss[19] - rss[10]
    print(f"worker RSS MiB by trial: {np.round(rss).astype(int).tolist()}")
    assert second_half < max(100.0, 0.5 * first_half), rss.round(1)
