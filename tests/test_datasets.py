"""zoo.datasets: shapes, dtypes, classes, determinism, splits, labels, augmentation, npz."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

import zoo
from zoo.datasets import glyphs

SMALL = {
    "shapes": {"height": 16, "width": 16, "train": 12, "val": 6},
    "digits": {"height": 16, "width": 16, "digit_size": 8, "train": 12, "val": 6},
    "moving_digits": {"height": 16, "width": 16, "digit_size": 8, "frames": 3, "train": 6,
                      "val": 4},
}


def as_numpy(ds) -> list[tuple[np.ndarray, ...]]:
    """Every element of ``ds`` as a tuple of NumPy arrays."""
    return [tuple(t.numpy() for t in element) for element in ds]


def stacked(ds) -> tuple[np.ndarray, ...]:
    """The elements of an unbatched ``ds`` stacked per component."""
    return tuple(np.stack(parts) for parts in zip(*as_numpy(ds), strict=True))


def test_registry_lists_describes_and_rejects_unknown_names_and_options():
    assert set(zoo.datasets.list_datasets()) >= {"shapes", "digits", "moving_digits", "folder",
                                                 "npz"}
    assert zoo.datasets.list_datasets("*digits") == ["digits", "moving_digits"]
    spec = zoo.datasets.describe_dataset("shapes")
    assert spec.options["height"] == 64 and spec.options["labelled_fraction"] == 1.0
    assert spec.summary.startswith("Synthetic shapes")
    with pytest.raises(ValueError, match="unknown dataset 'nope'; choose one of: .*shapes"):
        zoo.datasets.load("nope")
    with pytest.raises(ValueError, match="no option 'heigth'; allowed options: .*height"):
        zoo.datasets.load("shapes", heigth=8)
    with pytest.raises(ValueError, match="classes=9 is out of range; allowed 1..8"):
        zoo.datasets.load("shapes", classes=9, **SMALL["shapes"])
    with pytest.raises(ValueError, match="target='mask2' is not allowed"):
        zoo.datasets.load("moving_digits", target="mask2")
    with pytest.raises(ValueError, match=r"labelled_fraction=1.5 must lie in \(0, 1\]"):
        zoo.datasets.load("shapes", labelled_fraction=1.5, **SMALL["shapes"])


@pytest.mark.parametrize("classes", [1, 2, 4, 8])
def test_shapes_elements_have_the_promised_shapes_dtypes_and_classes(classes):
    train, val, info = zoo.datasets.load("shapes", classes=classes, channels=2, height=16,
                                         width=24, train=10, val=4)
    x, y = stacked(train)
    assert x.shape == (10, 16, 24, 2) and x.dtype == np.float32
    assert y.shape == (10, 16, 24, classes) and y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.05
    assert info.input_shape == (16, 24, 2) and info.target_shape == (16, 24, classes)
    assert (info.kind, info.task, info.n_classes) == ("image", "segmentation", classes)
    assert (info.train_size, info.val_size) == (10, 4) and len(stacked(val)[0]) == 4
    assert len(info.class_names) == classes
    assert set(np.unique(y)) <= {0.0, 1.0}
    if classes == 1:
        assert 0 < y.mean() < 0.5  # some foreground, mostly background
    else:
        np.testing.assert_array_equal(y.sum(-1), 1.0)  # exactly one class per pixel
        assert info.class_names[0] == "background"
        labels = y.argmax(-1)
        # Background dominates, and with 10 images of up to 3 shapes most kinds appear.
        assert (labels == 0).mean() > 0.5
        assert len(np.unique(labels)) >= min(classes, 4)


def test_shapes_foreground_stands_out_from_the_background():
    train, _, _ = zoo.datasets.load("shapes", height=32, width=32, train=16, val=2, noise=0.0)
    x, y = stacked(train)
    brightest = x.max(-1)
    foreground = y.argmax(-1) > 0
    # Shapes are painted with a channel >= 0.6, the texture stays within [0.05, 0.45].
    assert brightest[foreground].min() >= 0.6 - 1e-6
    assert brightest[~foreground].max() <= 0.45 + 1e-6


@pytest.mark.parametrize("name", ["shapes", "digits", "moving_digits"])
def test_same_seed_same_data_other_seed_other_data(name):
    def elements(seed):
        train, val, _ = zoo.datasets.load(name, seed=seed, **SMALL[name])
        return stacked(train) + stacked(val)

    first, again, other = elements(3), elements(3), elements(4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[2], other[2])


def test_batched_train_is_shuffled_reproducibly_and_reshuffled_each_epoch():
    def batches(seed):
        train, val, _ = zoo.datasets.load("shapes", batch_size=4, seed=seed, **SMALL["shapes"])
        return train, val

    train, val = batches(0)
    epoch1 = [x.numpy() for x, _ in train]
    epoch2 = [x.numpy() for x, _ in train]
    assert [len(b) for b in epoch1] == [4, 4, 4]
    assert not np.array_equal(np.concatenate(epoch1), np.concatenate(epoch2))  # reshuffled
    # Same samples in both epochs, only the order differs.
    np.testing.assert_allclose(np.sort(np.concatenate(epoch1).sum((1, 2, 3))),
                               np.sort(np.concatenate(epoch2).sum((1, 2, 3))), rtol=1e-6)
    again = [x.numpy() for x, _ in batches(0)[0]]
    np.testing.assert_array_equal(np.concatenate(epoch1), np.concatenate(again))
    # Validation is not shuffled: the same order every time.
    first_val = np.concatenate([x.numpy() for x, _ in val])
    np.testing.assert_array_equal(first_val, np.concatenate([x.numpy() for x, _ in val]))


def test_drop_remainder_gives_only_full_batches():
    train, val, _ = zoo.datasets.load("shapes", batch_size=5, drop_remainder=True,
                                      **SMALL["shapes"])
    assert [len(x) for x, _ in train] == [5, 5]
    assert [len(x) for x, _ in val] == [5]


def canvas_sources(x: np.ndarray, size: int) -> set[int]:
    """Source-digit indices of canvases that show exactly one glyph filling the canvas."""
    glyph_table = glyphs.upscaled(size).reshape(len(glyphs.upscaled(size)), -1)
    found = set()
    for canvas in x.reshape(len(x), -1):
        matches = np.flatnonzero((glyph_table == canvas).all(axis=1))
        assert len(matches) == 1
        found.add(int(matches[0]))
    return found


def test_the_source_digits_are_scikit_learns_read_without_importing_it():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = glyphs.source_digits()
    assert glyphs.digits_file() is not None  # the file load_digits reads is found
    assert images.dtype == np.float32 and images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, (bunch.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(labels, bunch.target)
    # In a fresh process with TensorFlow imported as zoobench's processes do (without Keras'
    # scikit-learn integration): reading them imports no scikit-learn.
    code = ("import sys; from bench.common.tensorflow_import import import_tensorflow; "
            "import_tensorflow(quiet=True); from zoo.datasets import glyphs; "
            "glyphs.source_digits(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_digits_validation_and_test_never_show_a_source_digit_of_another_split():
    train_pool, val_pool, test_pool = glyphs.split_sources(seed=0, val_fraction=0.25,
                                                           test_fraction=0.2)
    pools = [set(train_pool), set(val_pool), set(test_pool)]
    assert not pools[0] & pools[1] and not pools[0] & pools[2] and not pools[1] & pools[2]
    assert len(train_pool) + len(val_pool) + len(test_pool) == 1797
    assert (len(val_pool), len(test_pool)) == (round(1797 * 0.25), round(1797 * 0.2))
    # The test pool does not move when the validation fraction or the trial seed changes.
    np.testing.assert_array_equal(glyphs.split_sources(0, 0.1, 0.2)[2], test_pool)
    np.testing.assert_array_equal(glyphs.split_sources(5, 0.25, 0.2)[2], test_pool)
    assert not np.array_equal(glyphs.split_sources(5, 0.25, 0.2)[1], val_pool)
    # Canvases the size of one digit with one digit each: every canvas *is* a glyph,
    # so the source digit can be recovered from the pixels alone.
    splits = zoo.datasets.load_splits("digits", height=10, width=10, digit_size=10,
                                      digits_per_image=1, train=300, val=200, test=200)
    info = splits.info
    assert (info.train_size, info.val_size, info.test_size) == (300, 200, 200)
    x_train, y_train = stacked(splits.train)
    x_val, _ = stacked(splits.val)
    x_test, y_test = stacked(splits.test)
    seen_train, seen_val = canvas_sources(x_train, 10), canvas_sources(x_val, 10)
    seen_test = canvas_sources(x_test, 10)
    assert not seen_train & seen_val and not seen_test & (seen_train | seen_val)
    assert seen_train <= pools[0] and seen_val <= pools[1] and seen_test <= pools[2]
    assert len(seen_val) > 100 and len(seen_test) > 100  # many distinct digits
    assert y_test.shape == (200, 10, 10, 11)
    assert info.n_classes == 11 and info.class_names[1] == "0"
    # Each pixel's label is its digit's class + 1 where there is ink.
    labels = y_train.argmax(-1)
    digit = glyphs.source_digits()[1]
    for i in range(20):
        (source,) = canvas_sources(x_train[i:i + 1], 10)
        ink = x_train[i, ..., 0] > glyphs.INK_THRESHOLD
        assert (labels[i][ink] == digit[source] + 1).all()
        assert (labels[i][~ink] == 0).all()


def test_moving_digits_masks_follow_the_frames_and_digits_move():
    train, _, info = zoo.datasets.load("moving_digits", **SMALL["moving_digits"])
    x, y = stacked(train)
    assert x.shape == (6, 3, 16, 16, 1) and y.shape == (6, 3, 16, 16, 11)
    assert (info.kind, info.task, info.input_shape) == ("sequence", "segmentation", (3, 16, 16, 1))
    ink = x[..., 0] > glyphs.INK_THRESHOLD
    np.testing.assert_array_equal(y.argmax(-1) > 0, ink)
    # Digits move: consecutive frames differ in most sequences.
    moved = [(x[i, 1:] != x[i, :-1]).any() for i in range(len(x))]
    assert sum(moved) >= len(x) - 1


def test_moving_digits_next_frame_targets_are_the_following_frames():
    train, val, info = zoo.datasets.load("moving_digits", target="next_frame",
                                         **SMALL["moving_digits"])
    x, y = stacked(train)
    assert (info.task, info.n_classes) == ("next_frame", 1)
    assert x.shape == y.shape == (6, 3, 16, 16, 1)
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])  # y[t] = x[t + 1]
    assert not np.array_equal(y[:, -1], x[:, -1])
    assert y.min() >= 0 and y.max() <= 1


def test_digit_trajectories_bounce_inside_the_canvas():
    from zoo.datasets.moving_digits import trajectories

    corners = trajectories(np.random.default_rng(0), 50, 2, 40, (8, 12), speed=3.0)
    assert corners.min() == 0 and corners[..., 0].max() == 8 and corners[..., 1].max() == 12
    steps = np.abs(np.diff(corners, axis=1))
    assert steps.max() <= 4  # never jumps more than the speed (plus rounding)


@pytest.mark.parametrize("name", ["shapes", "moving_digits"])
def test_labelled_fraction_keeps_exactly_that_many_labels(name):
    options = {**SMALL[name], "train": 20}
    train, val, info = zoo.datasets.load(name, labelled_fraction=0.25, seed=1, **options)
    x, y, w = stacked(train)
    assert w.dtype == np.float32 and set(np.unique(w)) == {0.0, 1.0}
    assert int(w.sum()) == 5 and info.labelled_fraction == 0.25
    assert (y[w == 0] == 0).all()  # unlabelled: all-zero targets
    np.testing.assert_array_equal(y[w == 1].sum(-1), 1.0)  # labelled: one-hot
    _, _, w_val = stacked(val)
    assert (w_val == 1).all()
    # Deterministic by seed: the same samples keep their labels.
    _, _, w_again = stacked(zoo.datasets.load(name, labelled_fraction=0.25, seed=1,
                                              **options)[0])
    np.testing.assert_array_equal(w, w_again)
    # Batched: (x, y, w) batches, as Keras expects for sample weights.
    batched, _, _ = zoo.datasets.load(name, labelled_fraction=0.25, batch_size=8, **options)
    xb, yb, wb = next(iter(batched))
    assert wb.shape == (8,) and xb.shape[0] == yb.shape[0] == 8


def test_labelled_per_batch_mixes_a_fixed_number_of_labels_into_every_batch():
    options = {**SMALL["shapes"], "train": 20}
    train, _, info = zoo.datasets.load("shapes", labelled_fraction=0.25, labelled_per_batch=3,
                                       batch_size=8, seed=1, **options)
    assert info.options["labelled_per_batch"] == 3
    _, _, w_all = stacked(zoo.datasets.load("shapes", labelled_fraction=0.25, seed=1,
                                            **options)[0])
    x_all = stacked(zoo.datasets.load("shapes", seed=1, **options)[0])[0]
    key = {x.tobytes(): i for i, x in enumerate(x_all)}
    epochs = []
    for _ in range(2):
        seen = []
        batches = as_numpy(train)
        assert len(batches) == 3  # one pass over the 15 unlabelled samples, 5 per batch
        for x, y, w in batches:
            np.testing.assert_array_equal(w, [1, 1, 1, 0, 0, 0, 0, 0])
            assert (y[3:] == 0).all() and (y[:3].sum(-1) == 1).all()
            seen.append([key[sample.tobytes()] for sample in x])
        ids = np.array(seen)
        labelled, unlabelled = ids[:, :3].ravel(), ids[:, 3:].ravel()
        assert (w_all[labelled] == 1).all() and (w_all[unlabelled] == 0).all()
        assert sorted(unlabelled) == sorted(np.flatnonzero(w_all == 0))  # each once
        assert set(labelled) == set(np.flatnonzero(w_all == 1))  # 9 draws cycle all 5
        epochs.append(ids)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch


@pytest.mark.parametrize(
    ("options", "message"),
    [({"labelled_per_batch": 2, "batch_size": 8}, "needs labelled_fraction"),
     ({"labelled_per_batch": 8, "batch_size": 8, "labelled_fraction": 0.5}, "batch_size=8"),
     ({"labelled_per_batch": -1, "batch_size": 8, "labelled_fraction": 0.5}, "out of range")],
)
def test_labelled_per_batch_rejects_what_it_cannot_honour(options, message):
    pattern = rf"dataset 'shapes': option labelled_per_batch.*{message}"
    with pytest.raises(ValueError, match=pattern):
        zoo.datasets.load("shapes", **SMALL["shapes"], **options)


def test_labelled_fraction_given_as_one_still_yields_weights():
    train, _, _ = zoo.datasets.load("shapes", labelled_fraction=1.0, **SMALL["shapes"])
    _, _, w = stacked(train)
    assert (w == 1.0).all() and len(w) == 12
    plain, _, _ = zoo.datasets.load("shapes", **SMALL["shapes"])
    assert len(next(iter(plain))) == 2


DIHEDRAL = {
    f"rot{k}{'_flip' if flip else ''}": (k, flip) for k in range(4) for flip in (False, True)
}


def transform(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Turn ``a`` (..., H, W, C) k quarter turns then maybe flip left-right."""
    a = np.rot90(a, k, axes=(-3, -2))
    return a[..., ::-1, :] if flip else a


