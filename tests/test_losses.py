"""zoo.losses against NumPy implementations of each paper's formula.

The references below are written from the formulas (per sample, per pixel, per
class, with explicit loops where that reads closer to the paper), independently
of the Keras code, and compared on random data of several shapes: images and
sequences, a sigmoid output (K == 1) and softmax outputs (K >= 2).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.losses import (
    EPSILON,
    LOSSES,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CombinedLoss,
    Dice,
    Focal,
    GeneralizedDice,
    describe_loss,
    get_loss,
    list_losses,
)

# (B, H, W, K) images and (B, T, H, W, K) sequences, sigmoid and softmax.
SHAPES = [(2, 8, 8, 1), (3, 6, 10, 4), (2, 3, 6, 6, 3), (2, 2, 5, 7, 1)]
SHAPE_IDS = ["image-K1", "image-K4", "sequence-K3", "sequence-K1"]


def make_batch(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random targets and predictions: a {0,1} mask + sigmoid, or one-hot + softmax."""
    rng = np.random.default_rng(seed)
    k = shape[-1]
    logits = rng.normal(scale=2.0, size=shape)
    if k == 1:
        y = rng.integers(0, 2, size=shape).astype("float32")
        p = 1.0 / (1.0 + np.exp(-logits))
    else:
        y = np.eye(k)[rng.integers(0, k, size=shape[:-1])]
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y.astype("float32"), p.astype("float32")


def two_class(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([1 - y, y], -1), np.concatenate([1 - p, p], -1)


def per_sample(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).mean(axis=1)


# --- NumPy references --------------------------------------------------------------


def np_categorical_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if y.shape[-1] == 1:
        y, p = two_class(y, p)
    p = np.clip(p.astype("float64"), EPSILON, 1 - EPSILON)
    return per_sample(-(y * np.log(p)).sum(-1))


def np_binary_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype("float64"), EPSILON, 1 - EPSILON)
    return per_sample(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def np_dice(y: np.ndarray, p: np.ndarray, weights=None, smooth: float = 1.0) -> np.ndarray:
    k = y.shape[-1]
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights) / np.sum(weights)
    out = []
    for y_n, p_n in zip(y, p, strict=True):
        dice = [
            (2 * (y_n[..., c] * p_n[..., c]).sum() + smooth)
            / (y_n[..., c].sum() + p_n[..., c].sum() + smooth)
            for c in range(k)
        ]
        out.append(1 - np.dot(w, dice))
    return np.array(out)


