"""zoo.datasets: the held-out test split (load_splits) and epochs as a function of (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.datasets import SplitArrays, register_dataset

SMALL = {
    "shapes": {"height": 16, "width": 16, "train": 12, "val": 6, "test": 5},
    "digits": {"height": 16, "width": 16, "digit_size": 8, "train": 12, "val": 6, "test": 5},
    "moving_digits": {"height": 16, "width": 16, "digit_size": 8, "frames": 3, "train": 6,
                      "val": 4, "test": 3},
}


def as_numpy(ds) -> list[tuple[np.ndarray, ...]]:
    """Every element of ``ds`` as a tuple of NumPy arrays."""
    return [tuple(t.numpy() for t in element) for element in ds]


def samples(ds) -> list[bytes]:
    """The x of every element of an unbatched ``ds``, as bytes."""
    return [element[0].tobytes() for element in as_numpy(ds)]


def assert_disjoint(splits, total: int | None = None) -> None:
    """No sample (x) in two splits, none twice in one; ``total`` samples in all if given."""
    parts = [samples(ds) for ds in (splits.train, splits.val, splits.test)]
    sizes = [len(part) for part in parts]
    info = splits.info
    assert sizes == [info.train_size, info.val_size, info.test_size]
    assert min(sizes) > 0
    everything = [x for part in parts for x in part]
    assert len(set(everything)) == len(everything), "a sample is in two splits (or twice)"
    if total is not None:
        assert len(everything) == total


@pytest.fixture
def folder_path(tmp_path):
    """Ten 6x6 image/mask pairs, every image different, masks of 3x3 quadrants."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    quadrant = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 3, axis=0), 3, axis=1)
    for i in range(10):
        image = np.full((6, 6, 3), 20 * i, np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"p{i}.png")
        Image.fromarray((quadrant % (1 + i % 3)).astype(np.uint8)).save(
            tmp_path / "masks" / f"p{i}.png")
    return tmp_path


@pytest.fixture
def npz_path(tmp_path):
    """Twenty distinct 4x4 greyscale samples with class-index masks."""
    x = np.random.default_rng(0).integers(0, 256, size=(20, 4, 4), dtype=np.uint8)
    x[:, 0, 0] = np.arange(20)  # every sample different
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=(x % 3).astype(np.int64))
    return str(path)


@pytest.mark.parametrize("name", ["shapes", "digits", "moving_digits"])
def test_synthetic_splits_are_disjoint_sized_and_fixed_by_the_seed(name):
    splits = zoo.datasets.load_splits(name, **SMALL[name])
    assert_disjoint(splits)
    expected = SMALL[name]
    info = splits.info
    assert (info.train_size, info.val_size, info.test_size) == (
        expected["train"], expected["val"], expected["test"])
    assert info.options["test"] == expected["test"]
    again = zoo.datasets.load_splits(name, **SMALL[name])
    assert samples(again.test) == samples(splits.test)
    # The trial seed moves train and validation, never the test split (split_seed does).
    other = zoo.datasets.load_splits(name, seed=1, **SMALL[name])
    assert samples(other.test) == samples(splits.test)
    assert samples(other.val) != samples(splits.val)
    moved = zoo.datasets.load_splits(name, split_seed=1, **SMALL[name])
    assert samples(moved.test) != samples(splits.test)
    # The test set does not change when the training set grows.
    bigger = zoo.datasets.load_splits(name, **{**SMALL[name], "train": 9})
    assert samples(bigger.test) == samples(splits.test)
    # Test elements look like validation ones: (x, y) of the same shapes, fully labelled.
    (xv, yv), (xt, yt) = as_numpy(splits.val)[0], as_numpy(splits.test)[0]
    assert xv.shape == xt.shape and yv.shape == yt.shape


def test_every_dataset_has_a_test_split_by_default():
    for name, option, default in [("shapes", "test", 128), ("digits", "test", 128),
                                  ("moving_digits", "test", 64), ("digits", "test_digits", 0.2),
                                  ("folder", "test_fraction", 0.2),
                                  ("npz", "test_fraction", 0.2)]:
        assert zoo.datasets.describe_dataset(name).options[option] == default
    info = zoo.datasets.load_splits("shapes", height=8, width=8, train=4, val=2).info
    assert info.test_size == 128


def test_folder_splits_are_disjoint_and_fixed_by_the_seed(folder_path):
    splits = zoo.datasets.load_splits("folder", path=str(folder_path))
    assert_disjoint(splits, total=10)
    assert (splits.info.train_size, splits.info.val_size, splits.info.test_size) == (6, 2, 2)
    again = zoo.datasets.load_splits("folder", path=str(folder_path))
    assert samples(again.test) == samples(splits.test)
    # The test split is the same for every trial seed; validation moves with the seed.
    seeds = [zoo.datasets.load_splits("folder", path=str(folder_path), seed=s) for s in range(5)]
    assert {tuple(samples(s.test)) for s in seeds} == {tuple(samples(splits.test))}
    assert len({tuple(samples(s.val)) for s in seeds}) > 1
    moved = zoo.datasets.load_splits("folder", path=str(folder_path), split_seed=3)
    assert samples(moved.test) != samples(splits.test)
    # The test set stays put when val_fraction changes.
    wider_val = zoo.datasets.load_splits("folder", path=str(folder_path), val_fraction=0.4)
    assert samples(wider_val.test) == samples(splits.test)
    assert wider_val.info.val_size == 4


