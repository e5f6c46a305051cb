"""The seed's stateful recipe: train stateless, predict frame by frame with state.

Weights trained on whole sequences load into the same model built
``stateful=True, timesteps=1, batchsize=B``; fed one frame at a time it must
predict what the stateless model predicts on the whole sequence, and
``zoo.reset_states`` must bring it back to the start of a sequence.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

import zoo

SEQUENCE_MODELS = [n for n in zoo.list_models() if zoo.describe_model(n).kind == "sequence"]
BATCH, TIMESTEPS, SIZE = 2, 4, 16
SMALL = {"filters": 4}


def n_classes_for(name: str) -> int:
    return 1 if zoo.describe_model(name).task == "next_frame" else 3


# The shallow model in the default suite; the others (~15-25 s each to build and train) on
# demand: the stateful path (Framewise, ConvLSTM states) is the same code in each.
@pytest.fixture(scope="module", params=[
    n if n == "lstm_shallow" else pytest.param(n, marks=pytest.mark.slow)
    for n in SEQUENCE_MODELS])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A stateless model after two training steps, its stateful copy, a sequence and
    the stateless prediction on it.

    Two training steps move the weights and the batch-norm statistics off their
    initial values; the stateful copy loads them from a ``.weights.h5`` file.
    """
    name = request.param
    keras.utils.set_random_seed(0)
    n_classes = n_classes_for(name)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, TIMESTEPS, SIZE, SIZE, 1), "float32")
    labels = rng.integers(0, max(n_classes, 2), (BATCH, TIMESTEPS, SIZE, SIZE))
    y = labels[..., None].astype("float32") if n_classes == 1 else np.eye(n_classes)[labels]
    stateless, _, _ = zoo.get_model(name, SIZE, SIZE, 1, n_classes, **SMALL)
    loss = "binary_crossentropy" if n_classes == 1 else "categorical_crossentropy"
    stateless.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    for _ in range(2):
        stateless.train_on_batch(x, y)
    path = tmp_path_factory.mktemp(name) / f"{name}.weights.h5"
    stateless.save_weights(path)

    stateful, _, _ = zoo.get_model(
        name, SIZE, SIZE, 1, n_classes, **SMALL, stateful=True, timesteps=1, batchsize=BATCH
    )
    stateful.load_weights(path)
    expected = np.asarray(stateless.predict_on_batch(x))
    return stateless, stateful, x, expected


def feed_frames(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Predict a (B, T, ...) sequence one (B, 1, ...) frame at a time; stack along T."""
    return np.concatenate(
        [np.asarray(model.predict_on_batch(x[:, t : t + 1])) for t in range(x.shape[1])], axis=1
    )


def test_stateful_build_has_fixed_batch_and_one_timestep(pair) -> None:
    _, stateful, _, _ = pair
    assert stateful.input_shape == (BATCH, 1, SIZE, SIZE, 1)
    lstms = [layer for layer in stateful.layers if isinstance(layer, keras.layers.ConvLSTM2D)]
    assert lstms and all(layer.stateful for layer in lstms)


def test_frame_by_frame_equals_whole_sequence(pair) -> None:
    stateless, stateful, x, expected = pair
    zoo.reset_states(stateful)
    got = feed_frames(stateful, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The state matters well beyond that tolerance: the last frame on its own
    # (no state) is predicted differently.
    alone = np.asarray(stateless.predict_on_batch(x[:, -1:]))
    assert np.abs(alone - expected[:, -1:]).max() > 1e-4


def test_reset_states_restarts_the_sequence(pair) -> None:
    _, stateful, x, expected = pair
    zoo.reset_states(stateful)
    feed_frames(stateful, x)

    # Without a reset the model carries the state of the whole sequence over.
    carried = np.asarray(stateful.predict_on_batch(x[:, :1]))
    assert np.abs(carried - expected[:, :1]).max() > 1e-4

    zoo.reset_states(stateful)
    restarted = np.asarray(stateful.predict_on_batch(x[:, :1]))
    np.testing.assert_allclose(restarted, expected[:, :1], atol=1e-5)

    # And a full pass after a reset repeats the first pass.
    zoo.reset_states(stateful)
    np.testing.assert_allclose(feed_frames(stateful, x), expected, atol=1e-5)
