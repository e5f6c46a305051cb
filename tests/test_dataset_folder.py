"""zoo.datasets "folder": layouts, resizing, greyscale/RGB, progress and every error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.datasets import folder


def stacked(ds) -> tuple[np.ndarray, ...]:
    """The elements of an unbatched ``ds`` stacked per component."""
    return tuple(np.stack(p) for p in zip(*[[t.numpy() for t in e] for e in ds], strict=True))


def quadrant_mask(size: int, classes: tuple[int, int, int, int]) -> np.ndarray:
    """A (size, size) uint8 mask whose four quadrants hold ``classes``."""
    half = size // 2
    mask = np.empty((size, size), np.uint8)
    mask[:half, :half], mask[:half, half:], mask[half:, :half], mask[half:, half:] = classes
    return mask


def write_pair(root: Path, name: str, mask: np.ndarray, *, suffix: str = ".png",
               mode: str = "RGB") -> None:
    """An image whose red channel encodes the mask (class * 60) next to the mask PNG."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    grey = (mask * 60).astype(np.uint8)
    image = Image.fromarray(grey).convert(mode)
    image.save(root / "images" / f"{name}{suffix}", quality=100)
    Image.fromarray(mask).save(root / "masks" / f"{name}.png")


@pytest.fixture
def simple(tmp_path) -> Path:
    """Five 8x8 pairs with quadrant masks in classes 0..3."""
    for i in range(5):
        write_pair(tmp_path, f"img{i}", quadrant_mask(8, (0, 1 + i % 3, 2, 3)))
    return tmp_path


def test_reads_pairs_splits_and_infers_classes(simple):
    splits = zoo.datasets.load_splits("folder", path=str(simple), val_fraction=0.4)
    info = splits.info
    (x, y), (xv, yv), (xt, yt) = (stacked(ds) for ds in (splits.train, splits.val, splits.test))
    # test_fraction defaults to 0.2: of 5 pairs, 1 test, 2 val, 2 train.
    assert (info.train_size, info.val_size, info.test_size, info.n_classes) == (2, 2, 1, 4)
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 8, 8, 4) and yt.shape == (1, 8, 8, 4)
    assert info.class_names == ["background", "class_1", "class_2", "class_3"]
    # The image's pixels say which class they are: the mask came through aligned.
    for xs, ys in ((x, y), (xv, yv), (xt, yt)):
        np.testing.assert_allclose(xs[..., 0], ys.argmax(-1) * 60 / 255, atol=1e-6)
    # Deterministic split by seed; another seed splits differently.
    again = stacked(zoo.datasets.load("folder", path=str(simple), val_fraction=0.4)[1])[0]
    np.testing.assert_array_equal(again, xv)
    splits = {stacked(zoo.datasets.load("folder", path=str(simple), val_fraction=0.4,
                                        seed=s)[1])[0].tobytes() for s in range(6)}
    assert len(splits) > 1


def test_train_val_and_test_subfolders_give_a_fixed_split(tmp_path):
    for i in range(3):
        write_pair(tmp_path / "train", f"a{i}", quadrant_mask(8, (0, 1, 1, 0)))
    write_pair(tmp_path / "val", "b0", quadrant_mask(8, (1, 0, 0, 1)))
    write_pair(tmp_path / "test", "c0", quadrant_mask(8, (1, 1, 0, 0)))
    splits = zoo.datasets.load_splits("folder", path=str(tmp_path), classes=2)
    info = splits.info
    assert (info.train_size, info.val_size, info.test_size) == (3, 1, 1)
    _, yv = stacked(splits.val)
    np.testing.assert_array_equal(yv[0].argmax(-1), quadrant_mask(8, (1, 0, 0, 1)))
    _, yt = stacked(splits.test)
    np.testing.assert_array_equal(yt[0].argmax(-1), quadrant_mask(8, (1, 1, 0, 0)))


def test_without_a_test_subfolder_test_fraction_of_train_is_held_out(tmp_path):
    for i in range(5):
        write_pair(tmp_path / "train", f"a{i}", quadrant_mask(8, (0, 1, i % 2, 0)))
    write_pair(tmp_path / "val", "b0", quadrant_mask(8, (1, 0, 0, 1)))
    info = zoo.datasets.load_splits("folder", path=str(tmp_path), test_fraction=0.4).info
    assert (info.train_size, info.val_size, info.test_size) == (3, 1, 2)
    with pytest.raises(ValueError, match=r"^dataset 'folder': option test_fraction=0.95 "
                                         r"leaves the train split empty"):
        zoo.datasets.load_splits("folder", path=str(tmp_path), test_fraction=0.95)