def which_transform(original: np.ndarray, augmented: np.ndarray) -> set[tuple[int, bool]]:
    """The dihedral transforms mapping ``original`` onto ``augmented``."""
    return {
        (k, flip) for k, flip in DIHEDRAL.values()
        if transform(original, k, flip).shape == augmented.shape
        and np.array_equal(transform(original, k, flip), augmented)
    }


def test_augment_moves_x_and_y_together():
    train, _, _ = zoo.datasets.load("shapes", seed=2, **{**SMALL["shapes"], "train": 24})
    augmented, _, _ = zoo.datasets.load("shapes", seed=2, augment=True,
                                        **{**SMALL["shapes"], "train": 24})
    seen = set()
    for (x, y), (xa, ya) in zip(as_numpy(train), as_numpy(augmented), strict=True):
        options = which_transform(x, xa)
        assert options, "augmented x is not a flip/rotation of the original"
        assert options & which_transform(y, ya), "y was transformed differently from x"
        seen |= options
    assert len(seen) >= 4  # several different transforms were drawn


def test_augment_without_rotations_on_non_square_images():
    options = {"height": 12, "width": 20, "train": 24, "val": 2}
    train, _, _ = zoo.datasets.load("shapes", **options)
    augmented, _, _ = zoo.datasets.load("shapes", augment=True, **options)
    for (x, y), (xa, ya) in zip(as_numpy(train), as_numpy(augmented), strict=True):
        assert xa.shape == x.shape and ya.shape == y.shape
        matches = which_transform(x, xa) & which_transform(y, ya)
        assert matches & {(0, False), (0, True), (2, False), (2, True)}