def np_generalized_dice(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Sudre et al. 2017, eq. (2); absent classes get the largest present weight."""
    if y.shape[-1] == 1:
        y, p = two_class(y, p)
    y, p = y.astype("float64"), p.astype("float64")
    out = []
    for y_n, p_n in zip(y, p, strict=True):
        r = y_n.reshape(-1, y.shape[-1])  # (N pixels, L classes)
        q = p_n.reshape(-1, y.shape[-1])
        volume = r.sum(0)
        w = np.array([1 / v**2 if v > 0 else np.nan for v in volume])
        w = np.where(np.isnan(w), np.nanmax(w) if np.any(volume > 0) else 1.0, w)
        numerator = (w * (r * q).sum(0)).sum()
        denominator = (w * (r + q).sum(0)).sum()
        out.append(1 - 2 * numerator / denominator)
    return np.array(out)


def np_focal(y: np.ndarray, p: np.ndarray, gamma: float = 2.0, alpha=0.25) -> np.ndarray:
    """Lin et al. 2017 with p_t and alpha_t read off the true class of each pixel."""
    p = np.clip(p.astype("float64"), EPSILON, 1 - EPSILON)
    if y.shape[-1] == 1:
        positive = y[..., 0] == 1
        p_t = np.where(positive, p[..., 0], 1 - p[..., 0])
        if alpha is None:
            alpha_t = np.ones_like(p_t)
        elif np.ndim(alpha) == 0:
            alpha_t = np.where(positive, alpha, 1 - alpha)
        else:
            alpha_t = np.where(positive, alpha[1], alpha[0])
    else:
        label = y.argmax(-1)
        p_t = np.take_along_axis(p, label[..., None], -1)[..., 0]
        if alpha is None:
            alpha_t = np.ones_like(p_t)
        elif np.ndim(alpha) == 0:
            alpha_t = np.full_like(p_t, alpha)
        else:
            alpha_t = np.asarray(alpha)[label]
    return per_sample(-alpha_t * (1 - p_t) ** gamma * np.log(p_t))


# name, params, reference(y, p)
CASES = [
    ("categorical_crossentropy", {}, np_categorical_crossentropy),
    ("binary_crossentropy", {}, np_binary_crossentropy),
    ("dice", {}, np_dice),
    ("dice", {"smooth": 0.0}, lambda y, p: np_dice(y, p, smooth=0.0)),
    ("generalized_dice", {}, np_generalized_dice),
    ("focal", {}, np_focal),
    ("focal", {"gamma": 0.5, "alpha": 0.6}, lambda y, p: np_focal(y, p, 0.5, 0.6)),
    ("focal", {"gamma": 3.0, "alpha": None}, lambda y, p: np_focal(y, p, 3.0, None)),
    (
        "bce_dice",
        {},
        lambda y, p: np_binary_crossentropy(y, p) + np_dice(y, p),
    ),
    (
        "ce_dice",
        {},
        lambda y, p: np_categorical_crossentropy(y, p) + np_dice(y, p),
    ),
]
CASE_IDS = [
    f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}" for name, params, _ in CASES
]


def as_numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=CASE_IDS)
def test_per_sample_values_match_numpy(name, params, reference, shape):
    y, p = make_batch(shape, seed=len(shape) + shape[-1])
    loss = get_loss(name, **params)
    values = as_numpy(loss.call(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p)))
    assert values.shape == (shape[0],)
    np.testing.assert_allclose(values, reference(y, p), rtol=2e-5, atol=1e-6)


def test_every_registered_loss_is_covered_by_a_numpy_reference():
    assert {name for name, _, _ in CASES} == set(list_losses())


@pytest.mark.parametrize("name", list_losses())
def test_sample_weights_weight_whole_samples(name):
    y, p = make_batch((4, 6, 6, 3), seed=1)
    loss = get_loss(name)
    per = as_numpy(loss.call(y, p))
    weights = np.array([1.0, 0.0, 0.5, 2.0], dtype="float32")
    # Keras' default reduction: sum of weighted values over the batch size.
    np.testing.assert_allclose(
        float(loss(y, p, sample_weight=weights)), (per * weights).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(float(loss(y, p)), per.mean(), rtol=1e-5)


def test_dice_class_weights_are_normalised():
    y, p = make_batch((2, 6, 6, 3), seed=2)
    weighted = as_numpy(get_loss("dice", weights=[2, 6, 2]).call(y, p))
    np.testing.assert_allclose(weighted, np_dice(y, p, weights=[0.2, 0.6, 0.2]), rtol=1e-5)
    # Equal weights are the unweighted Dice.
    np.testing.assert_allclose(
        as_numpy(get_loss("dice", weights=[5, 5, 5]).call(y, p)),
        as_numpy(get_loss("dice").call(y, p)),
        rtol=1e-6,
    )
    assert get_loss("dice", weights=[2, 6, 2]).weights == pytest.approx([0.2, 0.6, 0.2])


def test_dice_is_zero_for_a_perfect_prediction_without_smoothing():
    y, _ = make_batch((2, 5, 5, 3), seed=3)
    np.testing.assert_allclose(as_numpy(Dice(smooth=0.0).call(y, y)), 0.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 6, 6, 3), (2, 3, 4, 4, 5)], ids=["image", "sequence"])
def test_focal_with_gamma_0_alpha_1_is_the_categorical_crossentropy(shape):
    y, p = make_batch(shape, seed=4)
    focal = as_numpy(get_loss("focal", gamma=0.0, alpha=1.0).call(y, p))
    crossentropy = as_numpy(get_loss("categorical_crossentropy").call(y, p))
    np.testing.assert_allclose(focal, crossentropy, rtol=1e-6)
    # And Keras' own crossentropy agrees with ours.
    keras_ce = keras.losses.categorical_crossentropy(y, p).numpy()
    np.testing.assert_allclose(crossentropy, per_sample(keras_ce), rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 6, 6, 1), (2, 3, 4, 4, 1)], ids=["image", "sequence"])
def test_binary_focal_with_gamma_0_is_the_binary_crossentropy(shape):
    """K == 1: no balancing (alpha None, or [1, 1]) and gamma 0 give the BCE.

    With the paper's alpha_t (alpha on foreground, 1 - alpha on background),
    alpha = 1 drops the background term and alpha = 0.5 halves the BCE.
    """
    y, p = make_batch(shape, seed=5)
    bce = as_numpy(get_loss("binary_crossentropy").call(y, p))
    for alpha in (None, [1.0, 1.0]):
        focal = as_numpy(get_loss("focal", gamma=0.0, alpha=alpha).call(y, p))
        np.testing.assert_allclose(focal, bce, rtol=1e-6)
    half = as_numpy(get_loss("focal", gamma=0.0, alpha=0.5).call(y, p))
    np.testing.assert_allclose(half, 0.5 * bce, rtol=1e-6)
    foreground_only = as_numpy(get_loss("focal", gamma=0.0, alpha=1.0).call(y, p))
    expected = per_sample(-y * np.log(np.clip(p.astype("float64"), EPSILON, 1)))
    np.testing.assert_allclose(foreground_only, expected, rtol=1e-5)
    keras_bce = keras.losses.binary_crossentropy(y, p).numpy()
    np.testing.assert_allclose(bce, per_sample(keras_bce), rtol=1e-5)


def test_focal_per_class_alpha_and_focusing_down_weights_easy_pixels():
    y, p = make_batch((2, 6, 6, 3), seed=6)
    alpha = [0.2, 0.3, 0.5]
    values = as_numpy(get_loss("focal", gamma=2.0, alpha=alpha).call(y, p))
    np.testing.assert_allclose(values, np_focal(y, p, 2.0, alpha), rtol=1e-5)
    # (1 - p_t)^gamma <= 1: focusing never raises the loss above the balanced CE.
    balanced_ce = as_numpy(get_loss("focal", gamma=0.0, alpha=alpha).call(y, p))
    assert np.all(values < balanced_ce)


def absent_class_batches() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Targets where classes are missing, with saturated (exact 0/1) predictions."""
    k = 3
    only_background = np.zeros((2, 6, 6, k), "float32")
    only_background[..., 0] = 1
    saturated = np.zeros((2, 6, 6, k), "float32")
    saturated[..., 2] = 1  # predicts with certainty a class that is absent
    unlabelled = np.zeros((2, 6, 6, k), "float32")  # the Ladder's all-zero masks
    empty_mask = np.zeros((2, 6, 6, 1), "float32")
    return [
        ("softmax-one-class", only_background, saturated),
        ("softmax-perfect", only_background, only_background),
        ("softmax-all-zero-mask", unlabelled, saturated),
        ("sigmoid-empty-mask", empty_mask, np.ones_like(empty_mask)),
        ("sigmoid-empty-perfect", empty_mask, empty_mask),
    ]


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize(
    ("y", "p"),
    [(y, p) for _, y, p in absent_class_batches()],
    ids=[case for case, _, _ in absent_class_batches()],
)
def test_losses_and_gradients_are_finite_when_classes_are_absent(name, y, p):
    loss = get_loss(name)
    p = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y, p, sample_weight=np.array([1.0, 0.0], "float32"))
    gradient = tape.gradient(value, p)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient.numpy()))


