"""Cost columns: FLOPs against a hand count, and latency, throughput and memory measured in a
real sweep, carried to trials.parquet, the leaderboard, MLflow and the report."""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from bench.results.leaderboard import aggregate
from bench.run.trial.cost import (
    COST_COLUMNS,
    LATENCY_STEPS,
    THROUGHPUT_STEPS,
    count_flops,
    forward_function,
    measure_cost,
)


def _conv(height: int, width: int, cin: int, cout: int, k: int, bias: bool) -> keras.Model:
    inputs = keras.Input((height, width, cin))
    return keras.Model(inputs, keras.layers.Conv2D(cout, k, padding="same",
                                                   use_bias=bias)(inputs))


@pytest.mark.parametrize("height,width,cin,cout,k", [(16, 16, 3, 8, 3), (12, 20, 5, 4, 5)])
def test_flops_of_one_convolution_is_the_hand_count(height, width, cin, cout, k):
    model = _conv(height, width, cin, cout, k, bias=False)
    flops = count_flops(forward_function(model, (height, width, cin)), (height, width, cin))
    assert flops == 2 * height * width * k * k * cin * cout  # a multiply and an add per weight


def test_flops_count_bias_adds_one_per_output_element():
    model = _conv(16, 16, 3, 8, 3, bias=True)
    assert count_flops(forward_function(model, (16, 16, 3)), (16, 16, 3)) == (
        2 * 16 * 16 * 9 * 3 * 8 + 16 * 16 * 8)