def test_augment_applies_one_transform_to_every_frame_of_a_sequence():
    options = {**SMALL["moving_digits"], "train": 16}
    train, _, _ = zoo.datasets.load("moving_digits", **options)
    augmented, _, _ = zoo.datasets.load("moving_digits", augment=True, **options)
    changed = 0
    for (x, y), (xa, ya) in zip(as_numpy(train), as_numpy(augmented), strict=True):
        common = which_transform(x, xa) & which_transform(y, ya)  # whole sequence at once
        assert common
        changed += (0, False) not in common
    assert changed >= 8


def test_augment_differs_between_epochs():
    train, _, _ = zoo.datasets.load("shapes", augment=True, batch_size=12, **SMALL["shapes"])
    first = np.concatenate([x.numpy() for x, _ in train])
    second = np.concatenate([x.numpy() for x, _ in train])
    assert not np.array_equal(first, second)


def test_large_generation_logs_progress(caplog):
    with caplog.at_level(logging.INFO, logger="zoo.datasets"):
        zoo.datasets.load("shapes", height=8, width=8, train=600, val=2)
    messages = [r.getMessage() for r in caplog.records]
    assert "shapes: generated 256/600 train images" in messages
    assert "shapes: generated 600/600 train images" in messages


# --- npz -----------------------------------------------------------------------------------


