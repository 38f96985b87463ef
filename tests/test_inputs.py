"""Image loading and conversion, and target resolution (vizkit.inputs)."""

from __future__ import annotations

import dataclasses
import io
import pickle

import numpy as np
import pytest
from PIL import Image

from vizkit.errors import InputError
from vizkit.inputs import ImageBatch, as_batch, load_images, resolve_targets


def _saved(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _gradient_rgb(width=20, height=10) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], x[None, ::-1], np.full((1, width), 128)), -1)
    return Image.fromarray(np.repeat(rgb, height, axis=0).astype(np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_file_format_decodes_to_model_shape(tmp_path, fmt):
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(_saved(_gradient_rgb(), fmt))
    batch = load_images(path, size=(8, 16), channels=3)
    assert batch.array.shape == (1, 8, 16, 3)
    assert batch.array.dtype == np.float32
    assert 0.0 <= batch.array.min() and batch.array.max() <= 1.0
    assert batch.originals[0].shape == (10, 20, 3)
    assert batch.names == (path.name,)


def test_gif_takes_the_first_frame():
    frames = [Image.new("L", (4, 4), 0), Image.new("L", (4, 4), 255)]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:])
    batch = load_images(data.getvalue(), channels=1)
    np.testing.assert_allclose(batch.array, 0.0)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (2, 2), 51), 0.2),
        (Image.new("1", (2, 2), 1), 1.0),
        (Image.fromarray(np.full((2, 2), 13107, np.uint16)), 0.2),
        (Image.new("RGBA", (2, 2), (0, 0, 0, 0)), 1.0),  # transparent -> white background
        (Image.new("LA", (2, 2), (0, 255)), 0.0),
        (Image.new("CMYK", (2, 2), (0, 0, 0, 0)), 1.0),
        (Image.new("P", (2, 2), 0), 0.0),
    ],
)
def test_every_mode_converts_to_unit_scale(image, expected):
    batch = load_images(image, channels=1)
    np.testing.assert_allclose(batch.array, expected, atol=2e-3)


def test_rgb_to_gray_uses_luma_and_gray_to_rgb_repeats():
    red = Image.new("RGB", (2, 2), (255, 0, 0))
    np.testing.assert_allclose(load_images(red, channels=1).array, 0.299, atol=1e-6)
    gray = Image.new("L", (2, 2), 255)
    assert load_images(gray, channels=3).array.shape == (1, 2, 2, 3)


def test_resize_uses_model_input_and_value_range_is_applied():
    class FakeModel:  # load_images only reads inputs[0].shape
        class _Input:
            shape = (None, 4, 6, 1)

        inputs = [_Input()]

    batch = load_images(np.full((8, 12), 255, np.uint8), FakeModel(), value_range=(-1.0, 1.0))
    assert batch.array.shape == (1, 4, 6, 1)
    np.testing.assert_allclose(batch.array, 1.0)
    np.testing.assert_allclose(batch.display, 1.0)
    assert batch.value_range == (-1.0, 1.0)


def test_array_shapes_and_float_arrays_are_taken_as_model_ready():
    assert load_images(np.zeros((5, 5))).array.shape == (1, 5, 5, 1)
    assert load_images(np.zeros((5, 5, 3))).array.shape == (1, 5, 5, 3)
    assert load_images(np.zeros((3, 5, 5))).array.shape == (3, 5, 5, 1)
    batch = load_images(np.full((2, 5, 5, 1), 7.5, np.float32), value_range=(0, 10))
    np.testing.assert_allclose(batch.array, 7.5)
    assert batch.names == ("image 0[0]", "image 0[1]")


def test_folder_expands_to_its_images(tmp_path):
    for name in ("b.png", "a.png"):
        (tmp_path / name).write_bytes(_saved(_gradient_rgb(), "PNG"))
    (tmp_path / "notes.txt").write_text("not an image")
    assert load_images(tmp_path, size=(4, 4)).names == ("a.png", "b.png")