def test_other_sizes_are_resized_masks_with_nearest_neighbour(tmp_path):
    write_pair(tmp_path, "big", quadrant_mask(20, (0, 1, 2, 3)))
    write_pair(tmp_path, "small", quadrant_mask(6, (3, 2, 1, 0)))
    write_pair(tmp_path, "wide", np.repeat(quadrant_mask(10, (1, 1, 2, 2)), 2, axis=1))
    splits = zoo.datasets.load_splits("folder", path=str(tmp_path), height=10, width=10,
                                      val_fraction=0.34)
    info = splits.info
    x, y = (np.concatenate(p) for p in zip(stacked(splits.train), stacked(splits.val),
                                           stacked(splits.test), strict=True))
    assert x.shape == (3, 10, 10, 3) and info.input_shape == (10, 10, 3)
    labels = y.argmax(-1)
    # Nearest neighbour keeps only indices that exist (no blends such as 1.5 -> 1 or 2).
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    expected = {quadrant_mask(10, q).tobytes() for q in ((0, 1, 2, 3), (3, 2, 1, 0),
                                                        (1, 1, 2, 2))}
    assert {m.astype(np.uint8).tobytes() for m in labels} == expected


def test_size_defaults_to_the_most_common_size(tmp_path, caplog):
    write_pair(tmp_path, "a", np.zeros((6, 10), np.uint8))
    write_pair(tmp_path, "b", np.ones((12, 20), np.uint8))
    write_pair(tmp_path, "c", np.ones((12, 20), np.uint8))
    with caplog.at_level(logging.WARNING, logger="zoo.datasets"):
        _, _, info = zoo.datasets.load("folder", path=str(tmp_path))
    assert info.input_shape == (12, 20, 3)
    assert ("folder: images of 2 sizes (20x12: 2, 10x6: 1); resizing all to the most common, "
            "20x12 (set height and width to choose)") in caplog.messages
    # A tie has no most common size: refused, naming the sizes found.
    write_pair(tmp_path, "d", np.zeros((6, 10), np.uint8))
    with pytest.raises(ValueError, match=r"^dataset 'folder': images have 2 sizes and none is "
                                         r"the most common \(20x12: 2, 10x6: 2\); set height "
                                         r"and width$"):
        zoo.datasets.load("folder", path=str(tmp_path))


def test_greyscale_and_jpeg_images(tmp_path):
    for i in range(5):
        write_pair(tmp_path, f"j{i}", quadrant_mask(16, (0, 1, 2, 3)), suffix=".jpg", mode="L")
    train, _, info = zoo.datasets.load("folder", path=str(tmp_path), channels=1)
    x, y = stacked(train)
    assert x.shape == (3, 16, 16, 1) and info.input_shape == (16, 16, 1)
    # JPEG is lossy: compare away from the quadrant edges, within a few grey levels.
    inner = (slice(2, 6), slice(2, 6))
    np.testing.assert_allclose(x[:, 2:6, 10:14, 0], 60 / 255, atol=4 / 255)
    assert (y[:, inner[0], inner[1]].argmax(-1) == 0).all()


def test_palette_masks_with_voc_colours_read_as_indices(tmp_path):
    write_pair(tmp_path, "p0", quadrant_mask(8, (0, 1, 2, 1)))
    write_pair(tmp_path, "p1", quadrant_mask(8, (0, 1, 2, 1)))
    write_pair(tmp_path, "p2", quadrant_mask(8, (0, 1, 2, 1)))
    palette = Image.fromarray(quadrant_mask(8, (0, 1, 2, 1)), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)  # Pascal VOC's colours
    palette.save(tmp_path / "masks" / "p1.png")
    splits = zoo.datasets.load_splits("folder", path=str(tmp_path))
    for ds in (splits.train, splits.val, splits.test):
        np.testing.assert_array_equal(stacked(ds)[1][0].argmax(-1), quadrant_mask(8, (0, 1, 2, 1)))
    # Any other colour palette is a colour mask whose indices mean nothing: refused.
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "masks" / "p1.png")
    with pytest.raises(ValueError, match=r"mask .*p1\.png is a colour palette PNG .*\(index 1 "
                                         r"shows \(255, 0, 0\)\)"):
        zoo.datasets.load_splits("folder", path=str(tmp_path))


