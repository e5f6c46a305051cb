"""SegNet's pooling-index layers against TensorFlow's argmax/scatter reference."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402, F401  (registers the layers for safe-mode loading)
from zoo.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D  # noqa: E402


def reference(x: np.ndarray, pool: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``: pooled, flat argmax, unpooled."""
    pooled, argmax = tf.nn.max_pool_with_argmax(x, pool, pool, "VALID")
    b = x.shape[0]
    flat = tf.reshape(argmax, (b, -1))
    batch = tf.broadcast_to(tf.range(b, dtype=flat.dtype)[:, None], flat.shape)
    scatter_at = tf.stack([batch, flat], axis=-1)
    size = int(np.prod(x.shape[1:]))
    unpooled = tf.scatter_nd(scatter_at, tf.reshape(pooled, (b, -1)), (b, size))
    return pooled.numpy(), argmax.numpy(), tf.reshape(unpooled, x.shape).numpy()


def to_flat(indices: np.ndarray, pool: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Window positions ``dy * pw + dx`` → TensorFlow's flat ``(y * W + x) * C + c``."""
    ph, pw = pool
    _, _, w, c = shape
    yo, xo, ch = np.meshgrid(*(np.arange(n) for n in indices.shape[1:]), indexing="ij")
    y, x = yo * ph + indices // pw, xo * pw + indices % pw
    return (y * w + x) * c + ch


def pool_unpool(x: np.ndarray, pool: tuple[int, int]) -> tuple[np.ndarray, ...]:
    pooled, indices = MaxPoolingWithArgmax2D(pool)(x)
    unpooled = MaxUnpooling2D(pool)([pooled, indices])
    return tuple(np.asarray(t) for t in (pooled, indices, unpooled))


@pytest.mark.parametrize("pool", [(2, 2), (2, 3), (3, 1)])
def test_matches_argmax_scatter_reference_on_random_data(pool):
    x = np.random.default_rng(0).normal(size=(3, 6, 12, 5)).astype("float32")
    pooled, indices, unpooled = pool_unpool(x, pool)
    ref_pooled, ref_argmax, ref_unpooled = reference(x, pool)
    assert indices.dtype == np.int32
    assert indices.min() >= 0 and indices.max() < pool[0] * pool[1]
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(to_flat(indices, pool, x.shape), ref_argmax)
    np.testing.assert_array_equal(unpooled, ref_unpooled)


def test_ties_keep_the_first_maximum_only():
    # Values in {0, 1}: most windows hold several equal maxima.
    x = np.random.default_rng(1).integers(0, 2, size=(4, 8, 8, 3)).astype("float32")
    pooled, indices, unpooled = pool_unpool(x, (2, 2))
    ref_pooled, ref_argmax, ref_unpooled = reference(x, (2, 2))
    np.testing.assert_array_equal(to_flat(indices, (2, 2), x.shape), ref_argmax)
    np.testing.assert_array_equal(unpooled, ref_unpooled)
    # One non-zero per window at most: the pooled sum is preserved, nothing doubled.
    np.testing.assert_array_equal(unpooled.sum(axis=(1, 2)), pooled.sum(axis=(1, 2)))
    all_ones = pool_unpool(np.ones((1, 2, 2, 1), "float32"), (2, 2))
    np.testing.assert_array_equal(all_ones[2][0, :, :, 0], [[1, 0], [0, 0]])


def test_gradient_flows_like_max_pooling():
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 6, 3)).astype("float32"))
    w = tf.constant(np.random.default_rng(3).normal(size=(2, 2, 3, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(MaxPoolingWithArgmax2D(2)(x)[0] * w)
        keras_pool = tf.reduce_sum(keras.layers.MaxPooling2D(2)(x) * w)
        pooled, indices = MaxPoolingWithArgmax2D(2)(x)
        round_trip = tf.reduce_sum(MaxUnpooling2D(2)([pooled * 2.0, indices]))
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(keras_pool, x))
    # Through the unpooling: d/dx sum(2 * max) = 2 at each maximum, 0 elsewhere.
    expected = 2.0 * (reference(x.numpy(), (2, 2))[2] != 0)
    np.testing.assert_array_equal(tape.gradient(round_trip, x), expected)


def test_compiles_with_xla_and_gives_the_same_result():
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 4)).astype("float32")
    pool, unpool = MaxPoolingWithArgmax2D(2), MaxUnpooling2D(2)

    @tf.function(jit_compile=True)
    def compiled(t):
        return unpool([*pool(t)])

    np.testing.assert_array_equal(compiled(x).numpy(), reference(x, (2, 2))[2])


def _pool_unpool_model(shape=(8, 8, 2)) -> keras.Model:
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    pooled, indices = MaxPoolingWithArgmax2D(2, name="pool")(x)
    x = MaxUnpooling2D(2, name="unpool")([pooled, indices])
    return keras.Model(inputs, keras.layers.Conv2D(1, 1)(x))


def test_trains_under_jit_compile():
    keras.utils.set_random_seed(0)
    model = _pool_unpool_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=True)
    rng = np.random.default_rng(5)
    x, y = rng.random((4, 8, 8, 2), "float32"), rng.random((4, 8, 8, 1), "float32")
    losses = [float(model.train_on_batch(x, y)) for _ in range(5)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_symbolic_shapes_and_dtypes():
    pooled, indices = MaxPoolingWithArgmax2D((2, 4))(keras.Input((6, 8, 3)))
    assert tuple(pooled.shape) == (None, 3, 2, 3) and pooled.dtype == "float32"
    assert tuple(indices.shape) == (None, 3, 2, 3) and indices.dtype == "int32"
    unpooled = MaxUnpooling2D((2, 4))([pooled, indices])
    assert tuple(unpooled.shape) == (None, 6, 8, 3)


def test_config_round_trip():
    for cls in (MaxPoolingWithArgmax2D, MaxUnpooling2D):
        layer = cls((3, 2), name="p")
        config = layer.get_config()
        assert tuple(config["pool_size"]) == (3, 2) and config["name"] == "p"
        clone = cls.from_config(config)
        assert clone.pool_size == (3, 2) and clone.get_config() == config
        assert keras.saving.get_registered_name(cls) == f"zoo>{cls.__name__}"


def test_saved_model_loads_in_safe_mode(tmp_path):
    model = _pool_unpool_model()
    x = np.random.default_rng(6).random((2, 8, 8, 2), "float32")
    path = tmp_path / "pool.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("pool"), MaxPoolingWithArgmax2D)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("pool_size", [0, (2,), (2, 0), (2.0, 2), True])
def test_bad_pool_size_is_a_value_error(pool_size):
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        MaxPoolingWithArgmax2D(pool_size)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="height 7 is not a multiple of pool_size"):
        MaxPoolingWithArgmax2D(2)(keras.Input((7, 8, 3)))
    with pytest.raises(ValueError, match=r"must be 4-D \(B, H, W, C\)"):
        MaxPoolingWithArgmax2D(2)(keras.Input((8, 3)))
    with pytest.raises(ValueError, match="must have the same shape"):
        MaxUnpooling2D(2)([keras.Input((4, 4, 3)), keras.Input((4, 4, 2), dtype="int32")])