def test_npz_splits_are_disjoint_and_test_fraction_is_checked(npz_path):
    splits = zoo.datasets.load_splits("npz", path=npz_path, test_fraction=0.25)
    assert_disjoint(splits, total=20)
    assert (splits.info.train_size, splits.info.val_size, splits.info.test_size) == (11, 4, 5)
    with pytest.raises(ValueError, match=r"^dataset 'npz': option test_fraction=0.8 with "
                                         r"val_fraction=0.2 leaves the train split empty"):
        zoo.datasets.load_splits("npz", path=npz_path, test_fraction=0.8)
    with pytest.raises(ValueError, match=r"^dataset 'npz': option test_fraction=1.5 must lie"):
        zoo.datasets.load_splits("npz", path=npz_path, test_fraction=1.5)


def test_npz_test_keys_are_a_fixed_test_split(tmp_path):
    x = np.arange(8 * 16, dtype=np.uint8).reshape(8, 4, 4)
    path = tmp_path / "t.npz"
    np.savez(path, x=x[:6], y=np.zeros((6, 4, 4), np.int64), x_test=x[6:],
             y_test=np.ones((2, 4, 4), np.int64))
    splits = zoo.datasets.load_splits("npz", path=str(path))
    assert (splits.info.train_size, splits.info.val_size, splits.info.test_size) == (5, 1, 2)
    xt, yt = (np.stack(p) for p in zip(*as_numpy(splits.test), strict=True))
    np.testing.assert_allclose(xt[..., 0], x[6:] / 255, rtol=1e-6)
    assert (yt.argmax(-1) == 1).all()
    np.savez(path, x=x, y=np.zeros((8, 4, 4), np.int64), x_test=x[:1])
    with pytest.raises(ValueError, match="x_test and y_test must be given together"):
        zoo.datasets.load_splits("npz", path=str(path))


def test_digit_fractions_that_leave_no_training_digit_are_refused():
    with pytest.raises(ValueError, match=r"^dataset 'digits': option test_digits=0.8 with "
                                         r"val_digits=0.25 leaves no source digit"):
        zoo.datasets.load_splits("digits", test_digits=0.8, **SMALL["digits"])


def test_load_keeps_returning_train_val_info_and_weights_reach_the_test_split():
    train, val, info = zoo.datasets.load("shapes", **SMALL["shapes"])
    assert isinstance(info, zoo.datasets.DatasetInfo) and info.test_size == 5
    splits = zoo.datasets.load_splits("shapes", labelled_fraction=0.5, **SMALL["shapes"])
    weights = [w for _, _, w in as_numpy(splits.test)]
    assert weights == [1.0] * 5  # the test split is always fully labelled


def test_a_builder_without_test_arrays_gives_an_empty_test_split(monkeypatch):
    # Register on a copy of the registry, so the plugin is gone after the test.
    monkeypatch.setattr(zoo.datasets.DATASETS, "_entries", dict(zoo.datasets.DATASETS._entries))

    @register_dataset("legacy_plugin", options={})
    def build_legacy(*, seed: int) -> SplitArrays:
        """A third-party builder written before the test split."""
        x = np.zeros((4, 4, 4, 1), np.float32)
        return SplitArrays(x, np.zeros((4, 4, 4), np.uint8), x[:2], np.zeros((2, 4, 4), np.uint8),
                           n_classes=2, class_names=["background", "thing"])

    splits = zoo.datasets.load_splits("legacy_plugin")
    assert splits.info.test_size == 0 and as_numpy(splits.test) == []


# --- the test split does not depend on the trial's seed (issue 25) ------------------------


def small_options(name: str, folder_path, npz_path) -> dict:
    """Small options for every registered dataset; a new dataset must be added here."""
    options = {**SMALL, "folder": {"path": str(folder_path)}, "npz": {"path": npz_path}}
    assert name in options, f"add small options for the new dataset {name!r} to this test"
    return options[name]


def rows(x: np.ndarray) -> set[bytes]:
    return {sample.tobytes() for sample in x}


@pytest.mark.parametrize("name", zoo.datasets.list_datasets())
def test_every_dataset_tests_every_seed_on_the_same_arrays(name, folder_path, npz_path):
    assert zoo.datasets.describe_dataset(name).options["split_seed"] == 0
    options = small_options(name, folder_path, npz_path)
    first, second = (zoo.datasets.build_arrays(name, seed=s, **options) for s in (0, 1))
    for a, b in ((first.x_test, second.x_test), (first.y_test, second.y_test)):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert len(first.x_test) > 0
    for arrays in (first, second):
        train, val, test = (rows(getattr(arrays, f"x_{s}")) for s in ("train", "val", "test"))
        assert not train & val and not train & test and not val & test
    # Each seed's validation pool stays out of the (shared) test pool.
    assert not rows(second.x_val) & rows(first.x_test)
    # split_seed alone moves the test split.
    moved = zoo.datasets.build_arrays(name, seed=0, split_seed=1, **options)
    assert moved.x_test.tobytes() != first.x_test.tobytes()


