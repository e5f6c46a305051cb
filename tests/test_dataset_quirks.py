"""Users' real folders and .npz files, quirks included (issue 31): each loads what the user saw
(agreement >= 0.99 between a mask's class and the object in its image) or is refused with
one line naming the file and the option that fixes it. Every case is built here, in tmp_path.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import zoo
from zoo.datasets.image_files import voc_palette
from zoo.datasets.mask_values import IGNORED

# The colour of each class in the images: the image itself says which class a pixel is.
COLOURS = np.array([(20, 20, 20), (230, 40, 40), (40, 200, 40), (40, 40, 230)], np.uint8)
SIZE = 48


def scene(i: int, size: int = SIZE, classes: int = 4) -> np.ndarray:
    """Class-index mask (size, size) uint8: background and one shape per class 1..K-1."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(i)
    s = size / SIZE
    for k in range(1, classes):
        x, y = rng.integers(0, int(26 * s), 2)
        box = [x, y, x + int(rng.integers(12, 20) * s), y + int(rng.integers(12, 20) * s)]
        (draw.ellipse if k % 2 else draw.rectangle)(box, fill=k)
    return np.asarray(image)


def one_line(excinfo) -> str:
    """The refusal's message, checked to be one line."""
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def write_folder(root: Path, masks: list[np.ndarray], *, images: list[np.ndarray] | None = None,
                 mask_suffix: str = ".png", image_suffix: str = ".png") -> Path:
    """``root/images/s{i}`` coloured by ``scene(i)``, ``root/masks/s{i}`` holding ``masks[i]``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i, mask in enumerate(masks):
        image = COLOURS[scene(i)] if images is None else images[i]
        Image.fromarray(image).save(root / "images" / f"s{i:02d}{image_suffix}", quality=95)
        if isinstance(mask, Image.Image):
            mask.save(root / "masks" / f"s{i:02d}{mask_suffix}")
        else:
            Image.fromarray(mask).save(root / "masks" / f"s{i:02d}{mask_suffix}")
    return root


def image_classes(x: np.ndarray) -> np.ndarray:
    """The class each pixel's colour shows (nearest of ``COLOURS``), (N, H, W)."""
    x = x.astype(np.float32) * (255 if x.dtype != np.uint8 else 1)
    distance = ((x[..., None, :] - COLOURS.astype(np.float32)) ** 2).sum(-1)
    return distance.argmin(-1)


def agreement(arrays, shown=image_classes) -> float:
    """Share of labelled pixels whose loaded class is the class the loaded image shows."""
    x = np.concatenate([arrays.x_train, arrays.x_val, arrays.x_test])
    y = np.concatenate([arrays.y_train, arrays.y_val, arrays.y_test])
    y = (y[..., 0] > 0.5 if y.ndim == x.ndim else y).astype(np.int64)  # (..., 1) binary masks
    labelled = y != IGNORED
    return float((shown(x) == y)[labelled].mean())


def binary_agreement(arrays) -> float:
    return agreement(arrays, lambda x: (image_classes(x) > 0).astype(np.int64))


# ---- 1. classes from what the masks mean --------------------------------------------------


def test_masks_saved_0_255_are_refused_then_load_as_binary(tmp_path):
    root = write_folder(tmp_path, [(scene(i) > 0).astype(np.uint8) * 255 for i in range(10)])
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    message = one_line(excinfo)
    assert message.startswith("dataset 'folder': masks hold sparse values (0: ")
    assert "255: " in message and "masks/s00.png" in message
    for fix in ("ignore_index: 255", "values: {255: 1}", "binary: true", "classes: K"):
        assert fix in message
    arrays = zoo.datasets.build_arrays("folder", path=str(root), binary=True)
    assert arrays.n_classes == 1 and arrays.y_train.max() == 1
    assert binary_agreement(arrays) == 1.0
    mapped = zoo.datasets.build_arrays("folder", path=str(root), values={255: 1})
    assert mapped.n_classes == 2 and binary_agreement(mapped) == 1.0


