"""Each dataset is learnable: a small zoo model beats always-predicting-background.

Tiny sizes, a few epochs on the CPU. The baseline is scored by the same metric on
a prediction of background everywhere, so the margin asserted is what the model
learned from the data, not an artefact of how mean IoU treats absent classes.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo


def background_iou(val_ds, n_classes: int) -> float:
    """Validation mean IoU of predicting background (class 0, or 0 for K == 1) everywhere."""
    metric = zoo.get_metric("mean_iou", n_classes)
    for _, y in val_ds:
        constant = np.zeros(y.shape, np.float32)
        if n_classes > 1:
            constant[..., 0] = 1.0
        metric.update_state(y, constant)
    return float(metric.result())


def fit_and_score(dataset: str, model_name: str, *, epochs: int, batch_size: int,
                  lr: float = 3e-3, model_options: dict | None = None,
                  **options) -> tuple[float, float]:
    """(validation mean IoU after training, background-only baseline) on ``dataset``."""
    keras.utils.set_random_seed(0)
    train, val, info = zoo.datasets.load(dataset, batch_size=batch_size, **options)
    height, width, channels = info.input_shape[-3:]
    k = info.n_classes
    model, _, _ = zoo.get_model(model_name, height, width, channels, k, **(model_options or {}))
    loss = "binary_crossentropy" if k == 1 else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=zoo.get_loss(loss),
                  metrics=[zoo.get_metric("mean_iou", k)])
    history = model.fit(train, validation_data=val, epochs=epochs, shuffle=False, verbose=0)
    return history.history["val_mean_iou"][-1], background_iou(val, k)


@pytest.mark.slow  # trains to a score: ~15-20 s each
def test_shapes_are_learned():
    # Batch normalisation is off: its moving statistics need far more steps than
    # this test takes before inference-mode validation is meaningful.
    iou, baseline = fit_and_score(
        "shapes", "unet_shallow", epochs=6, batch_size=8, model_options={"batch_norm": False},
        height=16, width=16, classes=3, train=256, val=64, min_radius=3, max_radius=6)
    assert baseline == pytest.approx(0.236, abs=0.05)  # background IoU / 3 classes
    assert iou > baseline + 0.15, (iou, baseline)


@pytest.mark.slow  # trains to a score: ~15-20 s each
def test_digits_are_learned():
    iou, baseline = fit_and_score(
        "digits", "unet_shallow", epochs=6, batch_size=8, model_options={"batch_norm": False},
        height=16, width=16, digit_size=14, digits_per_image=1, train=512, val=128)
    assert baseline < 0.08  # background IoU / 11 classes
    # Validation digits were never seen in training: this is generalisation.
    assert iou > 1.75 * baseline, (iou, baseline)


@pytest.mark.slow  # trains to a score: ~15-20 s each
def test_moving_digits_next_frame_is_learned():
    # Batch 2 gives ~380 steps in 3 epochs, enough for the model's batch
    # normalisation statistics to settle before validation runs in inference mode.
    iou, baseline = fit_and_score(
        "moving_digits", "lstm_shallow", epochs=3, batch_size=2, target="next_frame",
        height=16, width=16, digit_size=12, frames=3, digits_per_sequence=1, speed=1.0,
        train=256, val=32)
    assert iou > baseline + 0.2, (iou, baseline)