# --- epochs as a function of (seed, epoch) (resuming, issue 11 item 10) ----------------------


def epoch_arrays(initial_epoch: int, count: int, **options) -> list[tuple[np.ndarray, ...]]:
    """``count`` iterations of a batched, shuffled, augmented shapes train set, concatenated."""
    train, _, _ = zoo.datasets.load("shapes", batch_size=4, augment=True, seed=3,
                                    initial_epoch=initial_epoch, **options)
    return [tuple(np.concatenate(parts) for parts in zip(*as_numpy(train), strict=True))
            for _ in range(count)]


@pytest.mark.parametrize("mixing", [{}, {"labelled_fraction": 0.4, "labelled_per_batch": 2}],
                         ids=["plain", "labelled_per_batch"])
def test_a_train_set_made_for_epoch_k_gives_the_uninterrupted_epochs_k_and_on(mixing):
    options = {"height": 8, "width": 8, "train": 10, "val": 2, "test": 2, **mixing}
    uninterrupted = epoch_arrays(0, 4, **options)
    resumed = epoch_arrays(2, 2, **options)
    for got, expected in zip(resumed, uninterrupted[2:], strict=True):
        for a, b in zip(got, expected, strict=True):  # x, y (and weights)
            np.testing.assert_array_equal(a, b)
    # Each epoch is different (order and augmentation), so the match above means something.
    for i in range(3):
        assert not np.array_equal(uninterrupted[i][0], uninterrupted[i + 1][0])
    assert not np.array_equal(resumed[0][0], uninterrupted[0][0])


def test_fit_resumed_at_epoch_k_ends_with_the_uninterrupted_weights():
    import keras

    options = {"height": 8, "width": 8, "train": 12, "val": 2, "test": 2, "classes": 2}

    def model_and_data(initial_epoch):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, padding="same",
                                                                            activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
        train, _, _ = zoo.datasets.load("shapes", batch_size=4, augment=True, seed=1,
                                        initial_epoch=initial_epoch, **options)
        return model, train

    model, train = model_and_data(0)
    model.fit(train, epochs=3, verbose=0)
    first, train = model_and_data(0)
    first.fit(train, epochs=1, verbose=0)
    # Resume: a new model with the weights after epoch 1 and a train set made for epoch 1.
    resumed, train = model_and_data(1)
    resumed.set_weights(first.get_weights())
    resumed.fit(train, epochs=3, initial_epoch=1, verbose=0)
    for a, b in zip(resumed.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The old behaviour (the data of epoch 0 replayed) ends elsewhere.
    replayed, train = model_and_data(0)
    replayed.set_weights(first.get_weights())
    replayed.fit(train, epochs=3, initial_epoch=1, verbose=0)
    assert not all(np.allclose(a, b, rtol=1e-5, atol=1e-6)
                   for a, b in zip(replayed.get_weights(), model.get_weights(), strict=True))


def test_labelled_per_batch_without_a_batch_size_is_accepted_for_single_elements():
    # Spec validation loads without batch_size: nothing to mix, no refusal.
    options = {**SMALL["shapes"], "labelled_fraction": 0.5, "labelled_per_batch": 2}
    train, _, info = zoo.datasets.load("shapes", **options)
    assert info.options["labelled_per_batch"] == 2
    weights = [w for _, _, w in as_numpy(train)]
    assert len(weights) == 12 and sum(weights) == 6
    with pytest.raises(ValueError, match=r"labelled_per_batch=2 needs labelled_fraction"):
        zoo.datasets.load("shapes", **SMALL["shapes"], labelled_per_batch=2)
    with pytest.raises(ValueError, match=r"labelled_per_batch=2 .*\(batch_size=2\)"):
        zoo.datasets.load("shapes", batch_size=2, **options)


def test_every_option_of_every_dataset_is_described():
    for name in ("shapes", "digits", "moving_digits", "folder", "npz"):
        spec = zoo.datasets.describe_dataset(name)
        assert set(spec.option_help) == set(spec.options)
        missing = [option for option, line in spec.option_help.items() if not line]
        assert not missing, f"{name}: no help for {missing}"
    assert "held-out" in zoo.datasets.describe_dataset("shapes").option_help["test"]
    assert "test/ folder" in zoo.datasets.describe_dataset("folder").option_help["test_fraction"]


def test_arrays_too_large_for_constants_give_the_same_epochs(monkeypatch):
    from zoo.datasets import pipeline

    options = {"height": 8, "width": 8, "train": 10, "val": 2, "test": 2}
    constants = epoch_arrays(1, 2, **options)
    monkeypatch.setattr(pipeline, "_SLICE_LIMIT_BYTES", 0)  # read samples from NumPy by index
    by_index = epoch_arrays(1, 2, **options)
    for got, expected in zip(by_index, constants, strict=True):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
