"""The Ladder network: shapes, clean vs noisy paths, denoising costs, saving, learning."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo.models.ladder import (
    DEFAULT_DENOISING_COSTS,
    N_LEVELS,
    LadderBase,
    LadderCombinator,
    LadderNetwork,
)
from zoo.models.ladder_fc import PAPER_DENOISING_COSTS, LadderFC, build_ladder_fc

SIZE, CHANNELS, BATCH = 16, 1, 4
TINY = {"filters": 4, "seed": 0}


def _ladder(n_classes: int = 3, **options) -> tuple[keras.Model, int, int]:
    return zoo.get_model("ladder", SIZE, SIZE, CHANNELS, n_classes, **{**TINY, **options})


def _batch(n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, SIZE, SIZE, CHANNELS), dtype=np.float32)
    labels = (x[..., 0] * n_classes).astype(int).clip(0, n_classes - 1)
    y = np.eye(n_classes, dtype=np.float32)[labels]
    return x, y


def _compiled(n_classes: int = 3, **options) -> keras.Model:
    model, _, _ = _ladder(n_classes, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=zoo.get_loss("categorical_crossentropy"))
    return model


def test_registered_as_semi_supervised():
    info = zoo.describe_model("ladder")
    assert "ladder" in zoo.list_models()
    assert info.kind == "semi_supervised"
    assert list(info.options["denoising_costs"]) == list(DEFAULT_DENOISING_COSTS)
    assert len(DEFAULT_DENOISING_COSTS) == N_LEVELS


@pytest.mark.parametrize("n_classes", [1, 3])
def test_shapes_and_output_activation(n_classes):
    model, out_h, out_w = _ladder(n_classes)
    x, _ = _batch()
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert (out_h, out_w) == (SIZE, SIZE)
    assert y.shape == (BATCH, SIZE, SIZE, n_classes)
    assert model.layers[-1].dtype_policy.name == "float32"
    if n_classes == 1:
        assert np.all((y > 0) & (y < 1))
    else:
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def test_noisy_training_path_differs_and_predict_is_deterministic():
    model, _, _ = _ladder()
    x, _ = _batch()
    clean = keras.ops.convert_to_numpy(model(x, training=False))
    noisy = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.abs(noisy - clean).max() > 1e-3
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_without_noise_and_costs_training_output_is_the_clean_batch_norm_path():
    model, _, _ = _ladder(noise_std=0.0, denoising_costs=[0.0] * N_LEVELS)
    x, _ = _batch()
    first = keras.ops.convert_to_numpy(model(x, training=True))
    second = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_allclose(first, second, atol=1e-6)
    assert model.losses == []


def test_denoising_costs_added_in_training_only_and_finite():
    model, _, _ = _ladder()
    x, _ = _batch()
    model(x, training=True)
    costs = [float(c) for c in model.losses]
    assert len(costs) == sum(c > 0 for c in DEFAULT_DENOISING_COSTS)
    assert all(np.isfinite(c) and c > 0 for c in costs)
    model(x, training=False)
    assert model.losses == []


def test_zero_cost_levels_add_no_loss():
    costs = [0.0] * N_LEVELS
    costs[0] = 5.0
    model, _, _ = _ladder(denoising_costs=costs)
    model(_batch()[0], training=True)
    assert len(model.losses) == 1


def test_unlabelled_samples_contribute_no_supervised_loss():
    model = _compiled()
    x, y = _batch()
    y_pred = model(x, training=True)
    reconstruction = float(keras.ops.sum(model.losses))
    unlabelled = model.compute_loss(x, y, y_pred, sample_weight=np.zeros(BATCH, np.float32),
                                    training=True)
    labelled = model.compute_loss(x, y, y_pred, sample_weight=np.ones(BATCH, np.float32),
                                  training=True)
    np.testing.assert_allclose(float(unlabelled), reconstruction, rtol=1e-5)
    assert float(labelled) > reconstruction + 0.1


def test_unlabelled_batch_trains_on_denoising_costs_only():
    model = _compiled(denoising_costs=[0.0] * N_LEVELS)  # nothing but the supervised cost
    x, y = _batch()
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, sample_weight=np.zeros(BATCH, np.float32), epochs=1, verbose=0)
    after = model.get_weights()
    trainable = {id(w) for w in model.trainable_weights}
    for weight, old, new in zip(model.weights, before, after, strict=True):
        if id(weight) in trainable:
            np.testing.assert_array_equal(old, new)  # zero gradient from weight-0 samples


@pytest.mark.slow  # trains: ~25 s
def test_fit_lowers_the_total_loss():
    model = _compiled()
    x, y = _batch()
    weights = np.array([1, 1, 0, 0], np.float32)
    history = model.fit(x, y, sample_weight=weights, batch_size=BATCH, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_combinator_starts_at_zero_and_round_trips():
    layer = LadderCombinator()
    z = np.ones((1, 2, 2, 3), np.float32)
    out = keras.ops.convert_to_numpy(layer([z, z]))
    np.testing.assert_array_equal(out, 0.0)  # a2 = a7 = 1, others 0: mu = v = 0
    clone = LadderCombinator.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_save_and_load_in_safe_mode(tmp_path: Path):
    model, _, _ = _ladder(n_classes=2)
    x, _ = _batch(n_classes=2)
    model(x, training=True)  # moves the clean path's moving statistics off their start
    path = tmp_path / "ladder.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    assert loaded.get_layer("ladder").get_config() == model.get_layer("ladder").get_config()
    loaded(x, training=True)
    assert len(loaded.losses) == sum(c > 0 for c in DEFAULT_DENOISING_COSTS)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"denoising_costs": [1.0, 2.0]}, "denoising_costs"),
        ({"denoising_costs": [-1.0] * N_LEVELS}, "denoising_costs"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"filters": 0}, "filters"),
        ({"depth": 3}, "no option 'depth'"),
    ],
)
def test_bad_options_raise_value_error(options, match):
    with pytest.raises(ValueError, match=match):
        zoo.get_model("ladder", SIZE, SIZE, CHANNELS, 3, **options)


def test_odd_size_is_refused():
    with pytest.raises(ValueError, match="multiples of 2"):
        zoo.get_model("ladder", 15, 16, 1, 3)


def _fc_batch(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((8, 64), dtype=np.float32)


def test_fc_ladder_shares_the_dense_ladders_algorithm():
    assert issubclass(LadderFC, LadderBase)
    assert LadderFC._clean is LadderNetwork._clean
    assert LadderFC._denoising_costs is LadderNetwork._denoising_costs


def test_fc_ladder_shapes_paths_and_costs():
    model = build_ladder_fc(64, 10, widths=[12, 8], seed=0,
                            denoising_costs=[1000.0, 10.0, 0.0, 0.1])
    x = _fc_batch()
    clean = keras.ops.convert_to_numpy(model(x, training=False))
    assert clean.shape == (8, 10)
    np.testing.assert_allclose(clean.sum(-1), 1.0, atol=1e-5)
    noisy = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.abs(noisy - clean).max() > 1e-3
    costs = [float(c) for c in model.losses]
    assert len(costs) == 3 and all(np.isfinite(c) and c > 0 for c in costs)
    # The combinator starts at z^ = 0, so the input level's cost is 1000 * mean(x**2).
    np.testing.assert_allclose(costs[-1], 1000.0 * np.mean(x**2), rtol=1e-4)
    model(x, training=False)
    assert model.losses == []


def test_fc_ladder_gamma_model_has_only_the_top_combinator():
    model = build_ladder_fc(64, 10, widths=[12, 8], denoising_costs=[0.0, 0.0, 0.0, 1.0])
    layer = model.get_layer("ladder")
    model(_fc_batch(), training=True)
    assert layer.decoder == [] and len(layer.combinators) == 1
    assert len(model.losses) == 1


def test_fc_ladder_rejects_costs_of_the_wrong_length():
    with pytest.raises(ValueError, match="4 numbers"):
        build_ladder_fc(64, 10, widths=[12, 8], denoising_costs=list(PAPER_DENOISING_COSTS))


@pytest.mark.slow  # ~17 s; the dense Ladder's save and load stays in the default suite
def test_fc_ladder_save_and_load_in_safe_mode(tmp_path: Path):
    model = build_ladder_fc(64, 10, widths=[12, 8], seed=0,
                            denoising_costs=[1000.0, 10.0, 0.1, 0.1])
    x = _fc_batch()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    model.fit(x, np.eye(10, dtype=np.float32)[np.arange(8)], epochs=2, verbose=0)
    path = tmp_path / "ladder_fc.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    assert loaded.get_layer("ladder").get_config() == model.get_layer("ladder").get_config()
    loaded(x, training=True)
    assert len(loaded.losses) == 4


@pytest.mark.slow
def test_ladder_beats_supervised_only_with_few_labels():
    """The semi-supervised advantage on digits with 5% of the masks (~4 min on 2 cores).

    The README's setting (tests/perf/ladder_semi_supervised.py defaults: 100 labelled
    of 2,000 canvases, 50 labelled + 50 unlabelled per batch), cut to 20 epochs and
    one seed. Measured at 20 epochs, seed 0, on today's digits (whose test split keeps a
    fifth of the source digits out of training): supervised 0.422, ladder 0.479. Before
    the test split it was 0.326 and 0.554, against a margin of 0.1 that no longer holds;
    the margin asked now is about half the measured gap.
    """
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "perf"))
    import ladder_semi_supervised as perf

    args = perf.parse_args(["--seeds", "0", "--epochs", "20"])
    data = perf.load_data(args, seed=0)
    supervised, _ = perf.train(perf.variants(args)["supervised"], data, args, seed=0)
    ladder, _ = perf.train(perf.variants(args)["ladder"], data, args, seed=0)
    assert ladder > supervised + 0.03, (ladder, supervised)


@pytest.mark.slow
def test_fc_ladder_learns_from_unlabelled_digits():
    """The full ladder beats its noise alone on digits with 10 labels per class (~5 min).

    tests/perf/ladder_fc_digits.py at 50 epochs, seeds 0-2 (README table): test error
    noise-only 9.2, 7.2, 11.4 %, full ladder 6.6, 6.6, 7.8 % (500 test digits, so one
    digit is 0.2 points): a mean gain of 2.3 points, ladder better on each seed. The
    assertion asks for a mean gain of at least one point, under half the measured one
    (seed-to-seed spread of the gain: 1.6 points).
    """
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "perf"))
    import ladder_fc_digits as perf

    args = perf.parse_args(["--epochs", "50"])
    gains = []
    for seed in (0, 1, 2):
        _, _, noise_only, _ = perf.train_one(("noise_only", seed, args))
        _, _, ladder, _ = perf.train_one(("ladder", seed, args))
        gains.append(noise_only - ladder)
    assert np.mean(gains) >= 1.0, gains