def test_flops_are_per_sample_and_add_up_over_layers():
    inputs = keras.Input((8, 8, 2))
    hidden = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    outputs = keras.layers.Conv2D(6, 1, use_bias=False)(hidden)
    model = keras.Model(inputs, outputs)
    started = time.perf_counter()
    cost = measure_cost(model, (8, 8, 2), batch_size=5)
    took = time.perf_counter() - started
    assert cost["flops"] == 2 * 64 * 9 * 2 * 4 + 2 * 64 * 1 * 4 * 6
    assert set(cost) == set(COST_COLUMNS)
    assert cost["latency_p10_ms"] <= cost["latency_ms"] <= cost["latency_p90_ms"]
    assert cost["throughput"] > 0 and cost["peak_memory_mb"] > 10  # TF alone is ~500 MiB
    # What measuring took, whatever the machine's speed: no more than the call itself, and
    # at least its timed forward passes: of the LATENCY_STEPS batch-1 times all but the two
    # shortest are at least the 10th percentile; of the THROUGHPUT_STEPS batch-5 times the
    # longer half and the median are at least the median (5 / throughput).
    assert math.isfinite(cost["cost_seconds"]) and 0 < cost["cost_seconds"] <= took
    timed = ((LATENCY_STEPS - 2) * cost["latency_p10_ms"] / 1000
             + (THROUGHPUT_STEPS + 1) // 2 * 5 / cost["throughput"])
    assert cost["cost_seconds"] >= timed * (1 - 1e-9)


@pytest.fixture(scope="module")
def trials(small_sweep) -> pd.DataFrame:
    return pd.read_parquet(small_sweep.results / "trials.parquet")


def test_sweep_records_positive_costs_per_trial(trials):
    assert len(trials) == 2
    for column in COST_COLUMNS:
        assert trials[column].dtype == "float64"
        assert (trials[column] > 0).all(), column
    # The same model (testnet) at the same input size: the same FLOPs in both trials.
    assert trials["flops"].nunique() == 1
    import zoo

    net, _, _ = zoo.get_model("testnet", 16, 16, 3, 3)
    assert trials["flops"].iloc[0] == count_flops(forward_function(net, (16, 16, 3)),
                                                  (16, 16, 3))
    # Measuring stays a small part of the trial (its time is recorded, and part of final).
    assert (trials["cost_seconds"] < trials["final_seconds"]).all()


def test_leaderboard_averages_costs_over_seeds(small_sweep, trials):
    board = pd.read_parquet(small_sweep.results / "leaderboard.parquet")
    for row in board.itertuples():
        mine = trials[(trials["model"] == row.model) & (trials["loss"] == row.loss)]
        for column in ("flops", "latency_ms", "throughput", "peak_memory_mb"):
            assert math.isclose(getattr(row, f"{column}_mean"), mine[column].mean()), column


def test_leaderboard_averages_costs_over_three_seeds_of_finished_trials():
    """Each configuration's ``*_mean`` cost is the mean over its finished seeds (here three,
    worked by hand); a failed trial's figures are left out."""
    rows = []
    costs = {"a": [(1.0, 10.0, 500.0, 3.0), (2.0, 20.0, 600.0, 4.0), (6.0, 60.0, 700.0, 8.0)],
             "b": [(4.0, 5.0, 800.0, 1.0), (4.0, 7.0, 800.0, 2.0), (7.0, 9.0, 830.0, 6.0)]}
    for model, seeds in costs.items():
        for seed, (latency, throughput, memory, train) in enumerate(seeds):
            rows.append({"trial_id": f"{model}{seed}", "seed": seed, "status": "TERMINATED",
                         "end_reason": "completed", "test_mean_iou": 0.5 + seed / 10,
                         "latency_ms": latency, "throughput": throughput,
                         "peak_memory_mb": memory, "train_seconds": train, "model": model})
    rows.append({"trial_id": "b9", "seed": 9, "status": "ERROR", "end_reason": "error",
                 "test_mean_iou": math.nan, "latency_ms": 1000.0, "throughput": 1000.0,
                 "peak_memory_mb": 9000.0, "train_seconds": 1000.0, "model": "b"})
    trials = pd.DataFrame(rows).assign(sweep="s", dataset="shapes", loss="dice",
                                       metric="val_mean_iou", mode="max", flops=100.0,
                                       n_params=1000, val_mean_iou=0.5)
    board = aggregate(trials).set_index("model")
    expected = {"a": {"latency_ms": 3.0, "throughput": 30.0, "peak_memory_mb": 600.0,
                      "train_seconds": 5.0, "flops": 100.0},
                "b": {"latency_ms": 5.0, "throughput": 7.0, "peak_memory_mb": 810.0,
                      "train_seconds": 3.0, "flops": 100.0}}
    for model, means in expected.items():
        assert int(board.loc[model, "count"]) == 3
        for column, value in means.items():
            assert board.loc[model, f"{column}_mean"] == pytest.approx(value), (model, column)


def test_mlflow_run_has_the_costs(small_sweep, trials):
    client = MlflowClient(tracking_uri=small_sweep.tracking_uri)
    for trial in trials.itertuples():
        logged = client.get_run(trial.mlflow_run_id).data.metrics
        for column in ("flops", "latency_ms", "throughput", "peak_memory_mb"):
            assert math.isclose(logged[column], getattr(trial, column), rel_tol=1e-6), column


def test_report_plots_accuracy_against_each_recorded_cost(small_sweep):
    from bench.report.context import ReportContext
    from bench.report.sections import cost
    from bench.results.leaderboard import load_results

    trials, history = load_results(small_sweep.results, "small")
    ctx = ReportContext.build(small_sweep.results, "small", trials, history)
    html = cost.render(ctx)
    for label in ("parameters", "forward FLOPs per sample", "latency, batch 1 (ms)",
                  "peak memory (MiB)", "training time (s)"):
        assert label in html, label
    assert np.isfinite(ctx.board["latency_ms_mean"]).all()


def test_peak_memory_is_reset_for_each_trial_of_a_warm_worker():
    """A warm worker runs several trials: each one's peak starts from the memory in use at
    its start, not from an earlier trial's high-water mark (Linux ``/proc/self/clear_refs``)."""
    import sys

    from bench.run.trial.cost import peak_memory_mb, reset_peak_memory

    if not sys.platform.startswith("linux"):
        pytest.skip("the peak is reset through /proc (Linux)")
    # From the memory in use now: an earlier high-water mark above it would hide part of
    # the block (the peak is max(old peak, now + block)).
    assert reset_peak_memory() is True
    before = peak_memory_mb()
    block = np.ones(400 * 2**20 // 8)  # 400 MiB, touched
    high = peak_memory_mb()
    assert high >= before + 350
    del block
    assert reset_peak_memory() is True
    assert peak_memory_mb() < high - 300