def save_npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_reads_indices_splits_and_scales_uint8(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10, 6, 8), dtype=np.uint8)
    y = (x > 170).astype(np.int64) + (x > 220)
    path = save_npz(tmp_path / "d.npz", x=x, y=y)
    splits = zoo.datasets.load_splits("npz", path=path, val_fraction=0.3)
    info = splits.info
    (xt, yt), (xv, yv), (xs, ys) = (stacked(ds) for ds in (splits.train, splits.val, splits.test))
    # test_fraction defaults to 0.2: 2 test, 3 val, 5 train.
    assert (info.train_size, info.val_size, info.test_size, info.n_classes) == (5, 3, 2, 3)
    assert xt.shape == (5, 6, 8, 1) and yt.shape == (5, 6, 8, 3) and ys.shape == (2, 6, 8, 3)
    # Every sample comes through once, scaled to [0, 1], labels matching its pixels.
    both = np.concatenate([xt, xv, xs])[..., 0]
    np.testing.assert_allclose(np.sort(both.reshape(10, -1).sum(1)),
                               np.sort((x / 255).reshape(10, -1).sum(1)), rtol=1e-5)
    labels = np.concatenate([yt, yv, ys]).argmax(-1)
    np.testing.assert_array_equal(labels, (both * 255 > 170.5).astype(int) + (both * 255 > 220.5))