def test_generalized_dice_gives_absent_classes_the_largest_present_weight():
    # One sample, 4 pixels, 3 classes: class 0 on 3 pixels, class 1 on 1, class 2 absent.
    y = np.eye(3, dtype="float32")[[0, 0, 0, 1]].reshape(1, 2, 2, 3)
    p = np.array(
        [[0.7, 0.2, 0.1], [0.6, 0.2, 0.2], [0.5, 0.1, 0.4], [0.3, 0.6, 0.1]], "float32"
    ).reshape(1, 2, 2, 3)
    w = np.array([1 / 9, 1.0, 1.0])  # 1/3^2, 1/1^2, and class 2 -> max(1/9, 1)
    intersection = np.array([0.7 + 0.6 + 0.5, 0.6, 0.0])
    sizes = np.array([3 + 0.7 + 0.6 + 0.5 + 0.3, 1 + 0.2 + 0.2 + 0.1 + 0.6, 0.1 + 0.2 + 0.4 + 0.1])
    expected = 1 - 2 * (w * intersection).sum() / (w * sizes).sum()
    value = as_numpy(GeneralizedDice().call(y, p))
    np.testing.assert_allclose(value, [expected], rtol=1e-6)


def test_generalized_dice_is_zero_for_a_perfect_prediction():
    y, _ = make_batch((2, 3, 4, 4, 3), seed=11)
    np.testing.assert_allclose(as_numpy(GeneralizedDice().call(y, y)), [0.0, 0.0], atol=1e-6)


