"""zoo.metrics against NumPy implementations of their definitions.

Segmentation metrics are checked against a confusion matrix counted in NumPy
(and mean IoU also against ``keras.metrics.MeanIoU``); PSNR against its formula
and SSIM against Wang et al. 2004 with a Gaussian window written out in NumPy.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from zoo.losses import get_loss
from zoo.metrics import (
    METRICS,
    SSIM,
    default_metrics,
    get_metric,
    list_metrics,
)

SHAPES = [(2, 8, 8, 1), (3, 6, 10, 4), (2, 3, 6, 6, 3), (2, 2, 5, 7, 1)]
SHAPE_IDS = ["image-K1", "image-K4", "sequence-K3", "sequence-K1"]
SEGMENTATION = ["mean_iou", "dice_coef", "pixel_accuracy"]


def make_batch(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random targets and predictions, right on about half of the pixels."""
    rng = np.random.default_rng(seed)
    k = shape[-1]
    if k == 1:
        y = rng.integers(0, 2, size=shape).astype("float32")
        p = np.where(rng.random(shape) < 0.6, y, 1 - y) * 0.8 + 0.1
        p = np.clip(p + rng.normal(scale=0.05, size=shape), 0, 1)
    else:
        labels = rng.integers(0, k, size=shape[:-1])
        y = np.eye(k)[labels]
        p = rng.random(shape) + 0.8 * y
        p = p / p.sum(-1, keepdims=True)
    return y.astype("float32"), p.astype("float32")


