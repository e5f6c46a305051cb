"""bench.run.checkpoints: a trial's model and optimizer state saved and restored exactly."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from bench.run.checkpoints import load_state, save_state


def _compiled(seed: int, model: str = "testnet") -> keras.Model:
    keras.utils.set_random_seed(seed)
    net, _, _ = zoo.get_model(model, 16, 16, 1, 3)
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss=zoo.get_loss("dice"))
    return net


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (8, 16, 16))]
    return x, y


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    x, y = _data()
    continuous = _compiled(0)
    continuous.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)

    first = _compiled(0)
    first.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    save_state(first, tmp_path / "state.npz")
    resumed = _compiled(1)  # other initial weights: everything must come from the file
    load_state(resumed, tmp_path / "state.npz")
    assert int(resumed.optimizer.iterations.numpy()) == 2  # 8 samples / batch 4
    resumed.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    for a, b in zip(continuous.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_loading_into_another_model_names_the_mismatch(tmp_path):
    x, y = _data()
    saved = _compiled(0)
    saved.fit(x, y, batch_size=4, epochs=1, verbose=0)
    save_state(saved, tmp_path / "state.npz")
    other = _compiled(0, "unet_shallow")
    with pytest.raises(ValueError, match=r"state\.npz: .*(variables|shape)"):
        load_state(other, tmp_path / "state.npz")