def test_reading_a_large_folder_logs_progress(simple, caplog, monkeypatch):
    monkeypatch.setattr(folder, "PROGRESS_EVERY", 2)
    with caplog.at_level(logging.INFO, logger="zoo.datasets"):
        zoo.datasets.load("folder", path=str(simple), val_fraction=0.2)
    messages = [r.getMessage() for r in caplog.records]
    # 5 pairs: 1 test, 1 val, 3 train.
    assert "folder: read 2/3 train image/mask pairs" in messages
    assert "folder: read 3/3 train image/mask pairs" in messages


def test_mask_without_image_names_the_mask(simple):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(simple / "masks" / "orphan.png")
    with pytest.raises(ValueError, match=r"mask .*orphan\.png has no image"):
        zoo.datasets.load("folder", path=str(simple))


def test_image_without_mask_names_the_image(simple):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(simple / "images" / "lonely.jpg")
    with pytest.raises(ValueError, match=r"image .*lonely\.jpg has no mask"):
        zoo.datasets.load("folder", path=str(simple))


def test_class_index_out_of_range_names_the_mask(simple):
    Image.fromarray(quadrant_mask(8, (0, 1, 5, 2))).save(simple / "masks" / "img3.png")
    with pytest.raises(ValueError, match=r"mask .*img3\.png has class index 5 out of range; "
                                         r"allowed 0\.\.3"):
        zoo.datasets.load("folder", path=str(simple), classes=4)


def test_unreadable_file_names_the_file(simple):
    (simple / "images" / "img2.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=r"cannot read .*img2\.png"):
        zoo.datasets.load("folder", path=str(simple))


def test_truncated_file_names_the_file(simple):
    data = (simple / "masks" / "img1.png").read_bytes()
    (simple / "masks" / "img1.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read .*img1\.png"):
        zoo.datasets.load("folder", path=str(simple))


def test_colour_mask_is_refused(simple):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 1
    Image.fromarray(colour).save(simple / "masks" / "img0.png")
    with pytest.raises(ValueError, match=r"mask .*img0\.png is a colour image"):
        zoo.datasets.load("folder", path=str(simple))


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="option path is required"):
        zoo.datasets.load("folder")
    with pytest.raises(ValueError, match=r"path .*nowhere does not exist"):
        zoo.datasets.load("folder", path=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"folder .* is empty"):
        zoo.datasets.load("folder", path=str(tmp_path))
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"no images in .*images"):
        zoo.datasets.load("folder", path=str(tmp_path))
    (tmp_path / "images").rmdir()
    with pytest.raises(ValueError, match=r"missing directory .*images"):
        zoo.datasets.load("folder", path=str(tmp_path))


def test_bad_options_are_refused(simple):
    with pytest.raises(ValueError, match=r"channels=2 is not allowed; choose one of: 1, 3"):
        zoo.datasets.load("folder", path=str(simple), channels=2)
    with pytest.raises(ValueError, match=r"val_fraction=1.0 must lie in \(0, 1\)"):
        zoo.datasets.load("folder", path=str(simple), val_fraction=1.0)
    with pytest.raises(ValueError, match=r"test_fraction=0.0 must lie in \(0, 1\)"):
        zoo.datasets.load("folder", path=str(simple), test_fraction=0.0)
    # 5 pairs: 3 test and 2 val leave nothing to train on; one line naming both options.
    with pytest.raises(ValueError, match=r"^dataset 'folder': option test_fraction=0.6 with "
                                         r"val_fraction=0.4 leaves the train split empty "
                                         r"\(5 samples: 3 test, 2 val; [^\n]*\)$"):
        zoo.datasets.load("folder", path=str(simple), test_fraction=0.6, val_fraction=0.4)


