"""A sweep builds each dataset once: the on-disk array cache (bench.run.data_cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common.file_lock import file_lock
from bench.run import data_cache

OPTIONS = {"height": 16, "width": 16, "train": 24, "val": 8, "test": 8, "digit_size": 8}
SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def test_key_ignores_option_order_and_pipeline_options() -> None:
    key = data_cache.dataset_key("digits", 0, {"height": 16, "width": 16})
    assert key == data_cache.dataset_key("digits", 0, {"width": 16, "height": 16})
    assert key == data_cache.dataset_key("digits", 0, {"width": 16, "height": 16,
                                                       "labelled_fraction": 0.5})
    assert key != data_cache.dataset_key("digits", 1, {"height": 16, "width": 16})
    assert key != data_cache.dataset_key("digits", 0, {"height": 16, "width": 32})
    assert key != data_cache.dataset_key("shapes", 0, {"height": 16, "width": 16})
    assert len(key) == 16


def test_cached_arrays_equal_a_fresh_build_and_are_read_back(tmp_path: Path) -> None:
    import zoo

    folder = data_cache.open_cache(tmp_path, "s")
    fresh = zoo.datasets.build_arrays("digits", seed=3, **OPTIONS)
    first = data_cache.cached_arrays(folder, "digits", 3, OPTIONS)
    files = sorted(p.name for p in folder.glob("*.npz"))
    assert files == [f"{data_cache.dataset_key('digits', 3, OPTIONS)}.npz"]
    path = folder / files[0]
    second = data_cache.cached_arrays(folder, "digits", 3, OPTIONS)
    for arrays in (first, second):
        for split in SPLITS:
            np.testing.assert_array_equal(getattr(arrays, split), getattr(fresh, split))
            assert getattr(arrays, split).dtype == getattr(fresh, split).dtype
        assert (arrays.n_classes, list(arrays.class_names), arrays.kind, arrays.task) == \
            (fresh.n_classes, list(fresh.class_names), fresh.kind, fresh.task)
    path.write_bytes(b"not an npz")  # unreadable: rebuilt and rewritten
    again = data_cache.cached_arrays(folder, "digits", 3, OPTIONS)
    np.testing.assert_array_equal(again.x_train, fresh.x_train)
    assert path.stat().st_size > 100
    data_cache.close_cache(folder)
    assert not folder.exists()


def test_load_splits_from_given_arrays_gives_the_same_batches(tmp_path: Path) -> None:
    import zoo

    arrays = data_cache.cached_arrays(data_cache.open_cache(tmp_path, "s"), "digits", 1,
                                      OPTIONS)
    options = {"batch_size": 8, "seed": 1, "augment": True, **OPTIONS}
    built = zoo.datasets.load_splits("digits", **options)
    shared = zoo.datasets.load_splits("digits", arrays=arrays, **options)
    assert built.info == shared.info
    for a, b in zip(built.train, shared.train, strict=True):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    for a, b in zip(built.test, shared.test, strict=True):
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_without_a_cache_folder_arrays_are_built(tmp_path: Path) -> None:
    arrays = data_cache.cached_arrays(None, "digits", 0, OPTIONS)
    assert arrays.x_train.shape[:3] == (24, 16, 16)
    assert data_cache.cached_arrays(tmp_path / "missing", "digits", 0, OPTIONS).n_classes == 11
    assert not (tmp_path / "missing").exists()


def test_a_trial_waits_for_the_key_being_built_and_reads_it(tmp_path: Path, monkeypatch) -> None:
    """Trials starting together build a key once: the others wait for its file."""
    import threading
    import time

    import zoo

    folder = data_cache.open_cache(tmp_path, "s")
    path = folder / f"{data_cache.dataset_key('digits', 2, OPTIONS)}.npz"
    fresh = zoo.datasets.build_arrays("digits", seed=2, **OPTIONS)
    builds = []
    real_build = zoo.datasets.build_arrays
    monkeypatch.setattr(zoo.datasets, "build_arrays",
                        lambda *a, **k: builds.append(a) or real_build(*a, **k))
    holding = threading.Event()

    def another_trial_builds() -> None:
        with file_lock(path.with_suffix(".lock")):  # as the building trial holds it
            holding.set()
            time.sleep(1.0)
            data_cache._write(fresh, path)

    builder = threading.Thread(target=another_trial_builds)
    builder.start()
    assert holding.wait(60)  # (a builder that failed to start must not hang the suite)
    arrays = data_cache.cached_arrays(folder, "digits", 2, OPTIONS)
    builder.join()
    assert builds == []  # it waited for the other build and read its file
    for split in SPLITS:
        np.testing.assert_array_equal(getattr(arrays, split), getattr(fresh, split))


def test_prebuild_builds_each_missing_key_once(tmp_path: Path) -> None:
    import zoo

    folder = data_cache.open_cache(tmp_path, "s")
    keys = [("digits", 0, OPTIONS), ("digits", 1, OPTIONS)]
    data_cache.cached_arrays(folder, "digits", 1, OPTIONS)  # a trial was first for seed 1
    assert data_cache.prebuild(folder, keys) == 1
    assert data_cache.prebuild(folder, keys) == 0
    assert sorted(p.name for p in folder.glob("*.npz")) == sorted(
        f"{data_cache.dataset_key(*key)}.npz" for key in keys)
    read = data_cache.cached_arrays(folder, "digits", 0, OPTIONS)
    np.testing.assert_array_equal(read.y_val, zoo.datasets.build_arrays(
        "digits", seed=0, **OPTIONS).y_val)
