"""Decoding a user's image and mask files as the user saw them, every failure one line.

- EXIF orientation is applied (phone photos are stored sideways and shown upright).
- 16-bit greyscale images keep their values (scaled later, dataset-wide, not clipped).
- Palette masks are read as class indices only when their palette says so (the
  identity, or Pascal VOC's colours); a grey palette gives its grey levels; a colour
  palette is refused, as a colour mask is.
- Pillow's decompression-bomb guard becomes the ``max_pixels`` option, and every
  decoder error names its file.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # refused for masks: they change class values
# Image formats a user may drop in that are not read: named, never skipped silently.
OTHER_IMAGE_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jp2", ".jxl", ".psd", ".svg",
                        ".ico", ".dng", ".cr2", ".nef", ".arw", ".raw", ".pgm", ".ppm", ".exr")
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
DEFAULT_MAX_PIXELS = 2 * int(Image.MAX_IMAGE_PIXELS or 89_478_485)  # where Pillow refuses
_SWAPPED = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_LIMIT_LOCK = threading.Lock()


def _error(message: str) -> ValueError:
    return ValueError(f"dataset 'folder': {message}")


@contextlib.contextmanager
def own_pixel_limit() -> Iterator[None]:
    """Switch Pillow's global decompression-bomb check off while we apply ``max_pixels``.

    Pillow's check is a module global; it is restored on exit.
    """
    with _LIMIT_LOCK:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


@dataclass(frozen=True)
class Header:
    """What a file's header says: its size as shown (after EXIF orientation) and mode."""

    path: Path
    height: int
    width: int
    mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def high_depth(self) -> bool:
        return self.mode in HIGH_DEPTH_MODES


def size_text(size: tuple[int, int]) -> str:
    """``(H, W)`` as ``"WxH"``, the way image viewers print sizes."""
    return f"{size[1]}x{size[0]}"


def _open(path: Path, max_pixels: int) -> Image.Image:
    """The file opened lazily (header only), its pixel count checked against ``max_pixels``."""
    try:
        image = Image.open(path)
    except Exception as exc:  # noqa: BLE001  (any decoder error becomes one line naming the file)
        raise _error(f"cannot read {path}: {_one_line(exc)}") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _error(f"{path} has {width * height:,} pixels ({width}x{height}), more than "
                     f"max_pixels={max_pixels:,} (the guard against decompression bombs); "
                     f"set option max_pixels: {width * height} to read it")
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001  (a broken EXIF block: read the image as stored)
        return 1


def header(path: Path, max_pixels: int) -> Header:
    """The file's size as shown and its mode, reading the header only."""
    with _open(path, max_pixels) as image:
        width, height = image.size
        if _orientation(image) in _SWAPPED:
            width, height = height, width
        return Header(path, height, width, image.mode)


def _decode(path: Path, max_pixels: int) -> Image.Image:
    """The whole image decoded and turned upright by its EXIF orientation."""
    image = _open(path, max_pixels)
    try:
        image.load()  # decode now, so a truncated file fails here, naming itself
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001  (any decoder error becomes one line naming the file)
        raise _error(f"cannot read {path}: {_one_line(exc)}") from None
    return upright if upright is not None else image


def read_image(path: Path, size: tuple[int, int], channels: int,
               max_pixels: int) -> np.ndarray:
    """The image as shown, resized bilinearly to ``size`` (H, W).

    Returns:
        uint8 (H, W, channels) for 8-bit files; float32 raw values for 16-bit ones
        (scaled by the caller, dataset-wide).
    """
    image = _decode(path, max_pixels)
    target = (size[1], size[0])
    if image.mode in HIGH_DEPTH_MODES:
        values = Image.fromarray(np.asarray(image, np.float32), mode="F")
        if values.size != target:
            values = values.resize(target, Image.BILINEAR)
        array = np.asarray(values, np.float32)[..., None]
        return np.repeat(array, channels, axis=-1)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != target:
        image = image.resize(target, Image.BILINEAR)
    array = np.asarray(image, np.uint8)
    return array[..., None] if channels == 1 else array


def voc_palette() -> np.ndarray:
    """Pascal VOC's colour map (256, 3): class k's colour (255, the void, is 224 224 192)."""
    palette = np.zeros((256, 3), np.int64)
    for k in range(256):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[k] = (r, g, b)
    return palette


_VOC = voc_palette()
_IDENTITY = np.repeat(np.arange(256)[:, None], 3, axis=1)


def _palette_values(path: Path, image: Image.Image) -> np.ndarray:
    """A palette (P mode) mask as what it shows: indices, or grey levels; colours refused."""
    indices = np.asarray(image, np.int64)
    raw = image.getpalette() or []
    palette = np.zeros((256, 3), np.int64)
    entries = np.asarray(raw[: 768 - len(raw) % 3], np.int64).reshape(-1, 3)
    palette[: len(entries)] = entries
    used = np.unique(indices)
    colours = palette[used]
    if (colours == _IDENTITY[used]).all() or (colours == _VOC[used]).all():
        return indices  # the palette only dresses up class indices
    if (colours == colours[:, :1]).all():
        return palette[indices, 0]  # a grey palette: the grey levels the user saw
    odd = int(used[(colours != _VOC[used]).any(1)][0])
    shown = tuple(int(c) for c in palette[odd])
    raise _error(f"mask {path} is a colour palette PNG whose palette is neither class indices "
                 f"nor Pascal VOC's colours (index {odd} shows {shown}); save "
                 f"class indices as a greyscale PNG (a colour mask is not read)")


def read_mask(path: Path, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """The mask's stored values as shown, uint16 (H, W), at ``size`` (its image's size).

    Raises:
        ValueError: unreadable, colour, a colour palette, or a size other than
            ``size`` (one line naming the file).
    """
    mask = _decode(path, max_pixels)
    array = _palette_values(path, mask) if mask.mode == "P" else np.asarray(mask)
    if array.ndim == 3:
        # RGB(A) masks are accepted only when grey: every colour channel equal.
        colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if (colour != colour[..., :1]).any():
            raise _error(f"mask {path} is a colour image (mode {mask.mode}); save class "
                         f"indices as a single-channel (L or P mode) PNG")
        array = colour[..., 0]
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise _error(f"mask {path} holds values {int(array.min())}..{int(array.max())}; "
                     f"class values must lie in 0..65535")
    if array.shape != size:
        raise _error(f"mask {path} is {size_text(array.shape)} but its image is "
                     f"{size_text(size)}; a mask must have its image's size")
    return array.astype(np.uint16)