# ---- two files with one name
def test_one_name_with_two_extensions_is_refused_naming_both(simple):
    """``img1.png`` and ``img1.jpg`` would both pair with ``masks/img1.png``: refused, in one
    line naming the two files."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(simple / "images" / "img1.jpg")
    with pytest.raises(ValueError) as info:
        zoo.datasets.load("folder", path=str(simple))
    assert str(info.value) == (f"dataset 'folder': two files named 'img1' in {simple / 'images'}: "
                               "img1.jpg and img1.png")


def test_one_name_in_two_unicode_forms_is_refused(simple):
    """A Mac's decomposed (NFD) ``café`` and the composed (NFC) one are one name."""
    import unicodedata

    composed, decomposed = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    assert composed != decomposed
    write_pair(simple, composed, quadrant_mask(8, (0, 1, 2, 3)))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(simple / "masks" / f"{decomposed}.tif")
    with pytest.raises(ValueError) as info:
        zoo.datasets.load("folder", path=str(simple))
    # Listed in sorted order (the decomposed name first), named by the second.
    assert str(info.value) == (f"dataset 'folder': two files named '{composed}' in "
                               f"{simple / 'masks'}: {decomposed}.tif and {composed}.png")


def test_a_same_named_file_in_a_subfolder_is_not_read(simple):
    """Only the files of ``images/`` and ``masks/`` themselves pair; ``images/extra/img1.png``
    (here not even an image) is not read: five pairs, as without it."""
    (simple / "images" / "extra").mkdir()
    (simple / "images" / "extra" / "img1.png").write_bytes(b"not an image")
    info = zoo.datasets.load_splits("folder", path=str(simple)).info
    assert (info.train_size, info.val_size, info.test_size) == (3, 1, 1)


def test_the_same_names_in_train_and_val_folders_are_separate_samples(tmp_path):
    """Fixed splits are read folder by folder: ``train/images/img0.png`` and
    ``val/images/img0.png`` are two samples (the test split is drawn from train's three)."""
    for split, first in (("train", 1), ("val", 2)):
        for i in range(3):
            write_pair(tmp_path / split, f"img{i}", quadrant_mask(8, (0, first, 3, 3)))
    with pytest.warns(UserWarning, match=r"class 2 \(class_2\) appears in val, not in the "
                                          r"training split"):
        splits = zoo.datasets.load_splits("folder", path=str(tmp_path), classes=4)
    info = splits.info
    assert (info.train_size, info.val_size, info.test_size) == (2, 3, 1)
    # Each split holds its own folder's masks: class 1 in train's, class 2 in val's.
    _, y_train = stacked(splits.train.unbatch())
    _, y_val = stacked(splits.val.unbatch())
    assert set(np.unique(y_train.argmax(-1))) == {0, 1, 3}
    assert set(np.unique(y_val.argmax(-1))) == {0, 2, 3}


def test_a_training_image_copied_into_val_is_named_in_one_warning(tmp_path):
    """The same picture in two splits (here ``train/images/img1.png`` saved again as
    ``val/images/copy.png``) is one warning line naming both files; distinct pictures none."""
    import warnings

    for split, classes in (("train", [(0, 1, 2, 3), (1, 1, 2, 3), (2, 1, 2, 3)]),
                           ("val", [(3, 1, 2, 0), (3, 2, 1, 0)])):
        for i, quadrants in enumerate(classes):
            write_pair(tmp_path / split, f"img{i}", quadrant_mask(8, quadrants))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zoo.datasets.load_splits("folder", path=str(tmp_path))
    assert not [w for w in caught if "also in another" in str(w.message)]

    write_pair(tmp_path / "val", "copy", quadrant_mask(8, (1, 1, 2, 3)))
    with pytest.warns(UserWarning) as caught:
        splits = zoo.datasets.load_splits("folder", path=str(tmp_path))
    lines = [str(w.message) for w in caught if "also in another" in str(w.message)]
    # img1 is drawn into train or test; the line names it and its copy, whichever came first.
    original = tmp_path / "train" / "images" / "img1.png"
    copy = tmp_path / "val" / "images" / "copy.png"
    assert lines in ([f"dataset 'folder': 1 image of one split also in another ({a} = {b}); "
                      f"their validation and test scores are optimistic: remove the copies"]
                     for a, b in ((original, copy), (copy, original)))
    info = splits.info  # loaded as they are: the warning refuses nothing
    assert (info.train_size + info.test_size, info.val_size) == (3, 3)