# --- composition ---------------------------------------------------------------------


def test_composition_names_and_values():
    y, p = make_batch((3, 6, 6, 3), seed=7)
    dice, focal = get_loss("dice"), get_loss("focal")
    combined = dice + 0.5 * focal
    assert isinstance(combined, CombinedLoss)
    assert combined.name == "dice+0.5*focal"
    np.testing.assert_allclose(
        as_numpy(combined.call(y, p)),
        as_numpy(dice.call(y, p)) + 0.5 * as_numpy(focal.call(y, p)),
        rtol=1e-6,
    )
    assert (focal * 2).name == "2*focal"
    assert (0.5 * focal).name == "0.5*focal"
    # Nested combinations flatten, weights multiply.
    nested = 2 * (combined + get_loss("categorical_crossentropy"))
    assert nested.name == "2*dice+focal+2*categorical_crossentropy"
    assert nested.coefficients == [2.0, 1.0, 2.0]
    total = sum([dice, focal])
    assert total.name == "dice+focal"
    assert (np.float32(0.5) * dice).name == "0.5*dice"
    with pytest.raises(TypeError):
        _ = dice + 1.0
    with pytest.raises(TypeError):
        _ = dice * "2"


def test_keras_losses_compose_with_zoo_losses():
    """Keras' crossentropy keeps the pixel axes; the combination averages them per sample."""
    y, p = make_batch((3, 6, 6, 3), seed=12)
    combined = get_loss("dice") + keras.losses.CategoricalCrossentropy()
    assert combined.name == "dice+categorical_crossentropy"
    np.testing.assert_allclose(
        as_numpy(combined.call(y, p)), np_dice(y, p) + np_categorical_crossentropy(y, p), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("name", "parts"),
    [("bce_dice", [BinaryCrossentropy, Dice]), ("ce_dice", [CategoricalCrossentropy, Dice])],
)
def test_pair_losses_are_compositions(name, parts):
    loss = get_loss(name, weights=[1, 3, 1], smooth=0.5)
    assert isinstance(loss, CombinedLoss)
    assert loss.name == name
    assert [type(term) for term in loss.losses] == parts
    assert loss.coefficients == [1.0, 1.0]
    assert loss.losses[1].weights == pytest.approx([0.2, 0.6, 0.2])
    assert loss.losses[1].smooth == 0.5


@pytest.mark.parametrize(
    "loss",
    [
        Dice(weights=[1, 2, 3], smooth=0.5),
        Focal(gamma=1.5, alpha=[0.1, 0.2, 0.7]),
        Focal(alpha=None),
        GeneralizedDice(),
        get_loss("ce_dice"),
        get_loss("dice") + 0.25 * get_loss("focal", gamma=1.0),
    ],
    ids=["dice", "focal-list", "focal-none", "gdl", "ce_dice", "dice+0.25*focal"],
)
def test_config_round_trip(loss):
    y, p = make_batch((2, 5, 5, 3), seed=8)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.name == loss.name
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(as_numpy(restored.call(y, p)), as_numpy(loss.call(y, p)))


# Combined names ("dice+0.5*focal") meet TensorFlow's name-scope rules only when the
# step is traced as a graph, so combinations also run in graph mode; the other
# losses run eagerly, which is enough for the save/load round trip and twice faster.
SAVE_CASES = [(name, name.endswith("_dice")) for name in list_losses()] + [("dice+0.5*focal", True)]