def test_npz_one_hot_and_explicit_validation(tmp_path):
    x = np.random.default_rng(1).random((4, 5, 5, 2), dtype=np.float32)
    labels = (x[..., 0] > 0.5).astype(int) * 2
    y = np.eye(3, dtype=np.float32)[labels]
    path = save_npz(tmp_path / "d.npz", x=x, y=y, x_val=x[:2], y_val=y[:2], x_test=x[2:],
                    y_test=y[2:])
    splits = zoo.datasets.load_splits("npz", path=path)
    info = splits.info
    (xt, yt), (xv, yv), (xs, ys) = (stacked(ds) for ds in (splits.train, splits.val, splits.test))
    np.testing.assert_array_equal(xt, x)
    np.testing.assert_array_equal(yt, y)
    np.testing.assert_array_equal(xv, x[:2])
    np.testing.assert_array_equal(yv, y[:2])
    np.testing.assert_array_equal(xs, x[2:])
    np.testing.assert_array_equal(ys, y[2:])
    assert info.n_classes == 3 and info.input_shape == (5, 5, 2)


def test_npz_sequences_and_binary_targets(tmp_path):
    x = np.random.default_rng(2).random((4, 3, 6, 6, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    path = save_npz(tmp_path / "s.npz", x=x, y=y)
    train, _, info = zoo.datasets.load("npz", path=path, val_fraction=0.25, test_fraction=0.25)
    assert (info.kind, info.n_classes, info.input_shape) == ("sequence", 1, (3, 6, 6, 1))
    xt, yt = stacked(train)
    np.testing.assert_array_equal(yt, (xt > 0.5).astype(np.float32))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 5, 5))}, r"d\.npz: missing key y; found x"),
        ({"x": np.zeros((4, 5, 5)), "y": np.zeros((3, 5, 5), int)}, "x has 4 samples but y has 3"),
        ({"x": np.zeros((4, 5, 5)), "y": np.zeros((4, 6, 5), int)},
         r"y has shape \(4, 6, 5\), which does not match x"),
        ({"x": np.full((4, 5, 5), 2.0), "y": np.zeros((4, 5, 5), int)}, "outside \\[0, 1\\]"),
        ({"x": np.zeros((4, 5, 5)), "y": np.zeros((4, 5, 5), int), "x_val": np.zeros((1, 5, 5))},
         "x_val and y_val must be given together"),
        ({"x": np.zeros((4, 5, 5)), "y": np.full((4, 5, 5), 7)},
         "class index 7 out of range; allowed 0..3"),
    ],
)
def test_npz_errors_name_the_file(tmp_path, arrays, message):
    path = save_npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(ValueError, match=message) as caught:
        zoo.datasets.load("npz", path=path, classes=4)
    assert str(tmp_path / "d.npz") in str(caught.value)


