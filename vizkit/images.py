"""Decode image files safely: documented formats only, bounded work and memory.

Image files come from users (uploads in the dashboard), so decoding treats them as hostile:

- only PNG, JPEG, BMP, GIF, WebP and TIFF are opened (Pillow's other plugins are never tried:
  EPS would run Ghostscript on the file's PostScript, FITS and friends are not documented);
- only regular files are opened (a FIFO or a device never blocks or streams forever);
- images over ``max_pixels`` are refused from their header, before any pixel is decoded;
- progressive JPEGs with more than :data:`MAX_JPEG_SCANS` scans are refused before decoding
  (each scan is a full pass over the image: thousands of them never finish);
- images are decoded at reduced size when the caller needs fewer pixels (JPEG ``draft`` scaling
  in the decoder, an integer box ``reduce`` for the other formats) before any float conversion,
  and the original kept for display is at most :data:`ORIGINAL_MAX_SIDE` pixels on its long
  side;
- EXIF orientation is applied, so a phone photo is upright.

No TensorFlow here.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vizkit.errors import InputError, one_line

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "MAX_JPEG_SCANS",
    "MAX_PIXELS",
    "ORIGINAL_MAX_SIDE",
    "decode_image",
    "fit",
]

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 40_000_000  # per image; larger files are refused as likely decompression bombs
MAX_JPEG_SCANS = 100  # libjpeg writes 10, mozjpeg about 20; each scan re-reads the whole image
ORIGINAL_MAX_SIDE = 1024  # originals kept for display (or the model's input size, if larger)
_BYTES_PER_PIXEL = 8  # 16-bit RGBA, the widest pixel of the documented formats, uncompressed
_METADATA_BYTES = 32_000_000  # room for EXIF, ICC profiles and thumbnails on top of the pixels
_READABLE = "PNG, JPEG, BMP, GIF, WebP or TIFF"
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_REDUCE_FIRST = frozenset({"L", "RGB", "I", "F", "CMYK", "YCbCr"})  # no alpha, palette or 16-bit
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # JPEG marker (not stuffing, RST or fill)


def decode_image(
    source: Any,
    name: str,
    max_pixels: int = MAX_PIXELS,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a path, bytes or PIL image for a model that needs ``size`` pixels.

    Parameters
    ----------
    source : str, os.PathLike, bytes or PIL.Image.Image
        The image. Paths must name regular files.
    name : str
        Shown in error messages.
    max_pixels : int
        Refuse images with more pixels (decompression bombs), read from the header.
    size : (int, int), optional
        ``(height, width)`` the caller will resize to. The image is decoded at the smallest
        reduction that keeps at least this many pixels (and at least what the original needs
        for display); ``None`` decodes at full size.

    Returns
    -------
    image : ndarray, shape (H, W, C), float32
        Values in [0, 1], C in {1, 3}; at least ``size`` (unless the file is smaller).
    original : ndarray, shape (H0, W0, C), uint8
        The image for display, at most :data:`ORIGINAL_MAX_SIDE` pixels on its long side (or
        the largest side of ``size``, if larger).

    Raises
    ------
    InputError
        One line naming the problem and the fix: missing, not a regular file, not one of the
        documented formats, too many pixels or JPEG scans, damaged.
    """
    if isinstance(source, Image.Image):
        image, top = _normalize_mode(_first_frame(source, name, max_pixels))
    else:
        data = _read(source, name, max_pixels)
        image, top = _decode(data, name, max_pixels, size)
    cap = max(ORIGINAL_MAX_SIDE, *(size or (0,)))
    array = _to_float(image, top)
    return array, _to_uint8(_shrink(array, cap))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _read(source: Any, name: str, max_pixels: int) -> bytes:
    """The file's bytes; only regular files, and never more than an image can need."""
    limit = max_pixels * _BYTES_PER_PIXEL + _METADATA_BYTES
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise InputError(f"image file {name!r} does not exist") from None
        except IsADirectoryError:
            raise InputError(
                f"{name!r} is a folder: pass the folder itself or an image file"
            ) from None
        except OSError as err:
            raise InputError(f"cannot read image file {name!r}: {one_line(err.strerror)}") from None
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
                raise InputError(
                    f"{name!r} is {kind} (a pipe, device or socket never ends): pass an image file"
                )
            data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"image file {name!r} is larger than any image of {max_pixels:,} pixels needs: "
            "resize it first (or raise max_pixels if you trust the file)"
        )
    return data


