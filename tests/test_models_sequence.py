"""The ConvLSTM sequence models (zoo/models/recurrent.py) and the DepthToSpace layer.

Inputs are tiny (16x16 frames, 2-5 timesteps, batch 2, few filters) so the file
runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

import zoo
from zoo.layers import DepthToSpace
from zoo.models.recurrent import Framewise

SEQUENCE_MODELS = [n for n in zoo.list_models() if zoo.describe_model(n).kind == "sequence"]
SIZE = 16
# Small filter counts keep every model quick on CPU (lstm_next_frame needs a multiple of 4).
SMALL = {"filters": 4}


def moving_squares(
    n: int, timesteps: int, size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Greyscale frames of a 4x4 square bouncing off the walls, and its next frames.

    Returns ``(frames, next_frames)``, each (n, timesteps, size, size, 1) float32
    in {0, 1}; ``next_frames[:, t]`` is the frame after ``frames[:, t]``.
    """
    rng = np.random.default_rng(seed)
    video = np.zeros((n, timesteps + 1, size, size, 1), "float32")
    for i in range(n):
        row, col = rng.integers(0, size - 4, 2)
        d_row, d_col = rng.choice([-1, 1], 2)
        for t in range(timesteps + 1):
            video[i, t, row : row + 4, col : col + 4] = 1.0
            if not 0 <= row + d_row <= size - 4:
                d_row = -d_row
            if not 0 <= col + d_col <= size - 4:
                d_col = -d_col
            row, col = row + d_row, col + d_col
    return video[:, :-1], video[:, 1:]


def n_classes_for(name: str) -> int:
    # Next-frame prediction outputs greyscale frames; segmenters get a softmax case.
    return 1 if zoo.describe_model(name).task == "next_frame" else 3


@pytest.fixture(scope="module", params=SEQUENCE_MODELS)
def built(request: pytest.FixtureRequest) -> tuple[str, keras.Model, int, int]:
    name = request.param
    model, out_h, out_w = zoo.get_model(name, SIZE, SIZE, 1, n_classes_for(name), **SMALL)
    return name, model, out_h, out_w


def test_the_four_seed_models_are_registered_as_sequence_models() -> None:
    assert {"lstm_unet", "lstm_shallow", "lstm_full", "lstm_next_frame"} <= set(SEQUENCE_MODELS)
    info = zoo.describe_model("lstm_next_frame")
    assert info.task == "next_frame"
    assert {"stateful": False, "timesteps": None, "batchsize": None}.items() <= info.options.items()
    assert zoo.describe_model("lstm_unet").task == "segmentation"


@pytest.mark.parametrize("timesteps", [2, 5])
def test_output_shape_for_any_number_of_timesteps(built, timesteps: int) -> None:
    name, model, out_h, out_w = built
    assert model.name == name
    assert model.input_shape == (None, None, SIZE, SIZE, 1)
    x = np.random.default_rng(timesteps).random((2, timesteps, SIZE, SIZE, 1), "float32")
    y = model.predict(x, verbose=0)
    assert (out_h, out_w) == (SIZE, SIZE)
    assert y.shape == (2, timesteps, out_h, out_w, n_classes_for(name))
    assert y.dtype == np.float32


def test_output_activation_sigmoid_or_softmax(built) -> None:
    name, model, _, _ = built
    x = np.random.default_rng(1).random((2, 3, SIZE, SIZE, 1), "float32")
    y = model.predict(x, verbose=0)
    assert np.all((y >= 0) & (y <= 1))
    if n_classes_for(name) > 1:
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)
    else:
        # A sigmoid output is not a distribution: values differ across pixels.
        assert y.std() > 0