def antialiased(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A 0/255 mask with anti-aliased edges (drawn 4x larger, downsampled) and its image."""
    big = (scene(i, SIZE * 4) > 0).astype(np.uint8) * 255
    mask = np.asarray(Image.fromarray(big).resize((SIZE, SIZE), Image.BOX))
    return mask, COLOURS[(mask > 127).astype(np.int64)]


def test_anti_aliased_and_jpeg_compressed_binary_masks_are_refused_then_load_as_binary(tmp_path):
    pairs = [antialiased(i) for i in range(10)]
    root = write_folder(tmp_path / "aa", [m for m, _ in pairs], images=[x for _, x in pairs])
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    assert "binary: true" in one_line(excinfo) and "masks/s0" in one_line(excinfo)
    assert binary_agreement(zoo.datasets.build_arrays("folder", path=str(root),
                                                      binary=True)) >= 0.99
    # Masks that went through JPEG (and were saved as PNG again).
    masks = []
    for i in range(10):
        buffer = io.BytesIO()
        Image.fromarray((scene(i) > 0).astype(np.uint8) * 255).save(buffer, "JPEG", quality=75)
        masks.append(np.asarray(Image.open(buffer)))
    root = write_folder(tmp_path / "jpeg", masks)
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    assert "masks/s0" in one_line(excinfo) and "binary: true" in one_line(excinfo)
    arrays = zoo.datasets.build_arrays("folder", path=str(root), binary=True)
    assert arrays.n_classes == 1 and binary_agreement(arrays) >= 0.99


def test_masks_coded_0_127_255_are_refused_then_load_with_a_value_map(tmp_path):
    codes = np.array([0, 127, 255, 255], np.uint8)
    root = write_folder(tmp_path, [codes[np.minimum(scene(i, classes=3), 2)]
                                   for i in range(10)],
                        images=[COLOURS[scene(i, classes=3)] for i in range(10)])
    with pytest.raises(ValueError, match=r"sparse values \(0: .*127: .*255: "):
        zoo.datasets.build_arrays("folder", path=str(root))
    arrays = zoo.datasets.build_arrays("folder", path=str(root), values={127: 1, "255": 2})
    assert arrays.n_classes == 3 and agreement(arrays) == 1.0


def test_class_index_masks_that_went_through_jpeg_are_refused(tmp_path):
    masks = []
    for i in range(10):
        buffer = io.BytesIO()
        Image.fromarray(scene(i)).save(buffer, "JPEG", quality=90)
        masks.append(np.asarray(Image.open(buffer)))
    assert max(m.max() for m in masks) > 3  # the phantom classes JPEG makes
    root = write_folder(tmp_path, masks)
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    message = one_line(excinfo)
    assert "never fill a 3x3 region" in message and "re-export the masks losslessly" in message
    assert "masks/s" in message


def voc_masks(n: int) -> tuple[list[Image.Image], int]:
    """VOC-style palette masks: classes 0..3 with a 1-px void (255) border on every object."""
    masks, void = [], 0
    palette = voc_palette().astype(np.uint8).ravel().tolist()
    for i in range(n):
        mask = scene(i).copy()
        padded = np.pad(mask, 1, mode="edge")
        border = np.zeros(mask.shape, bool)
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            border |= padded[dy:dy + SIZE, dx:dx + SIZE] != mask
        mask[border] = 255
        void += int(border.sum())
        image = Image.fromarray(mask, mode="P")
        image.putpalette(palette)
        masks.append(image)
    return masks, void


def test_voc_palette_masks_with_void_borders_load_with_ignore_index(tmp_path):
    masks, void = voc_masks(10)
    root = write_folder(tmp_path, masks)
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    assert "ignore_index: 255" in one_line(excinfo)
    with pytest.raises(ValueError, match=r"mask .*s00\.png has class index 255 out of range; "
                                         r"allowed 0\.\.20 .*ignore_index: 255"):
        zoo.datasets.build_arrays("folder", path=str(root), classes=21)
    arrays = zoo.datasets.build_arrays("folder", path=str(root), classes=21, ignore_index=255)
    assert arrays.n_classes == 21 and len(arrays.class_names) == 21
    y = np.concatenate([arrays.y_train, arrays.y_val, arrays.y_test])
    assert int((y == IGNORED).sum()) == void and agreement(arrays) == 1.0
    inferred = zoo.datasets.build_arrays("folder", path=str(root), ignore_index=255)
    assert inferred.n_classes == 4
    # Ignored pixels reach the model as all-zero target rows.
    splits = zoo.datasets.load_splits("folder", path=str(root), ignore_index=255, batch_size=4)
    _, targets = next(iter(splits.test))
    rows = targets.numpy().sum(-1)
    expected = arrays.y_test[:4] == IGNORED
    np.testing.assert_array_equal(rows == 0, expected)
    assert set(np.unique(rows)) == {0.0, 1.0}


# ---- 2. load what the user saw -----------------------------------------------------------


def test_phone_photos_with_exif_orientation_are_turned_upright(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(10):
        mask = scene(i, classes=3)[:, :40]  # 40 wide, 48 high as shown
        upright = COLOURS[mask]
        stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # as phones store it
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
        stored.save(tmp_path / "images" / f"p{i}.jpg", exif=exif, quality=95)
        Image.fromarray(mask).save(tmp_path / "masks" / f"p{i}.png")
    arrays = zoo.datasets.build_arrays("folder", path=str(tmp_path))
    assert arrays.input_shape == (48, 40, 3)
    assert agreement(arrays) >= 0.99


def test_a_mask_of_another_size_than_its_image_is_refused(tmp_path):
    masks = [scene(i) for i in range(6)]
    masks[3] = np.ascontiguousarray(scene(3)[:, :40].T)  # 48x40 instead of 40x48
    images = [COLOURS[scene(i)] for i in range(6)]
    images[3] = COLOURS[scene(3)[:, :40]]
    root = write_folder(tmp_path, masks, images=images)
    with pytest.raises(ValueError, match=r"^dataset 'folder': mask .*s03\.png is 48x40 but its "
                                         r"image s03\.png is 40x48 \(as shown, after EXIF "
                                         r"orientation\); a mask must have its image's size$"):
        zoo.datasets.build_arrays("folder", path=str(root))


def test_16_bit_microscopy_images_are_scaled_not_clipped(tmp_path):
    levels = np.array([80, 1400, 2700, 4080], np.uint16)  # a 12-bit camera's values
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(10):
        Image.fromarray(levels[scene(i)]).save(tmp_path / "images" / f"m{i}.png")
        Image.fromarray(scene(i)).save(tmp_path / "masks" / f"m{i}.png")
    assert Image.open(tmp_path / "images" / "m0.png").mode.startswith("I;16")
    arrays = zoo.datasets.build_arrays("folder", path=str(tmp_path), channels=1)
    x = np.concatenate([arrays.x_train, arrays.x_val, arrays.x_test])
    assert x.dtype == np.float32 and x.max() <= 1.0
    assert (x == 1.0).mean() == 0.0  # none clipped (before: every pixel became 255)
    # Scaled by 2^12 - 1: the levels come back exactly.
    np.testing.assert_allclose(np.unique(x), levels / 4095, rtol=1e-6)

    def shown(x: np.ndarray) -> np.ndarray:
        return np.abs(x[..., :1] * 4095 - levels.astype(np.float32)).argmin(-1)

    assert agreement(arrays, shown) == 1.0


def test_a_colour_mask_saved_as_an_indexed_png_is_refused(tmp_path):
    masks = [scene(i) for i in range(6)]
    colour = Image.fromarray(COLOURS[scene(2)]).quantize(colors=4)  # what editors save
    masks[2] = colour
    root = write_folder(tmp_path, masks)
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    assert one_line(excinfo).startswith(f"dataset 'folder': mask {root / 'masks' / 's02.png'} "
                                        f"is a colour palette PNG")


# ---- npz -------------------------------------------------------------------------------


def npz(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def npz_scenes(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    y = np.stack([scene(i) for i in range(n)])
    return COLOURS[y], y


def test_npz_one_channel_integer_targets_outside_0_1_are_refused(tmp_path):
    x, y = npz_scenes()
    for values, shown in (((y > 0) * 255, "0..255"), (y, "0..3")):
        path = npz(tmp_path, x=x, y=values[..., None].astype(np.int64))
        with pytest.raises(ValueError, match=rf"y is a one-channel target \(10, 48, 48, 1\) of "
                                             rf"integers {shown}, outside \[0, 1\]; for class "
                                             rf"indices store y\[\.\.\., 0\]"):
            zoo.datasets.build_arrays("npz", path=path)
    arrays = zoo.datasets.build_arrays("npz", path=npz(tmp_path, x=x, y=(y > 0)[..., None]
                                                        .astype(np.int64)))
    assert arrays.n_classes == 1 and binary_agreement(arrays) == 1.0


def test_npz_0_255_and_void_255_are_refused_then_load(tmp_path):
    x, y = npz_scenes()
    path = npz(tmp_path, x=x, y=((y > 0) * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"^dataset 'npz': masks hold sparse values .*data\.npz "
                                         r"y\[\d+\]"):
        zoo.datasets.build_arrays("npz", path=path)
    assert binary_agreement(zoo.datasets.build_arrays("npz", path=path, binary=True)) == 1.0
    void = y.copy()
    void[:, ::7] = 255
    path = npz(tmp_path, x=x, y=void)
    with pytest.raises(ValueError, match="ignore_index: 255"):
        zoo.datasets.build_arrays("npz", path=path)
    arrays = zoo.datasets.build_arrays("npz", path=path, ignore_index=255)
    assert arrays.n_classes == 4 and agreement(arrays) == 1.0
    assert int(sum((a == IGNORED).sum() for a in (arrays.y_train, arrays.y_val, arrays.y_test))
               ) == int((void == 255).sum())


def test_npz_one_hot_ignore_rows_and_soft_labels(tmp_path):
    x, y = npz_scenes()
    onehot = np.eye(4, dtype=np.float32)[y]
    onehot[:, 0, :] = 0  # the first row of every sample: ignore pixels
    path = npz(tmp_path, x=x, y=onehot)
    with pytest.raises(ValueError, match=r"y has 480 pixels whose one-hot row is all zero "
                                         r"\(first in sample 0\); set ignore_index"):
        zoo.datasets.build_arrays("npz", path=path)
    arrays = zoo.datasets.build_arrays("npz", path=path, ignore_index=255)
    assert arrays.n_classes == 4 and (arrays.y_train[:, 0] == IGNORED).all()
    assert agreement(arrays) == 1.0
    # Soft labels stay as they are: a uniform row is not class 0.
    soft = np.full((10, 48, 48, 4), 0.25, np.float32)
    soft[..., 0, :] = onehot[:, 1, :]
    arrays = zoo.datasets.build_arrays("npz", path=npz(tmp_path, x=x, y=soft))
    assert arrays.y_train.dtype == np.float32 and arrays.y_train.shape[-1] == 4
    np.testing.assert_array_equal(arrays.y_train[:, 5, 5], 0.25)


def test_npz_channels_first_x_is_named(tmp_path):
    x, y = npz_scenes()
    path = npz(tmp_path, x=x.transpose(0, 3, 1, 2), y=y)
    with pytest.raises(ValueError, match=r"x has shape \(10, 3, 48, 48\), channels first, while "
                                         r"y is \(10, 48, 48\); store x channels last: "
                                         r"x\.transpose\(0, 2, 3, 1\)$"):
        zoo.datasets.build_arrays("npz", path=path)


# ---- 3. layouts users have ---------------------------------------------------------------


def test_roboflow_valid_folder_is_the_validation_split(tmp_path):
    write_folder(tmp_path / "train", [scene(i) for i in range(6)])
    write_folder(tmp_path / "valid", [scene(i) for i in range(3)])
    write_folder(tmp_path / "test", [scene(i) for i in range(2)])
    arrays = zoo.datasets.build_arrays("folder", path=str(tmp_path))
    assert (len(arrays.x_train), len(arrays.x_val), len(arrays.x_test)) == (6, 3, 2)
    write_folder(tmp_path / "val", [scene(0)])
    with pytest.raises(ValueError, match=r"has both val/ and valid/; keep one validation folder"):
        zoo.datasets.build_arrays("folder", path=str(tmp_path))


def test_the_most_common_size_wins_over_a_large_first_image(tmp_path):
    images = [COLOURS[scene(i)] for i in range(8)]
    masks = [scene(i) for i in range(8)]
    # The largest image comes first by name: it used to set the size of all.
    images[0] = COLOURS[scene(0, 1200)]
    masks[0] = scene(0, 1200)
    root = write_folder(tmp_path, masks, images=images)
    arrays = zoo.datasets.build_arrays("folder", path=str(root))
    assert arrays.input_shape == (48, 48, 3) and arrays.x_train.nbytes < 100_000
    assert agreement(arrays) >= 0.99


def test_a_class_missing_from_the_training_split_warns(tmp_path):
    write_folder(tmp_path / "train", [np.minimum(scene(i), 2) for i in range(4)],
                 images=[COLOURS[np.minimum(scene(i), 2)] for i in range(4)])
    write_folder(tmp_path / "val", [np.minimum(scene(i), 2) for i in range(2)],
                 images=[COLOURS[np.minimum(scene(i), 2)] for i in range(2)])
    write_folder(tmp_path / "test", [scene(5)])
    with pytest.warns(UserWarning, match=r"^dataset 'folder': class 3 \(class_3\) appears only "
                                         r"in the test split, not in the training split"):
        zoo.datasets.build_arrays("folder", path=str(tmp_path))


def test_split_subfolders_under_images_are_named(tmp_path):
    for split in ("train", "val"):
        write_folder(tmp_path / "tmp", [scene(0)])
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        (tmp_path / "tmp" / "images").rename(tmp_path / "images" / split)
        (tmp_path / "tmp" / "masks").rename(tmp_path / "masks" / split)
    with pytest.raises(ValueError, match=r"no images in .*images, only the subfolders train, "
                                         r"val; lay splits out as .*/train/images"):
        zoo.datasets.build_arrays("folder", path=str(tmp_path))


# ---- 4. every failure one line naming the file -------------------------------------------


def test_a_decompression_bomb_is_one_line_and_max_pixels_allows_it(tmp_path):
    root = write_folder(tmp_path, [scene(i) for i in range(5)])
    # 13400 x 13400 pixels: over Pillow's limit, yet a 22-kB file.
    for folder in ("images", "masks"):
        Image.new("1", (13400, 13400)).save(root / folder / "scan.png")
    with pytest.raises(ValueError) as excinfo:
        zoo.datasets.build_arrays("folder", path=str(root))
    assert one_line(excinfo) == (
        f"dataset 'folder': {root / 'images' / 'scan.png'} has 179,560,000 pixels "
        f"(13400x13400), more than max_pixels=178,956,970 (the guard against decompression "
        f"bombs); set option max_pixels: 179560000 to read it")
    (root / "images" / "scan.png").unlink()
    (root / "masks" / "scan.png").unlink()
    with pytest.raises(ValueError, match=r"s00\.png has 2,304 pixels .*max_pixels: 2304"):
        zoo.datasets.build_arrays("folder", path=str(root), max_pixels=2000)
    assert len(zoo.datasets.build_arrays("folder", path=str(root), max_pixels=2304).x_train)


def test_tiff_bmp_and_webp_images_load_and_other_formats_are_named(tmp_path):
    root = write_folder(tmp_path, [scene(i) for i in range(6)])
    for i, suffix in ((0, ".tif"), (1, ".bmp"), (2, ".webp")):
        image = root / "images" / f"s{i:02d}.png"
        Image.open(image).save(image.with_suffix(suffix), lossless=True)
        image.unlink()
    arrays = zoo.datasets.build_arrays("folder", path=str(root))
    assert agreement(arrays) == 1.0
    Image.fromarray(scene(3)).convert("RGB").save(root / "masks" / "s03.jpg")
    (root / "masks" / "s03.png").unlink()
    with pytest.raises(ValueError, match=r"^dataset 'folder': mask .*s03\.jpg: unsupported "
                                         r"format `\.jpg` for masks \(lossy"):
        zoo.datasets.build_arrays("folder", path=str(root))
    Image.fromarray(scene(3)).save(root / "masks" / "s03.png")
    (root / "masks" / "s03.jpg").unlink()
    Image.fromarray(COLOURS[scene(4)]).save(root / "images" / "s09.gif")
    with pytest.raises(ValueError, match=r"^dataset 'folder': image .*s09\.gif: unsupported "
                                         r"format `\.gif`; convert it to one of \.png"):
        zoo.datasets.build_arrays("folder", path=str(root))


def test_names_pair_after_unicode_normalisation_and_near_misses_are_named(tmp_path):
    root = write_folder(tmp_path, [scene(i) for i in range(4)])
    name = "Zürich_01"
    nfd, nfc = unicodedata.normalize("NFD", name), unicodedata.normalize("NFC", name)
    assert nfd != nfc
    Image.fromarray(COLOURS[scene(7)]).save(root / "images" / f"{nfd}.png")  # copied from a Mac
    Image.fromarray(scene(7)).save(root / "masks" / f"{nfc}.png")
    arrays = zoo.datasets.build_arrays("folder", path=str(root))
    assert len(arrays.x_train) + len(arrays.x_val) + len(arrays.x_test) == 5
    Image.fromarray(COLOURS[scene(8)]).save(root / "images" / "IMG_8.png")
    Image.fromarray(scene(8)).save(root / "masks" / "img_8.png")
    with pytest.raises(ValueError, match=r"image .*IMG_8\.png has no mask; expected .*IMG_8\.png"
                                         r"; found img_8\.png, whose name differs in case$"):
        zoo.datasets.build_arrays("folder", path=str(root))


# ---- ignored pixels in losses, metrics and per-case scores --------------------------------


def test_ignored_pixels_count_in_no_loss_metric_or_case_score():
    from zoo.case_metrics import case_scores, truth_labels

    # Pixels: class 1, class 0, ignored (all-zero row), class 1. Predicted: 1, 0, 1, 0.
    y_true = np.array([[[[0, 1], [1, 0]], [[0, 0], [0, 1]]]], np.float32)
    y_pred = np.array([[[[0, 1], [1, 0]], [[0, 1], [1, 0]]]], np.float32)
    # By hand, over the three labelled pixels: class 0 has TP 1, FP 1, FN 0 -> Dice 2/3;
    # class 1 has TP 1, FP 0, FN 1 -> Dice 2/3. (Counting the ignored pixel as class 0
    # would give 1/2 and 1/2.)
    metric = zoo.get_metric("dice_coef", 2)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(2 / 3)
    accuracy = zoo.get_metric("pixel_accuracy", 2)
    accuracy.update_state(y_true, y_pred)
    assert float(accuracy.result()) == pytest.approx(2 / 3)
    dice = zoo.get_loss("dice", smooth=0.0)
    assert float(dice(y_true, y_pred)) == pytest.approx(1 - 2 / 3)
    # Crossentropy: the mean over the three labelled pixels only.
    soft = np.where(y_pred == 1, 0.9, 0.1).astype(np.float32)
    expected = -(np.log(0.9) + np.log(0.9) + np.log(0.1)) / 3
    ce = zoo.get_loss("categorical_crossentropy")
    assert float(ce(y_true, soft)) == pytest.approx(expected, rel=1e-5)
    combined = zoo.get_loss("ce_dice", smooth=0.0)
    assert float(combined(y_true, y_pred)) == pytest.approx(
        float(ce(y_true, y_pred)) + 1 / 3, rel=1e-5)
    labels = truth_labels(y_true)
    assert labels.tolist() == [[[1, 0], [-1, 1]]]
    scores = case_scores(labels, y_pred.argmax(-1), 2)
    np.testing.assert_allclose(scores["dice"], [2 / 3, 2 / 3])


def test_a_keras_fit_on_voc_masks_with_ignore_index_runs(tmp_path):
    import keras

    masks, _ = voc_masks(8)
    root = write_folder(tmp_path, masks)
    splits = zoo.datasets.load_splits("folder", path=str(root), classes=21, ignore_index=255,
                                      batch_size=4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)),
                              keras.layers.Conv2D(21, 3, padding="same", activation="softmax")])
    model.compile(optimizer="adam", loss=zoo.get_loss("ce_dice"),
                  metrics=[zoo.get_metric("mean_iou", 21)])
    history = model.fit(splits.train, validation_data=splits.val, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][1] < history.history["loss"][0]


@settings(max_examples=8, deadline=None)  # each example runs 8 Keras objects eagerly
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 4), share=st.floats(0.0, 0.6))
def test_what_is_predicted_on_ignored_pixels_changes_no_score(seed, k, share):
    from zoo.case_metrics import case_scores, truth_labels

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=(2, 5, 5))
    ignored = rng.random((2, 5, 5)) < share
    y_true = np.eye(k, dtype=np.float32)[labels] * ~ignored[..., None]
    first = rng.dirichlet(np.ones(k), size=(2, 5, 5)).astype(np.float32)
    # Another prediction, equal to the first wherever a pixel is labelled.
    second = np.where(ignored[..., None], rng.dirichlet(np.ones(k), size=(2, 5, 5)),
                      first).astype(np.float32)
    for name in ("categorical_crossentropy", "binary_crossentropy", "dice", "focal",
                 "generalized_dice"):
        loss = zoo.get_loss(name)
        assert float(loss(y_true, first)) == pytest.approx(float(loss(y_true, second)),
                                                           rel=1e-5, abs=1e-6)
    for name in ("dice_coef", "mean_iou", "pixel_accuracy"):
        a, b = zoo.get_metric(name, k), zoo.get_metric(name, k)
        a.update_state(y_true, first)
        b.update_state(y_true, second)
        assert float(a.result()) == pytest.approx(float(b.result()), abs=1e-6)
    # The pooled Dice is that of the labelled pixels alone.
    if (~ignored).any():
        kept = zoo.get_metric("dice_coef", k)
        kept.update_state(y_true[~ignored][None, None], first[~ignored][None, None])
        a = zoo.get_metric("dice_coef", k)
        a.update_state(y_true, first)
        assert float(a.result()) == pytest.approx(float(kept.result()), abs=1e-6)
    truth = truth_labels(y_true)
    one, two = (case_scores(truth, p.argmax(-1), k) for p in (first, second))
    for metric in ("dice", "iou"):
        np.testing.assert_array_equal(one[metric], two[metric])