def test_npz_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ValueError, match="option path is required"):
        zoo.datasets.load("npz")
    with pytest.raises(ValueError, match="nope.npz: no such file"):
        zoo.datasets.load("npz", path=str(tmp_path / "nope.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz: cannot read"):
        zoo.datasets.load("npz", path=str(bad))


@pytest.mark.parametrize(("name", "extra"), [
    ("shapes", {}), ("shapes", {"labelled_fraction": 0.5, "labelled_per_batch": 2}),
    ("digits", {"seed": 3}), ("moving_digits", {"target": "next_frame"}),
])
def test_dataset_info_says_what_load_splits_says_without_pipelines(name, extra, monkeypatch):
    """The spec check's view of a dataset: ``load_splits``' info, built without a
    ``tf.data`` pipeline (tracing them cost the check 0.27 s)."""
    options = {**SMALL[name], **extra}
    loaded = zoo.datasets.load_splits(name, **options).info
    from zoo.datasets import loader

    def no_pipeline(*args, **kwargs):
        raise AssertionError("dataset_info built a pipeline")

    monkeypatch.setattr(loader, "make_dataset", no_pipeline)
    assert zoo.datasets.dataset_info(name, **options) == loaded


@pytest.mark.parametrize(("options", "message"), [
    ({"heigth": 8}, "no option 'heigth'; allowed options: .*height"),
    ({"classes": 9}, "classes=9 is out of range; allowed 1..8"),
    ({"labelled_fraction": 1.5}, r"labelled_fraction=1.5 must lie in \(0, 1\]"),
    ({"labelled_per_batch": 2}, "labelled_per_batch=2 needs labelled_fraction"),
])
def test_dataset_info_refuses_what_load_splits_refuses(options, message):
    for check in (zoo.datasets.load_splits, zoo.datasets.dataset_info):
        with pytest.raises(ValueError, match=message):
            check("shapes", **{**SMALL["shapes"], **options})
