"""A trial's train function is traced once per fit (issue 12: the optimizer is built before
``fit``, so the first trace creates no variable and TensorFlow does not trace it again), and
that changes no number: the weights after training equal those of a plain ``compile``."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

import zoo
from bench.run.trial.run import compile_model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (32, 16, 16))]
    return x, y


def _count_traces(model: Any) -> dict[str, int]:
    """Wrap the model's train and test steps: Python runs them only while TensorFlow traces."""
    counts = {"train": 0, "test": 0}
    train_step, test_step = model.train_step, model.test_step

    def counted_train(data: Any) -> Any:
        counts["train"] += 1
        return train_step(data)

    def counted_test(data: Any) -> Any:
        counts["test"] += 1
        return test_step(data)

    model.train_step, model.test_step = counted_train, counted_test
    return counts


def _fit(prebuilt: bool) -> tuple[list[np.ndarray], dict[str, int], dict[str, list[float]]]:
    keras.utils.set_random_seed(0)
    model, _, _ = zoo.get_model("testnet", 16, 16, 1, 3)
    loss = zoo.get_loss("categorical_crossentropy")
    if prebuilt:
        compile_model(model, optimizer=keras.optimizers.Adam(1e-3), loss=loss, n_classes=3,
                      task="segmentation")
    else:  # what compile_model did before: Keras builds the optimizer inside the trace
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss,
                      weighted_metrics=zoo.metrics.default_metrics(3, "segmentation"))
    counts = _count_traces(model)
    x, y = _data()
    history = model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=2, batch_size=16,
                        shuffle=False, verbose=0)
    return [v.numpy() for v in model.variables], counts, history.history


def test_train_function_is_traced_once_with_the_same_numbers():
    weights, counts, history = _fit(prebuilt=True)
    assert counts == {"train": 1, "test": 1}
    # Keras 3.15 with TensorFlow 2.21 traces the plain compile's train function twice.
    plain_weights, _, plain_history = _fit(prebuilt=False)
    assert history == plain_history
    assert all(np.array_equal(a, b) for a, b in zip(weights, plain_weights, strict=True))
