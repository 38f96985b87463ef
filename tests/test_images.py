"""vizkit.images: safe decoding (formats, files, scans), reduced decoding, EXIF orientation.

The hostile files themselves are in tests/hostile (run in a fresh process); these tests check
that safe decoding still gives the right pixels.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from vizkit import images
from vizkit.errors import InputError
from vizkit.inputs import load_images


def _saved(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _smooth(width: int, height: int) -> np.ndarray:
    """A smooth RGB image (resampling differences stay small on it), uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack(
        [x / width, y / height, 0.5 + 0.4 * np.sin(x / width * 3) * np.cos(y / height * 2)], -1
    )
    return np.round(rgb * 255).astype(np.uint8)


def _reference(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What decoding at full size then resizing gives (the old path, independent of reduce)."""
    full = array.astype(np.float32) / 255.0
    return images.resize(full, size)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"P5 4 4 255\n" + bytes(16), "PPM"),
        (_saved(Image.new("RGB", (4, 4)), "ICO"), "ICO"),
        (_saved(Image.new("RGB", (4, 4)), "TGA"), "TGA"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n", "EPS"),
    ],
)
def test_only_documented_formats_are_opened(data, what):
    with pytest.raises(InputError, match="not an image vizkit can read: use PNG, JPEG") as info:
        load_images(data)
    assert "\n" not in str(info.value), what


def test_only_regular_files_are_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="'pipe.png' is not a regular file"):
        load_images(fifo)  # must not wait for a writer
    with pytest.raises(InputError, match="folder holds no image files|not a regular file"):
        load_images(tmp_path)  # the folder's only "image" is the pipe
    (tmp_path / "a.png").write_bytes(_saved(Image.new("L", (2, 2)), "PNG"))
    with pytest.raises(InputError, match="'pipe.png' is not a regular file"):
        load_images(tmp_path)


def test_jpeg_scans_are_counted_in_the_first_image_only():
    pixels = Image.fromarray(_smooth(40, 30))
    assert images._jpeg_scans(_saved(pixels, "JPEG")) == 1
    progressive = _saved(pixels, "JPEG", progressive=True)
    assert 2 <= images._jpeg_scans(progressive) <= images.MAX_JPEG_SCANS
    twice = progressive + progressive  # an MPO-like second picture is not counted
    assert images._jpeg_scans(twice) == images._jpeg_scans(progressive)
    batch = load_images(progressive, size=(15, 20))
    assert batch.array.shape == (1, 15, 20, 3)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP", "WEBP"])
def test_reduced_decoding_matches_full_decoding(fmt):
    array = _smooth(640, 480)
    data = _saved(Image.fromarray(array), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    batch = load_images(data, size=(24, 32))
    np.testing.assert_allclose(batch.array[0], _reference(array, (24, 32)), atol=0.02)


def test_jpeg_draft_decoding_matches_full_decoding():
    array = _smooth(800, 600)
    data = _saved(Image.fromarray(array), "JPEG", quality=95)
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    batch = load_images(data, size=(30, 40))
    np.testing.assert_allclose(batch.array[0], _reference(full, (30, 40)), atol=0.03)


def test_16_bit_and_transparent_images_keep_their_values_when_reduced():
    deep = Image.fromarray(np.full((400, 300), 13107, np.uint16))
    np.testing.assert_allclose(load_images(_saved(deep, "PNG"), size=(8, 8)).array, 0.2, atol=1e-4)
    clear = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    np.testing.assert_allclose(load_images(_saved(clear, "PNG"), size=(8, 8)).array, 1.0)
    palette = Image.new("P", (400, 300), 0)
    np.testing.assert_allclose(load_images(_saved(palette, "PNG"), size=(8, 8)).array, 0.0)


def test_originals_are_downscaled_for_display_only():
    array = _smooth(2048, 1024)
    data = _saved(Image.fromarray(array), "BMP")
    batch = load_images(data, size=(64, 64))
    original = batch.originals[0]
    assert original.shape == (512, 1024, 3)  # long side 1024, aspect kept
    assert batch.array.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(
        original.astype(np.float32) / 255, _reference(array, (512, 1024)), atol=0.02
    )
    small = load_images(_saved(Image.fromarray(_smooth(40, 30)), "PNG"), size=(8, 8))
    assert small.originals[0].shape == (30, 40, 3)  # small images are kept as they are
    big_model = load_images(data, size=(1500, 1500))
    assert max(big_model.originals[0].shape[:2]) == 1500  # not below the model's input


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(orientation, turn):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red, right half blue, top row white
    stored[:, 20:] = (0, 0, 255)
    stored[0] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _saved(Image.fromarray(stored), "PNG", exif=exif)
    upright = np.rot90(stored, k=turn)  # what a viewer shows (90 degrees clockwise is k=-1)
    batch = load_images(data)
    assert batch.array.shape[1:3] == upright.shape[:2]
    np.testing.assert_allclose(batch.array[0], upright / 255.0, atol=1e-6)
    sized = load_images(data, size=(40, 20) if abs(turn) == 1 else (20, 40))
    assert sized.array.shape[1:3] == (upright.shape[0], upright.shape[1])


def test_pil_images_and_damaged_files():
    pil = Image.fromarray(_smooth(40, 30))
    assert load_images(pil, size=(10, 10)).array.shape == (1, 10, 10, 3)
    data = _saved(Image.fromarray(_smooth(200, 200)), "PNG")
    with pytest.raises(InputError, match="damaged or truncated|not an image") as info:
        load_images(data[: len(data) // 2])
    assert "\n" not in str(info.value)