def test_sigmoid_for_one_class_softmax_for_several() -> None:
    x = np.random.default_rng(2).random((1, 2, SIZE, SIZE, 1), "float32")
    binary, _, _ = zoo.get_model("lstm_shallow", SIZE, SIZE, 1, 1, **SMALL)
    multi, _, _ = zoo.get_model("lstm_next_frame", SIZE, SIZE, 1, 4, **SMALL)
    assert binary.layers[-1].layer.activation is keras.activations.sigmoid
    assert multi.layers[-1].layer.activation is keras.activations.softmax
    np.testing.assert_allclose(multi.predict(x, verbose=0).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_parameter_count_does_not_depend_on_timesteps(name: str) -> None:
    counts = {
        options_key: zoo.get_model(name, SIZE, SIZE, 1, 2, **SMALL, **options)[0].count_params()
        for options_key, options in {
            "free": {},
            "t2": {"timesteps": 2},
            "t7": {"timesteps": 7},
            "stateful": {"stateful": True, "timesteps": 1, "batchsize": 2},
        }.items()
    }
    assert len(set(counts.values())) == 1, counts
    assert counts["free"] > 0


def test_output_layer_is_float32_under_mixed_precision() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        for name in SEQUENCE_MODELS:
            model, _, _ = zoo.get_model(name, SIZE, SIZE, 1, 2, **SMALL)
            assert model.layers[1].compute_dtype == "float16", name
            assert model.layers[-1].compute_dtype == "float32", name
            assert model.output.dtype == "float32", name
    finally:
        keras.config.set_dtype_policy(previous)


def test_save_and_load_in_safe_mode_gives_identical_predictions(built, tmp_path) -> None:
    name, model, _, _ = built
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.name == name
    x = np.random.default_rng(3).random((2, 4, SIZE, SIZE, 1), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_next_frame_model_saves_its_depth_to_space_layers(tmp_path) -> None:
    model, _, _ = zoo.get_model("lstm_next_frame", SIZE, SIZE, 1, 1, **SMALL)
    wrapped = [
        layer.layer for layer in model.layers if isinstance(layer, keras.layers.TimeDistributed)
    ]
    assert sum(isinstance(layer, DepthToSpace) for layer in wrapped) == 3
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    model.save(tmp_path / "nf.keras")
    loaded = keras.saving.load_model(tmp_path / "nf.keras", safe_mode=True)
    reloaded = [
        layer.layer for layer in loaded.layers if isinstance(layer, keras.layers.TimeDistributed)
    ]
    assert sum(isinstance(layer, DepthToSpace) for layer in reloaded) == 3


# The shallow model trains in the default suite; the other three (~12-17 s each) on demand.
@pytest.mark.parametrize("name", [
    n if n == "lstm_shallow" else pytest.param(n, marks=pytest.mark.slow)
    for n in SEQUENCE_MODELS])
def test_a_few_training_steps_lower_the_loss(name: str) -> None:
    keras.utils.set_random_seed(0)
    frames, next_frames = moving_squares(4, 3, SIZE)
    if zoo.describe_model(name).task == "next_frame":
        model, _, _ = zoo.get_model(name, SIZE, SIZE, 1, 1, **SMALL)
        target, loss = next_frames, "binary_crossentropy"
    else:
        model, _, _ = zoo.get_model(name, SIZE, SIZE, 1, 2, **SMALL)
        # Segment the square: class 1 where it is, class 0 elsewhere.
        target, loss = np.concatenate([1 - frames, frames], axis=-1), "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    losses = [float(model.train_on_batch(frames, target)) for _ in range(8)]
    assert np.all(np.isfinite(losses))
    # Measured (seed 0): the segmenters drop 25-65% in 8 steps, lstm_next_frame about 5%
    # (its sigmoid starts at 0.5 on frames that are 94% background).
    assert losses[-1] < 0.97 * losses[0], losses
    assert np.all(np.diff(losses) < 0), losses


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("lstm_unet", {"filters": 0}, "filters must be a positive int"),
        ("lstm_full", {"filters": 2.5}, "option filters must be an int, got 2.5"),
        ("lstm_next_frame", {"filters": 6}, "positive multiple of 4"),
        ("lstm_shallow", {"stateful": True, "timesteps": 1}, "needs timesteps and batchsize"),
        ("lstm_shallow", {"stateful": "yes", "timesteps": 1, "batchsize": 2}, "True or False"),
        ("lstm_shallow", {"timesteps": -1}, "timesteps must be a positive int"),
        ("lstm_unet", {"depth": 3}, "allowed options: batchsize, filters, stateful, timesteps"),
    ],
)
def test_bad_options_raise_value_error(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        zoo.get_model(name, SIZE, SIZE, 1, 2, **options)


@pytest.mark.parametrize(
    ("name", "size"), [("lstm_unet", 20), ("lstm_full", 18), ("lstm_shallow", 15)]
)
def test_sizes_the_architecture_cannot_take_raise_value_error(name: str, size: int) -> None:
    with pytest.raises(ValueError, match="multiples of"):
        zoo.get_model(name, size, SIZE, 1, 2)


def test_framewise_applies_its_layer_to_every_frame_of_any_length() -> None:
    # Regression: keras.layers.TimeDistributed with a free time axis maps over the
    # batch size, so after tracing T=2 it returns 2 frames for T=5.
    inputs = keras.Input((None, 4, 4, 1))
    conv = keras.layers.Conv2D(2, 3, padding="same")
    model = keras.Model(inputs, Framewise(conv)(inputs))
    rng = np.random.default_rng(4)
    for timesteps in (2, 5, 1):
        x = rng.random((3, timesteps, 4, 4, 1), "float32")
        y = model.predict(x, verbose=0)
        per_frame = np.stack(
            [keras.ops.convert_to_numpy(conv(x[:, t])) for t in range(timesteps)], axis=1
        )
        np.testing.assert_allclose(y, per_frame, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- DepthToSpace


def depth_to_space_reference(x: np.ndarray, r: int, data_format: str) -> np.ndarray:
    """NumPy pixel shuffle in TensorFlow's order: channel (i * r + j) * C + c -> pixel (i, j)."""
    if data_format == "channels_first":
        x = x.transpose(0, 2, 3, 1)
    b, h, w, c = x.shape
    out = x.reshape(b, h, w, r, r, c // r**2).transpose(0, 1, 3, 2, 4, 5)
    out = out.reshape(b, h * r, w * r, c // r**2)
    return out.transpose(0, 3, 1, 2) if data_format == "channels_first" else out


@pytest.mark.parametrize("block_size", [2, 3])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_depth_to_space_matches_numpy_reference(block_size: int, data_format: str) -> None:
    channels = 2 * block_size**2
    shape = (2, 3, 4, channels) if data_format == "channels_last" else (2, channels, 3, 4)
    x = np.arange(np.prod(shape), dtype="float32").reshape(shape)
    layer = DepthToSpace(block_size, data_format=data_format)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(y, depth_to_space_reference(x, block_size, data_format))
    assert layer.compute_output_shape(shape) == y.shape


def test_depth_to_space_pixel_layout_by_hand() -> None:
    # One pixel with channels [0, 1, 2, 3] becomes the 2x2 block [[0, 1], [2, 3]].
    x = np.arange(4, dtype="float32").reshape(1, 1, 1, 4)
    y = keras.ops.convert_to_numpy(DepthToSpace(2, data_format="channels_last")(x))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1], [2, 3]])


def test_depth_to_space_config_round_trips() -> None:
    layer = DepthToSpace(3, data_format="channels_first", name="d2s")
    config = layer.get_config()
    assert (config["block_size"], config["data_format"], config["name"]) == (
        3,
        "channels_first",
        "d2s",
    )
    clone = DepthToSpace.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "zoo>DepthToSpace"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, DepthToSpace)
    assert restored.get_config() == config


def test_depth_to_space_is_exported() -> None:
    import zoo.layers
    import zoo.layers.depth_to_space as module

    assert "DepthToSpace" in module.__all__
    assert zoo.layers.DepthToSpace is DepthToSpace


@pytest.mark.parametrize(
    ("kwargs", "shape", "message"),
    [
        ({"block_size": 1}, None, "block_size must be an int >= 2"),
        ({"data_format": "nhwc"}, None, "data_format must be one of"),
        ({"block_size": 2}, (1, 2, 2, 6), "divisible by block_size\\*\\*2 = 4"),
        ({"block_size": 2}, (1, 2, 2, 2, 4), "expects a 4-D input"),
    ],
)
def test_depth_to_space_bad_input(kwargs: dict, shape: tuple | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer = DepthToSpace(**kwargs)
        layer(np.zeros(shape, "float32"))
