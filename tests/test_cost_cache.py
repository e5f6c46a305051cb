"""Cost measured once per architecture x input (bench.run.trial.cost_cache): a second trial of
the same model, options, input shape and batch reads the first one's figures; another input
shape is measured again; trials ending together measure once, the others waiting only
after their own work."""

from __future__ import annotations

import fcntl
import json
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import keras

from bench.run import data_cache
from bench.run.trial.cost import COST_COLUMNS, measure_cost
from bench.run.trial.cost_cache import (
    COST_FOLDER,
    cached_cost,
    cost_key,
    cost_or_later,
    trial_cost_cached,
)


def _conv_model(height: int, width: int) -> keras.Model:
    inputs = keras.Input((height, width, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs))


def _trial(cache: Path, height: int, loss: str, seed: int, lr: float) -> SimpleNamespace:
    """What ``trial_cost_cached`` reads of a ``TrialState``: its context, config and info."""
    context = SimpleNamespace(models={"conv": ("conv_net", {"filters": 4})},
                              mixed_precision="off", xla=False, data_cache=str(cache))
    info = SimpleNamespace(input_shape=(height, height, 3), n_classes=4, task="segmentation")
    config = {"model": "conv", "loss": loss, "seed": seed, "lr": lr, "batch_size": 2}
    return SimpleNamespace(context=context, config=config, info=info)


def test_key_ignores_option_order_and_names_what_cost_depends_on():
    key = cost_key("unet", {"depth": 2, "width": 8}, (16, 16, 3), 3, 8)
    assert key == cost_key("unet", {"width": 8, "depth": 2}, (16, 16, 3), 3, 8)
    for other in (cost_key("unet", {"depth": 3, "width": 8}, (16, 16, 3), 3, 8),
                  cost_key("unet", {"depth": 2, "width": 8}, (32, 32, 3), 3, 8),
                  cost_key("unet", {"depth": 2, "width": 8}, (16, 16, 3), 4, 8),
                  cost_key("unet", {"depth": 2, "width": 8}, (16, 16, 3), 3, 16),
                  cost_key("unet", {"depth": 2, "width": 8}, (16, 16, 3), 3, 8, xla=True),
                  cost_key("segnet", {"depth": 2, "width": 8}, (16, 16, 3), 3, 8)):
        assert other != key


def test_second_trial_of_an_architecture_reads_the_figures_another_shape_measures(tmp_path):
    cache = data_cache.open_cache(tmp_path, "s")
    measured: list[int] = []  # input heights measure_cost ran for

    def run(trial: SimpleNamespace) -> dict[str, float]:
        height = trial.info.input_shape[0]
        model = _conv_model(height, height)

        def measure() -> dict[str, float]:
            measured.append(height)
            return measure_cost(model, (height, height, 3), batch_size=2)

        key = cost_key("conv_net", {"filters": 4}, (height, height, 3), 4, 2,
                       task="segmentation", mixed_precision="off")
        figures = cached_cost(cache, key, measure)
        # The trial hook computes the same key and finds what cached_cost stored.
        hooked = trial_cost_cached(trial, model)
        assert {k: v for k, v in hooked.items() if k != "cost_seconds"} == {
            k: v for k, v in figures.items() if k != "cost_seconds"}
        return figures

    first = run(_trial(cache, 8, "dice", seed=0, lr=1e-3))
    second = run(_trial(cache, 8, "categorical_crossentropy", seed=1, lr=1e-2))
    other = run(_trial(cache, 12, "dice", seed=0, lr=1e-3))
    assert measured == [8, 12]  # the second trial of the 8x8 architecture measured nothing
    assert set(first) == set(COST_COLUMNS)
    # The second trial has the first one's figures, timings included (a new measurement
    # would differ in latency), and a lookup's own time as cost_seconds.
    for column in COST_COLUMNS:
        if column != "cost_seconds":
            assert second[column] == first[column], column
    assert second["cost_seconds"] < first["cost_seconds"]
    # A 3x3 convolution, 3 -> 4 channels, no bias: 2 * H * W * 9 * 3 * 4 FLOPs per sample.
    assert first["flops"] == 2 * 8 * 8 * 9 * 3 * 4
    assert other["flops"] == 2 * 12 * 12 * 9 * 3 * 4
    stored = sorted((cache / COST_FOLDER).glob("*.json"))
    assert len(stored) == 2
    assert json.loads(stored[0].read_text()).keys() == set(COST_COLUMNS)


def test_failed_measurement_is_not_stored_and_no_cache_measures_every_time(tmp_path):
    cache = data_cache.open_cache(tmp_path, "s")
    calls = []

    def failed() -> dict[str, float]:  # what trial_cost returns when the profiler refuses
        calls.append(1)
        return dict.fromkeys(COST_COLUMNS, math.nan)

    for _ in range(2):
        assert math.isnan(cached_cost(cache, "k", failed)["flops"])
    assert len(calls) == 2 and not list((cache / COST_FOLDER).glob("*.json"))
    figures = {"flops": 1.0}
    for folder in (None, tmp_path / "absent"):
        assert cached_cost(folder, "k", lambda: figures) == figures


FIGURES = {"flops": 10.0, "latency_ms": 2.0}


def _held(cache: Path, key: str):
    """The key's lock as another trial holds it while measuring (a file of its own)."""
    (cache / COST_FOLDER).mkdir(exist_ok=True)
    handle = open(cache / COST_FOLDER / f"{key}.lock", "a")  # noqa: SIM115
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def test_a_trial_ending_beside_the_measuring_one_reads_its_figures_after_its_own_work(tmp_path):
    cache = data_cache.open_cache(tmp_path, "s")
    calls: list[str] = []
    holder = _held(cache, "k")
    later = cost_or_later(cache, "k", lambda: calls.append("measured") or FIGURES)
    assert calls == []  # nothing measured yet: the other trial is at it

    def other_trial_finishes() -> None:
        time.sleep(0.3)
        (cache / COST_FOLDER / "k.json").write_text(json.dumps(FIGURES))
        holder.close()  # stored, then the lock is dropped

    thread = threading.Thread(target=other_trial_finishes)
    thread.start()
    figures = later()  # waits for the lock, then reads
    thread.join()
    assert calls == []
    assert {k: v for k, v in figures.items() if k != "cost_seconds"} == FIGURES
    assert 0.2 < figures["cost_seconds"] < 10  # what this trial spent on it: the wait


def test_a_measurement_that_stored_nothing_is_made_by_the_waiting_trial(tmp_path):
    cache = data_cache.open_cache(tmp_path, "s")
    calls: list[str] = []
    holder = _held(cache, "k")
    later = cost_or_later(cache, "k", lambda: calls.append("measured") or FIGURES)
    holder.close()  # the measuring trial failed (NaN figures are not stored)
    assert later()["flops"] == 10.0 and calls == ["measured"]
    assert json.loads((cache / COST_FOLDER / "k.json").read_text()) == FIGURES


def test_trials_ending_together_measure_once(tmp_path):
    cache = data_cache.open_cache(tmp_path, "s")
    calls: list[int] = []
    start = threading.Barrier(4)
    results: list[dict[str, float]] = []

    def measure() -> dict[str, float]:
        calls.append(1)
        time.sleep(0.3)  # long enough for every other trial to find the lock held
        return FIGURES

    def trial() -> None:
        start.wait()
        later = cost_or_later(cache, "k", measure)
        results.append(later())

    threads = [threading.Thread(target=trial) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 4
    assert all({k: v for k, v in r.items() if k != "cost_seconds"} == FIGURES for r in results)