def test_bad_inputs_are_one_line_errors(tmp_path):
    text = tmp_path / "x.png"
    text.write_text("hello")
    cases = [
        (lambda: load_images(text), "not an image"),
        (lambda: load_images(tmp_path / "missing.png"), "does not exist"),
        (lambda: load_images([]), "no images"),
        (lambda: load_images(np.zeros((2, 2, 2, 2, 2))), "shape"),
        (lambda: load_images(np.array([[np.nan]])), "NaN"),
        (lambda: load_images([np.zeros((4, 4)), np.zeros((5, 5))]), "different sizes"),
        (lambda: load_images(np.zeros((4, 4)), value_range=(1, 0)), "value_range"),
    ]
    for call, words in cases:
        with pytest.raises(InputError, match=words) as info:
            call()
        assert "\n" not in str(info.value)


def test_truncated_file_is_refused():
    data = _saved(_gradient_rgb(200, 200), "PNG")
    with pytest.raises(InputError, match="damaged or truncated|not an image"):
        load_images(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _saved(Image.new("L", (3000, 3000)), "PNG")  # tiny file, 9 Mpx when decoded
    with pytest.raises(InputError, match="too large|pixels"):
        load_images(bomb, max_pixels=1_000_000)


def test_batch_indexing_pickling_and_as_batch():
    batch = load_images(np.arange(4 * 15, dtype=np.uint8).reshape(4, 3, 5), labels=[0, 1, 2, 3])
    sub = batch[[1, 3]]
    assert isinstance(sub, ImageBatch) and len(sub) == 2
    assert sub.labels.tolist() == [1, 3]
    assert len(batch[0]) == 1
    restored = pickle.loads(pickle.dumps(batch))
    np.testing.assert_array_equal(restored.array, batch.array)
    assert not restored.array.flags.writeable
    np.testing.assert_array_equal(as_batch(batch), batch.array)
    x = np.ones((2, 3, 3, 1), np.float32)
    assert as_batch(x) is x


def test_resolve_targets():
    assert resolve_targets(None, 2, 10, predicted=np.array([4, 5])).tolist() == [4, 5]
    assert resolve_targets(3, 2, 10).tolist() == [3, 3]
    assert resolve_targets([1, 2], 2, 10).tolist() == [1, 2]
    for bad, words in [
        (12, "out of range"),
        ([1], "1 targets given for 2 images"),
        ([0.5, 1.0], "class indices"),
        (True, "class index"),
    ]:
        with pytest.raises(InputError, match=words):
            resolve_targets(bad, 2, 10)
    with pytest.raises(InputError, match="predictions"):
        resolve_targets(None, 2, 10)


def test_image_batch_concat_keeps_order_and_metadata():
    rng = np.random.default_rng(0)

    def batch(n, start, **kw):
        return ImageBatch(
            array=rng.random((n, 4, 4, 3)).astype(np.float32),
            originals=tuple(np.zeros((4, 4, 3), np.uint8) for _ in range(n)),
            names=tuple(f"f{start + i}.png" for i in range(n)),
            labels=np.arange(start, start + n),
            class_names=("a", "b"),
            **kw,
        )

    a, b = batch(2, 0), batch(3, 2)
    both = ImageBatch.concat([a, b])
    assert len(both) == 5 and both.names == tuple(f"f{i}.png" for i in range(5))
    np.testing.assert_array_equal(both.array, np.concatenate([a.array, b.array]))
    np.testing.assert_array_equal(both.labels, np.arange(5))
    assert len(both.originals) == 5 and both.class_names == ("a", "b") and both.masks is None
    np.testing.assert_array_equal(both[3].array, b[1].array)
    unnamed = ImageBatch(array=np.zeros((2, 4, 4, 3), np.float32), class_names=("a", "b"))
    mixed = ImageBatch.concat([a, dataclasses.replace(unnamed, labels=np.array([0, 1]))])
    assert mixed.names[2:] == ("image 2", "image 3") and mixed.originals == ()
    with pytest.raises(InputError, match="some batches have labels"):
        ImageBatch.concat([a, unnamed])
    with pytest.raises(InputError, match="value_range"):
        ImageBatch.concat([a, batch(1, 5, value_range=(0.0, 255.0))])
    with pytest.raises(InputError, match="image shape"):
        ImageBatch.concat([a, ImageBatch(array=np.zeros((1, 5, 5, 3), np.float32))])
    with pytest.raises(InputError, match="non-empty"):
        ImageBatch.concat([])
