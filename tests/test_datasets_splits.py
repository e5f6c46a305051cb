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
    """Ten 6x6 image/mask pairs, every image different."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(10):
        image = np.full((6, 6, 3), 20 * i, np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"p{i}.png")
        Image.fromarray((np.arange(36).reshape(6, 6) % (1 + i % 3)).astype(np.uint8)).save(
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
    other = zoo.datasets.load_splits(name, seed=1, **SMALL[name])
    assert samples(other.test) != samples(splits.test)
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
    tests = {tuple(samples(zoo.datasets.load_splits("folder", path=str(folder_path),
                                                    seed=s).test)) for s in range(5)}
    assert len(tests) > 1
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