def np_confusion(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(truth, prediction) pixel counts; two labels for a sigmoid output."""
    if y.shape[-1] == 1:
        truth, prediction, n = (y[..., 0] > 0.5), (p[..., 0] > 0.5), 2
    else:
        truth, prediction, n = y.argmax(-1), p.argmax(-1), y.shape[-1]
    if weights is None:
        weights = np.ones(len(y))
    pixel_weights = np.broadcast_to(
        np.reshape(weights, (-1,) + (1,) * (truth.ndim - 1)), truth.shape
    )
    confusion = np.zeros((n, n))
    np.add.at(
        confusion,
        (truth.ravel().astype(int), prediction.ravel().astype(int)),
        pixel_weights.ravel(),
    )
    return confusion


def np_scores(confusion: np.ndarray) -> dict[str, float | np.ndarray]:
    tp = np.diag(confusion)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    present = (tp + fp + fn) > 0
    iou = np.where(present, tp / np.maximum(tp + fp + fn, 1e-12), 0.0)
    dice = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)
    return {
        "mean_iou": iou[present].mean() if present.any() else 0.0,
        "dice_coef": dice[present].mean() if present.any() else 0.0,
        "pixel_accuracy": tp.sum() / confusion.sum(),
        "iou": iou,
    }


def result(metric) -> float:
    return float(keras.ops.convert_to_numpy(metric.result()))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", SEGMENTATION)
def test_segmentation_metrics_match_numpy_over_several_batches(name, shape):
    k = shape[-1]
    batches = [make_batch(shape, seed=s) for s in range(3)]
    metric = get_metric(name, k)
    for y, p in batches:
        metric.update_state(y, p)
    y_all = np.concatenate([y for y, _ in batches])
    p_all = np.concatenate([p for _, p in batches])
    expected = np_scores(np_confusion(y_all, p_all))[name]
    # The score of the epoch's pixels together, not a mean of per-batch scores.
    assert result(metric) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_per_class_iou_matches_numpy(shape):
    k = shape[-1]
    y, p = make_batch(shape, seed=3)
    expected = np_scores(np_confusion(y, p))["iou"]
    metrics = [m for m in default_metrics(k) if m.name.startswith("iou_class_")]
    assert [m.name for m in metrics] == [f"iou_class_{c}" for c in range(len(expected))]
    for metric, value in zip(metrics, expected, strict=True):
        metric.update_state(y, p)
        assert result(metric) == pytest.approx(value, rel=1e-5)


def test_mean_iou_agrees_with_keras_mean_iou():
    y, p = make_batch((3, 8, 8, 4), seed=4)
    ours = get_metric("mean_iou", 4)
    ours.update_state(y, p)
    reference = keras.metrics.MeanIoU(num_classes=4, sparse_y_true=False, sparse_y_pred=False)
    reference.update_state(y, p)
    assert result(ours) == pytest.approx(result(reference), rel=1e-6)


@pytest.mark.parametrize("name", [*SEGMENTATION, "iou_class", "psnr", "ssim"])
def test_sample_weight_zero_ignores_a_sample(name):
    params = {"class_id": 1} if name == "iou_class" else {}
    shape = (3, 2, 12, 12, 3) if name in ("psnr", "ssim") else (3, 2, 6, 6, 3)
    y, p = make_batch(shape, seed=5)
    y[1] = 0.0  # an unlabelled sample (all-zero mask), weighted 0 as the Ladder does
    weighted = get_metric(name, 3, **params)
    weighted.update_state(y, p, sample_weight=np.array([1.0, 0.0, 1.0], "float32"))
    subset = get_metric(name, 3, **params)
    subset.update_state(y[[0, 2]], p[[0, 2]])
    assert result(weighted) == pytest.approx(result(subset), rel=1e-5)


@pytest.mark.parametrize("name", SEGMENTATION)
def test_fractional_sample_weights_weight_the_counts(name):
    y, p = make_batch((4, 6, 6, 3), seed=6)
    weights = np.array([0.5, 2.0, 1.0, 0.25], "float32")
    metric = get_metric(name, 3)
    metric.update_state(y, p, sample_weight=weights)
    expected = np_scores(np_confusion(y, p, weights))[name]
    assert result(metric) == pytest.approx(expected, rel=1e-5)


def test_classes_absent_from_truth_and_prediction_are_left_out():
    y = np.zeros((1, 4, 4, 4), "float32")
    y[..., 0] = 1
    y[0, 0, :2] = [0, 1, 0, 0]  # classes 0 and 1 occur; 2 and 3 nowhere
    p = y.copy()
    p[0, 0, 0] = [1, 0, 0, 0]  # one class-1 pixel predicted as class 0
    values = {name: get_metric(name, 4) for name in SEGMENTATION}
    for metric in values.values():
        metric.update_state(y, p)
    iou_0, iou_1 = 14 / 15, 1 / 2
    assert result(values["mean_iou"]) == pytest.approx((iou_0 + iou_1) / 2)
    assert result(values["dice_coef"]) == pytest.approx((28 / 29 + 2 / 3) / 2)
    assert result(values["pixel_accuracy"]) == pytest.approx(15 / 16)
    absent = get_metric("iou_class", 4, class_id=3)
    absent.update_state(y, p)
    assert result(absent) == 0.0


def test_reset_state_starts_a_new_epoch():
    y, p = make_batch((2, 6, 6, 3), seed=7)
    metric = get_metric("mean_iou", 3)
    metric.update_state(y, p)
    metric.update_state(y, y)
    metric.reset_state()
    assert result(metric) == 0.0
    metric.update_state(y, y)
    assert result(metric) == pytest.approx(1.0)


# --- next-frame metrics -----------------------------------------------------------------


def make_frames(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(shape).astype("float32")
    p = np.clip(y + rng.normal(scale=0.1, size=shape), 0, 1).astype("float32")
    return y, p


def np_psnr(y: np.ndarray, p: np.ndarray, max_val: float = 1.0) -> np.ndarray:
    frames = y.shape[-3:]
    mse = ((y.astype("float64") - p) ** 2).reshape(-1, *frames).mean(axis=(1, 2, 3))
    return 10 * np.log10(max_val**2 / np.maximum(mse, 1e-10))


def np_ssim(y: np.ndarray, p: np.ndarray, size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Wang et al. 2004: Gaussian-window SSIM map, valid positions, mean per frame."""
    c1, c2 = 0.01**2, 0.03**2
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def blur(image: np.ndarray) -> np.ndarray:  # (H, W) -> valid (H-size+1, W-size+1)
        h, w = image.shape
        out = np.empty((h - size + 1, w - size + 1))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = (image[i : i + size, j : j + size] * window).sum()
        return out

    frames = y.shape[-3:]
    scores = []
    for a, b in zip(y.reshape(-1, *frames), p.reshape(-1, *frames), strict=True):
        maps = []
        for c in range(frames[-1]):
            x1, x2 = a[..., c].astype("float64"), b[..., c].astype("float64")
            m1, m2 = blur(x1), blur(x2)
            v1, v2 = blur(x1 * x1) - m1**2, blur(x2 * x2) - m2**2
            cov = blur(x1 * x2) - m1 * m2
            luminance = (2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1)
            structure = (2 * cov + c2) / (v1 + v2 + c2)
            maps.append(luminance * structure)
        scores.append(np.mean(maps))
    return np.array(scores)


FRAME_SHAPES = [(2, 16, 16, 1), (2, 3, 12, 14, 1), (2, 12, 12, 3)]
FRAME_IDS = ["image-grey", "sequence-grey", "image-rgb"]


@pytest.mark.parametrize("shape", FRAME_SHAPES, ids=FRAME_IDS)
def test_psnr_matches_numpy(shape):
    batches = [make_frames(shape, seed=s) for s in range(2)]
    metric = get_metric("psnr", 1)
    for y, p in batches:
        metric.update_state(y, p)
    expected = np.concatenate([np_psnr(y, p) for y, p in batches]).mean()
    assert result(metric) == pytest.approx(expected, rel=1e-5)


def test_psnr_of_identical_frames_is_capped_at_100_db():
    y, _ = make_frames((2, 8, 8, 1))
    metric = get_metric("psnr", 1)
    metric.update_state(y, y)
    assert result(metric) == pytest.approx(100.0)


@pytest.mark.parametrize("shape", FRAME_SHAPES, ids=FRAME_IDS)
def test_ssim_matches_numpy(shape):
    y, p = make_frames(shape, seed=8)
    metric = get_metric("ssim", 1)
    metric.update_state(y, p)
    assert result(metric) == pytest.approx(np_ssim(y, p).mean(), rel=1e-4)


def test_ssim_window_shrinks_to_small_frames():
    y, p = make_frames((2, 6, 7, 1), seed=9)
    metric = SSIM(filter_size=11)
    metric.update_state(y, p)
    assert result(metric) == pytest.approx(np_ssim(y, p, size=6).mean(), rel=1e-4)
    identical = SSIM()
    identical.update_state(y, y)
    assert result(identical) == pytest.approx(1.0, abs=1e-5)


# --- names, defaults, serialisation -------------------------------------------------------


def test_names_are_registry_names():
    assert {"mean_iou", "dice_coef", "pixel_accuracy", "iou_class", "psnr", "ssim"} <= set(
        list_metrics()
    )
    assert list_metrics("iou*") == ["iou_class"]
    for name in list_metrics():
        params = {"class_id": 0} if name == "iou_class" else {}
        expected = "iou_class_0" if name == "iou_class" else name
        assert get_metric(name, 3, **params).name == expected


@pytest.mark.parametrize(
    ("k", "task", "names"),
    [
        (
            3,
            "segmentation",
            ["mean_iou", "dice_coef", "pixel_accuracy"] + [f"iou_class_{c}" for c in range(3)],
        ),
        (
            1,
            "segmentation",
            ["mean_iou", "dice_coef", "pixel_accuracy", "iou_class_0", "iou_class_1"],
        ),
        (1, "next_frame", ["psnr", "ssim"]),
    ],
)
def test_default_metrics(k, task, names):
    metrics = default_metrics(k, task=task)
    assert [m.name for m in metrics] == names
    assert all(isinstance(m, keras.metrics.Metric) for m in metrics)


def test_history_keys_from_a_fit(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, padding="same", activation="softmax")]
    )
    model.compile(optimizer="adam", loss=get_loss("ce_dice"), metrics=default_metrics(3))
    y, _ = make_batch((4, 8, 8, 3), seed=10)
    x = np.random.default_rng(10).random((4, 8, 8, 2)).astype("float32")
    history = model.fit(x, y, validation_data=(x, y), batch_size=2, epochs=1, verbose=0)
    expected = {
        "loss",
        "mean_iou",
        "dice_coef",
        "pixel_accuracy",
        "iou_class_0",
        "iou_class_1",
        "iou_class_2",
    }
    assert set(history.history) == expected | {f"val_{key}" for key in expected}
    # The validation metric is the metric of the whole validation set.
    prediction = model.predict(x, verbose=0)
    val_iou = history.history["val_mean_iou"][0]
    assert val_iou == pytest.approx(np_scores(np_confusion(y, prediction))["mean_iou"], rel=1e-5)

    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    after = restored.evaluate(x, y, verbose=0, return_dict=True)
    assert set(after) == set(before)
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize(
    "metric",
    [
        get_metric("mean_iou", 4),
        get_metric("dice_coef", 1),
        get_metric("pixel_accuracy", 2),
        get_metric("iou_class", 5, class_id=4),
        get_metric("psnr", 1, max_val=255.0),
        get_metric("ssim", 3, filter_size=7, filter_sigma=1.0),
    ],
    ids=lambda m: m.name,
)
def test_config_round_trip(metric):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.name == metric.name
    assert restored.get_config() == metric.get_config()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_metric("mean_io", 3), "unknown metric 'mean_io'; choose one of: mean_iou"),
        (lambda: get_metric("mean_iou", 0), "mean_iou: n_classes must be an integer >= 1"),
        (lambda: get_metric("mean_iou", 3, class_id=1), "metric 'mean_iou' has no parameter"),
        (lambda: get_metric("iou_class", 3), r"iou_class: class_id must be an integer in 0\.\.2"),
        (lambda: get_metric("iou_class", 1, class_id=2), r"in 0\.\.1 for n_classes=1"),
        (lambda: get_metric("psnr", 1, max_val=0), "psnr: max_val must be > 0"),
        (lambda: default_metrics(3, task="depth"), "unknown task 'depth'; choose one of"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_number_of_classes_in_the_data_is_a_value_error():
    y, p = make_batch((2, 4, 4, 3))
    with pytest.raises(ValueError, match="mean_iou: tensors have 3 classes on the last axis"):
        get_metric("mean_iou", 4).update_state(y, p)


@pytest.mark.parametrize("name", list_metrics())
def test_registered_parameter_defaults_match_the_constructors(name):
    import inspect

    entry = METRICS.entry(name)
    signature = inspect.signature(entry.obj)
    for param, default in entry.meta["params"].items():
        assert signature.parameters[param].default == default


@pytest.mark.parametrize("name", ["mean_iou", "psnr", "ssim"])
def test_metrics_trace_with_unknown_frame_sizes(name):
    """Models built on ``keras.Input((None, None, C))`` give tensors of unknown size."""
    import tensorflow as tf

    y, p = make_frames((2, 2, 12, 12, 1), seed=11)
    if name == "mean_iou":
        y = (y > 0.5).astype("float32")
    traced_metric, eager_metric = get_metric(name, 1), get_metric(name, 1)
    spec = tf.TensorSpec((None, None, None, None, 1), tf.float32)
    traced = tf.function(traced_metric.update_state, input_signature=[spec, spec])
    traced(y, p)
    eager_metric.update_state(y, p)
    assert result(traced_metric) == pytest.approx(result(eager_metric), rel=1e-6)


def test_weighted_metrics_ignore_unlabelled_samples_in_evaluate():
    """Keras hands sample weights to ``weighted_metrics`` only (not to ``metrics``).

    Compiled as ``weighted_metrics``, the metrics keep their names and skip the
    samples of weight 0: the Ladder's unlabelled samples with all-zero masks.
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, padding="same", activation="softmax")]
    )
    model.compile(loss=get_loss("dice"), weighted_metrics=default_metrics(3), run_eagerly=True)
    y, _ = make_batch((4, 8, 8, 3), seed=12)
    y[[1, 3]] = 0.0
    weights = np.array([1.0, 0.0, 1.0, 0.0], "float32")
    x = np.random.default_rng(12).random((4, 8, 8, 2)).astype("float32")
    weighted = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    labelled = model.evaluate(x[[0, 2]], y[[0, 2]], verbose=0, return_dict=True)
    assert set(weighted) == {"loss", *(m.name for m in default_metrics(3))}
    for name in weighted:
        if name != "loss":  # the loss is averaged over all 4 samples, by Keras' reduction
            assert weighted[name] == pytest.approx(labelled[name], rel=1e-6)
