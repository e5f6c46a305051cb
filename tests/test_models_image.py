"""The image models: shapes, activations, saving, learning, paper sizes, bad input."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import zoo  # noqa: E402
from zoo.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D  # noqa: E402
from zoo.models.blocks import conv_bn_relu, segmentation_head  # noqa: E402

# Small enough to train on a CPU in a fraction of a second; segnet's divisor is 32.
SIZE = 32
TINY = {
    "testnet": {"base_filters": 4},
    "unet": {"base_filters": 4},
    "unet_shallow": {"base_filters": 4},
    "segnet": {"base_filters": 4},
    "segnet_shallow": {"base_filters": 4},
}
IMAGE_MODELS = sorted(TINY)


def batch(n_classes: int, channels: int = 3, n: int = 4, seed: int = 0):
    """Random images and matching targets: one-hot (K >= 2) or a binary mask (K == 1)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZE, SIZE, channels), dtype="float32")
    if n_classes == 1:
        y = (x.mean(axis=-1, keepdims=True) > 0.5).astype("float32")
    else:
        labels = np.minimum((x[..., 0] * n_classes).astype(int), n_classes - 1)
        y = np.eye(n_classes, dtype="float32")[labels]
    return x, y


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("n_classes", [1, 3])
def test_output_shape_and_activation(name, n_classes):
    model, out_h, out_w = zoo.get_model(name, SIZE, SIZE, 2, n_classes, **TINY[name])
    assert model.name == name
    assert (out_h, out_w) == (SIZE, SIZE)
    assert model.output_shape == (None, SIZE, SIZE, n_classes)
    x, _ = batch(n_classes, channels=2, n=2)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, SIZE, SIZE, n_classes) and y.dtype == np.float32
    if n_classes == 1:
        assert np.all((y > 0) & (y < 1))
    else:
        assert np.all(y >= 0)
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_training_lowers_the_loss_and_the_trained_model_reloads(name, tmp_path):
    keras.utils.set_random_seed(0)
    model, _, _ = zoo.get_model(name, SIZE, SIZE, 3, 3, **TINY[name])
    # Eager steps: tracing a train function costs more CPU than six tiny steps;
    # test_testnet_trains_in_graph_mode covers the compiled path.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy", run_eagerly=True
    )
    x, y = batch(3)
    losses = [float(model.train_on_batch(x, y)) for _ in range(6)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    # Trained weights and batch-norm statistics survive a safe-mode round trip.
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.name == name
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


def test_testnet_trains_in_graph_mode():
    keras.utils.set_random_seed(0)
    model, _, _ = zoo.get_model("testnet", SIZE, SIZE, 3, 1, **TINY["testnet"])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    x, y = batch(1)
    losses = [float(model.train_on_batch(x, y)) for _ in range(6)]
    assert losses[-1] < losses[0]


def count_layers(model: keras.Model, cls: type) -> int:
    return sum(isinstance(layer, cls) for layer in model.layers)


def test_unet_paper_size_and_structure():
    model, _, _ = zoo.get_model("unet", 64, 64, 3, 2)
    assert abs(model.count_params() - 31.0e6) / 31.0e6 < 0.05
    convs = [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]
    # Two 3x3 convolutions on each of 4 levels, twice (down and up), plus the bottleneck.
    assert [c.kernel_size for c in convs].count((3, 3)) == 2 * (4 + 4 + 1)
    assert [c.filters for c in convs if c.kernel_size == (3, 3)][:10] == [
        64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024,
    ]
    assert count_layers(model, keras.layers.BatchNormalization) == 18
    ups = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [(u.filters, u.kernel_size, u.strides) for u in ups] == [
        (f, (2, 2), (2, 2)) for f in (512, 256, 128, 64)
    ]
    assert count_layers(model, keras.layers.Concatenate) == 4
    assert count_layers(model, keras.layers.MaxPooling2D) == 4
    assert model.get_layer("bottleneck_dropout").rate == 0.5


def test_segnet_paper_size_and_structure():
    model, _, _ = zoo.get_model("segnet", 64, 64, 3, 2)
    assert abs(model.count_params() - 29.5e6) / 29.5e6 < 0.05
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    encoder = [c.filters for c in convs if c.name.startswith("enc")]
    # VGG16's 13 convolutions in blocks of 2-2-3-3-3.
    assert encoder == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 3 + [512] * 3
    decoder = [c.filters for c in convs if c.name.startswith("dec")] + [2]
    assert decoder == [512] * 3 + [512] * 2 + [256] + [256] * 2 + [128] + [128, 64] + [64, 2]
    assert convs[-1].name == "output" and convs[-1].kernel_size == (3, 3)
    # Batch norm after every convolution but the classifier.
    assert count_layers(model, keras.layers.BatchNormalization) == 25
    assert count_layers(model, MaxPoolingWithArgmax2D) == 5
    assert count_layers(model, MaxUnpooling2D) == 5
    assert count_layers(model, keras.layers.UpSampling2D) == 0


def test_shallow_variants_are_smaller():
    sizes = {
        name: zoo.get_model(name, 32, 32, 3, 2)[0].count_params()
        for name in ("testnet", "unet_shallow", "segnet_shallow")
    }
    assert sizes["testnet"] < 100_000
    assert sizes["unet_shallow"] < 31.0e6 / 20 and sizes["segnet_shallow"] < 29.5e6 / 20


def test_output_is_float32_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        for name in ("testnet", "segnet_shallow"):
            model, _, _ = zoo.get_model(name, 16, 16, 3, 2, base_filters=4)
            assert model.get_layer("output").dtype_policy.compute_dtype == "float32"
            first_conv = "enc1_conv" if name == "testnet" else "enc1_conv1"
            assert model.get_layer(first_conv).compute_dtype == "bfloat16"
            x = batch(2)[0][:, :16, :16]
            assert model(x, training=False).dtype == "float32"
    finally:
        keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize(
    ("name", "size", "options", "message"),
    [
        ("testnet", 12, {}, "multiples of 8"),
        ("unet", 24, {}, "multiples of 16"),
        ("unet", 8, {}, "at least 16"),
        ("segnet", 48, {}, "multiples of 32"),
        ("unet", 16, {"depth": 5}, r"cannot take input_height=16: .*multiples of 32"),
        ("segnet_shallow", 8, {"depth": 4}, r"cannot take input_height=8: .*multiples of 16"),
        ("unet", 16, {"depth": 7}, r"depth must be an int in \[1, 6\]"),
        ("segnet", 32, {"depth": 6}, r"depth must be an int in \[1, 5\]"),
        ("unet", 16, {"base_filters": 0}, "base_filters must be an int >= 1"),
        ("unet", 16, {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ("unet", 16, {"batch_norm": "yes"}, "batch_norm must be True or False"),
        ("testnet", 16, {"base_filters": 2.5}, "base_filters must be an int"),
        ("segnet_shallow", 16, {"kernel_size": 0}, "kernel_size must be an int >= 1"),
        ("unet", 16, {"filters": 8}, "allowed options: base_filters, batch_norm, depth"),
    ],
)
def test_bad_sizes_and_options_are_value_errors(name, size, options, message):
    with pytest.raises(ValueError, match=message):
        zoo.get_model(name, size, size, 3, 2, **options)


def test_listed_and_described():
    assert set(IMAGE_MODELS) <= set(zoo.list_models())
    assert zoo.list_models("segnet*") == ["segnet", "segnet_shallow"]
    expected = {
        "testnet": (8, {"base_filters": 16, "batch_norm": True}),
        "unet": (16, {"base_filters": 64, "depth": 4, "dropout": 0.5, "batch_norm": True}),
        "unet_shallow": (8, {"base_filters": 16, "depth": 3, "dropout": 0.0, "batch_norm": True}),
        "segnet": (32, {"base_filters": 64, "depth": 5, "kernel_size": 3}),
        "segnet_shallow": (8, {"base_filters": 32, "depth": 3, "kernel_size": 3}),
    }
    for name, (divisor, options) in expected.items():
        info = zoo.describe_model(name)
        assert (info.kind, info.task, info.divisor, info.min_size) == (
            "image", "segmentation", divisor, divisor,
        )
        assert info.options == options
        assert info.summary and f"multiples of {divisor}" in info.constraint
    assert "1505.04597" in zoo.describe_model("unet").paper
    assert "1511.00561" in zoo.describe_model("segnet").paper


def test_blocks_on_sequences_share_weights_over_time():
    inputs = keras.Input((4, 8, 8, 2))
    x = conv_bn_relu(inputs, 5, time_distributed=True, name="td")
    model = keras.Model(inputs, segmentation_head(x, 1, time_distributed=True))
    assert model.output_shape == (None, 4, 8, 8, 1)
    assert isinstance(model.get_layer("td"), keras.layers.TimeDistributed)
    head = model.get_layer("output")
    assert isinstance(head, keras.layers.TimeDistributed) and head.dtype_policy.name == "float32"
    # 3x3x2x5 kernel (no bias before batch norm) + 4x5 batch norm + 5x1 + 1 head.
    assert model.count_params() == 90 + 20 + 6
    frame = np.random.default_rng(0).random((1, 1, 8, 8, 2), dtype="float32")
    y = np.asarray(model(np.repeat(frame, 4, axis=1), training=False))
    np.testing.assert_array_equal(y, np.repeat(y[:, :1], 4, axis=1))