@pytest.mark.parametrize(("name", "graph"), SAVE_CASES, ids=[name for name, _ in SAVE_CASES])
def test_model_compiled_with_the_loss_saves_and_loads_in_safe_mode(tmp_path, name, graph):
    keras.utils.set_random_seed(0)
    loss = get_loss("dice") + 0.5 * get_loss("focal") if "+" in name else get_loss(name)
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, padding="same", activation="softmax")]
    )
    model.compile(optimizer="adam", loss=loss, run_eagerly=not graph)
    y, _ = make_batch((4, 8, 8, 3), seed=9)
    x = np.random.default_rng(9).random((4, 8, 8, 2)).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored.loss) is type(loss)
    assert restored.loss.name == loss.name
    before = model.evaluate(x, y, verbose=0)
    after = restored.evaluate(x, y, verbose=0)
    assert np.isfinite(before)
    np.testing.assert_allclose(after, before, rtol=1e-6)


# --- registry and errors ---------------------------------------------------------------


def test_contract_names_are_registered_and_listable():
    contract = {
        "categorical_crossentropy",
        "binary_crossentropy",
        "dice",
        "bce_dice",
        "generalized_dice",
        "ce_dice",
        "focal",
    }
    assert contract <= set(list_losses())
    assert list_losses("*dice*") == ["dice", "generalized_dice", "bce_dice", "ce_dice"]
    for name in list_losses():
        assert get_loss(name).name == name
        assert describe_loss(name)["summary"]


@pytest.mark.parametrize("name", list_losses())
def test_registered_parameter_defaults_match_the_constructors(name):
    import inspect

    entry = LOSSES.entry(name)
    signature = inspect.signature(entry.obj)
    for param, default in entry.meta["params"].items():
        assert signature.parameters[param].default == default


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_loss("dcie"), "unknown loss 'dcie'; choose one of: categorical_crossentropy"),
        (lambda: get_loss("focal", gama=2), "loss 'focal' has no parameter 'gama'; its parameters"),
        (lambda: get_loss("dice", weights=[1, -1]), "dice: weights must be non-negative"),
        (lambda: get_loss("dice", weights="abc"), "dice: weights must be a list of numbers"),
        (lambda: get_loss("focal", gamma=-1), "focal: gamma must be >= 0"),
        (lambda: get_loss("focal", alpha="x"), "focal: alpha must be a number"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()


def test_per_class_parameters_of_the_wrong_length_are_value_errors():
    y, p = make_batch((2, 4, 4, 3), seed=10)
    with pytest.raises(ValueError, match="dice: weights has 2 entries but y_pred needs 3"):
        get_loss("dice", weights=[1, 2]).call(y, p)
    with pytest.raises(ValueError, match="focal: alpha has 2 entries but y_pred needs 3"):
        get_loss("focal", alpha=[0.5, 0.5]).call(y, p)
    y1, p1 = make_batch((2, 4, 4, 1), seed=10)
    with pytest.raises(ValueError, match=r"focal: for a sigmoid output alpha is one number or 2"):
        get_loss("focal", alpha=[0.2, 0.3, 0.5]).call(y1, p1)
    with pytest.raises(ValueError, match=r"focal: for a sigmoid output alpha must be in \[0, 1\]"):
        get_loss("focal", alpha=2.0).call(y1, p1)


@pytest.mark.parametrize("name", ["dice", "bce_dice", "ce_dice"])
def test_dice_without_smoothing_counts_a_class_absent_from_truth_and_prediction_as_1(name):
    # Issue 11 item 11: smooth=0 gave 0/0 = NaN for such a class, and NaN gradients.
    y = np.zeros((1, 2, 2, 3), "float32")
    y[..., 0] = 1.0  # only class 0 present
    p = np.zeros((1, 2, 2, 3), "float32")
    p[..., 0] = 0.75
    p[..., 1] = 0.25  # class 2: absent from truth and prediction
    dice_0 = 2 * 3.0 / (4 + 3.0)  # 2 * sum(y p) / (sum y + sum p) of class 0
    expected = 1 - (dice_0 + 0.0 + 1.0) / 3  # class 1: predicted, absent: Dice 0
    variable = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = get_loss("dice", smooth=0.0)(y, variable)
    gradient = tape.gradient(value, variable)
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)
    assert np.all(np.isfinite(gradient.numpy()))
    combined = get_loss(name, smooth=0.0)(y, variable)
    assert np.isfinite(float(combined))