def _decode(
    data: bytes, name: str, max_pixels: int, size: tuple[int, int] | None
) -> tuple[Image.Image, float | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputError(
            f"{name!r} is not an image vizkit can read: use {_READABLE} (convert other formats "
            "to PNG first)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"image {name!r} is too large to decode safely: resize it below {max_pixels:,} pixels"
        ) from None
    _check_pixels(image, name, max_pixels)
    if image.format in ("JPEG", "MPO"):
        scans = _jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise InputError(
                f"JPEG {name!r} has {scans if scans < 10_000 else 'over 10,000'} progressive "
                f"scans (more than {MAX_JPEG_SCANS}), which would take very long to decode: "
                "re-save it as a baseline JPEG or PNG"
            )
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: ignore the orientation, not the image
        orientation = 1
    need = _needed(image.size, size, orientation)
    try:
        if need is not None and image.format in ("JPEG", "MPO"):
            image.draft(image.mode, need)  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()  # the first frame of GIF, TIFF and animated PNG/WebP
        if image.mode not in _REDUCE_FIRST:
            image, top = _normalize_mode(image)
        if need is not None:
            factor = min(image.size[0] // need[0], image.size[1] // need[1])
            if factor >= 2:
                image = image.reduce(factor)
        if image.mode in _REDUCE_FIRST:  # the same result, computed on fewer pixels
            image, top = _normalize_mode(image)
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as err:
        raise InputError(
            f"image {name!r} is damaged or truncated ({one_line(err)[:120]}): re-save or "
            "re-export it"
        ) from None
    return image, top


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            f"image {name!r} has {width}x{height} pixels, more than the limit of {max_pixels:,}: "
            "resize it first (or raise max_pixels if you trust the file)"
        )


def _first_frame(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    """A caller's PIL image, loaded (the current frame); same pixel limit as files."""
    _check_pixels(image, name, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"image {name!r} is damaged or truncated: {one_line(err)[:120]}") from None
    return image


def _needed(
    stored: tuple[int, int], size: tuple[int, int] | None, orientation: int
) -> tuple[int, int] | None:
    """``(width, height)`` to keep, in stored orientation: the model's size and the display's.

    None (decode at full size) without a model size or for images that fit the display.
    """
    stored_w, stored_h = stored
    long_side = max(stored_w, stored_h)
    if size is None or long_side <= ORIGINAL_MAX_SIDE:
        return None
    height, width = (int(v) for v in size)
    if orientation in _SWAPS_AXES:
        height, width = width, height
    scale = ORIGINAL_MAX_SIDE / long_side  # the original is kept this big for display
    width = max(width, int(np.ceil(stored_w * scale)))
    height = max(height, int(np.ceil(stored_h * scale)))
    return max(1, width), max(1, height)


def _jpeg_scans(data: bytes) -> int:
    """Number of scans (SOS markers) in the first image of a JPEG stream (stops at 10,000)."""
    count, pos, end = 0, 2, len(data)
    while pos < end and count <= 10_000:
        match = _MARKER.search(data, pos)
        if match is None:
            break
        marker = data[match.start() + 1]
        pos = match.start() + 2
        if marker in (0xD8, 0x01):  # SOI, TEM: no length
            continue
        if marker == 0xD9:  # EOI: end of the first image (MPO and thumbnails come after)
            break
        if pos + 2 > end:
            break
        length = int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:
            count += 1
        pos += length  # skip the segment; entropy-coded data is skipped by the marker search
    return count


# --------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------
def _normalize_mode(image: Image.Image) -> tuple[Image.Image, float | None]:
    """Mode L, RGB, I or F (alpha composited on white), and the full-scale value of I/F.

    ``top`` is 65535 for 16-bit images, None when it must be read from the values (``I`` and
    ``F`` images of unknown depth) and 255 for 8-bit images.
    """
    mode = image.mode
    if mode.startswith("I;16"):
        return image.convert("I"), 65535.0
    if mode in ("I", "F"):
        return image, None
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert(
            "L" if mode.startswith("L") else "RGB"
        ), 255.0
    if mode == "L":
        return image, 255.0
    if mode == "1":
        return image.convert("L"), 255.0
    if mode != "RGB":
        return image.convert("RGB"), 255.0  # CMYK, YCbCr, LAB, HSV, ...
    return image, 255.0


def _to_float(image: Image.Image, top: float | None) -> np.ndarray:
    """``(H, W, C)`` float32 in [0, 1] from a normalized image (see :func:`_normalize_mode`)."""
    if image.mode == "I":
        raw = np.asarray(image, dtype=np.float64)
        if top is None:
            top = 65535.0 if raw.max(initial=0) > 255 else 255.0
        return (np.clip(raw, 0, top) / top).astype(np.float32)[..., None]
    if image.mode == "F":
        raw = np.asarray(image, dtype=np.float32)
        peak = float(raw.max(initial=0.0))
        return (raw / peak if peak > 1.0 else raw).clip(0, 1)[..., None]
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def _shrink(image: np.ndarray, cap: int) -> np.ndarray:
    """``image`` with its long side at most ``cap`` (bilinear, antialiased), else unchanged."""
    height, width = image.shape[:2]
    if max(height, width) <= cap:
        return image
    scale = cap / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return resize(image, size)


def resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize float32 ``(H, W, C)`` to ``size = (height, width)`` (bilinear, antialiased)."""
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return image
    height, width = size
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.stack(planes, axis=-1).astype(np.float32)


def fit(image: np.ndarray, size: tuple[int, int] | None, mode: str = "stretch") -> np.ndarray:
    """Float32 ``(H, W, C)`` at ``size = (height, width)``, keeping or ignoring aspect ratio.

    ``"stretch"`` resizes to the size whatever the aspect ratio (Keras' ``load_img`` and
    ``image_dataset_from_directory`` default); ``"crop"`` takes the largest centred window of
    the size's aspect ratio, then resizes (Keras' ``crop_to_aspect_ratio``); ``"pad"`` resizes
    the whole image into the size and fills the borders evenly with 0, black (Keras'
    ``pad_to_aspect_ratio``).
    """
    if size is None or tuple(image.shape[:2]) == tuple(size) or mode == "stretch":
        return resize(image, size)
    height, width = image.shape[:2]
    target_h, target_w = (int(v) for v in size)
    if mode == "crop":
        crop_h = min(height, max(1, int(width * target_h / target_w)))
        crop_w = min(width, max(1, int(height * target_w / target_h)))
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return resize(image[top : top + crop_h, left : left + crop_w], size)
    if mode != "pad":
        raise InputError(f"resize={mode!r} is not known: choose 'stretch', 'crop' or 'pad'")
    scale = min(target_h / height, target_w / width)
    inner_h = min(target_h, max(1, int(height * scale + 1e-6)))
    inner_w = min(target_w, max(1, int(width * scale + 1e-6)))
    canvas = np.zeros((target_h, target_w, image.shape[-1]), np.float32)
    top, left = (target_h - inner_h) // 2, (target_w - inner_w) // 2
    canvas[top : top + inner_h, left : left + inner_w] = resize(image, (inner_h, inner_w))
    return canvas


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
