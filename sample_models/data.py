"""Seeded, offline datasets for the sample models.

Two sources, both numpy-only (no TensorFlow, no network by default):

- **digits**: scikit-learn's bundled handwritten digits (1,797 8x8 images, values 0..16),
  upsampled bilinearly to 20x20 and centred in a 28x28 frame with a 4-pixel border, the framing
  of MNIST. Training images get small random shifts. ``source="mnist"`` reads real MNIST through
  ``keras.datasets.mnist`` instead (downloads once; never the default).
- **shapes**: generated 64x64 RGB images of one bright circle, square or triangle on a darker
  cluttered background (colour gradients, soft blobs, thin lines, pixel noise), with the exact
  boolean mask of the object. Object colour (any hue), area, position and rotation are drawn from
  the same distributions for every class, and the clutter is drawn independently of the class,
  so the object's outline is the only evidence of the label. (The object is kept brighter than
  the clutter: with fully random colours a small CNN needs many times the training budget.)

Every array is a pure function of ``seed``: the same seed gives bit-identical arrays.
Images are channels-last float32 in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

DIGIT_CLASSES = tuple(str(d) for d in range(10))
SHAPE_CLASSES = ("circle", "square", "triangle")
DIGITS_SIZE = 28
SHAPES_SIZE = 64

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes
    ----------
    x : ndarray, shape (N, H, W, C), float32
        Images in [0, 1].
    y : ndarray, shape (N,), int64
        Class indices.
    masks : ndarray, shape (N, H, W), bool, optional
        Ground-truth object masks (shapes only).
    """

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.y))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits plus a description of where they came from."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    origin: str
    source: str
    preprocessing: str


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------
def _upsample_digits(images: np.ndarray, inner: int = 20, size: int = DIGITS_SIZE) -> np.ndarray:
    """8x8 images in [0, 1] -> ``(N, size, size)``: bilinear to ``inner``, centred in the frame."""
    from PIL import Image

    pad = (size - inner) // 2
    out = np.zeros((len(images), size, size), dtype=np.float32)
    for i, image in enumerate(images):
        big = Image.fromarray(image.astype(np.float32), mode="F").resize(
            (inner, inner), Image.Resampling.BILINEAR
        )
        out[i, pad : pad + inner, pad : pad + inner] = np.asarray(big)
    return np.clip(out, 0.0, 1.0)


def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Shift each image by whole pixels, filling uncovered pixels with 0.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
    dy, dx : ndarray of int, shape (N,)
        Shift down / right (negative: up / left).

    Returns
    -------
    ndarray, shape (N, H, W, C), same dtype as ``x``
    """
    out = np.zeros_like(x)
    height, width = x.shape[1:3]
    for i, (sy, sx) in enumerate(zip(np.asarray(dy, int), np.asarray(dx, int))):
        src_y = slice(max(0, -sy), min(height, height - sy))
        dst_y = slice(max(0, sy), min(height, height + sy))
        src_x = slice(max(0, -sx), min(width, width - sx))
        dst_x = slice(max(0, sx), min(width, width + sx))
        out[i, dst_y, dst_x] = x[i, src_y, src_x]
    return out


def augment_shifts(
    x: np.ndarray, y: np.ndarray, *, copies: int, max_shift: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The originals plus ``copies`` randomly shifted copies, shuffled.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
    y : ndarray, shape (N,)
    copies : int
        Shifted copies of every image to add.
    max_shift : int
        Largest shift in pixels along each axis.
    seed : int

    Returns
    -------
    x, y : ndarrays with ``N * (copies + 1)`` rows
    """
    rng = np.random.default_rng([seed, 101])
    xs, ys = [x], [y]
    for _ in range(copies):
        dy = rng.integers(-max_shift, max_shift + 1, size=len(x))
        dx = rng.integers(-max_shift, max_shift + 1, size=len(x))
        xs.append(shift_images(x, dy, dx))
        ys.append(y)
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y_all))
    return x_all[order], y_all[order]


def _stratified_split(
    y: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train / val / test with per-class fractions ``(val, test)``."""
    rng = np.random.default_rng([seed, 202])
    train, val, test = [], [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * fractions[1]))
        n_val = int(round(len(idx) * fractions[0]))
        test.append(idx[:n_test])
        val.append(idx[n_test : n_test + n_val])
        train.append(idx[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))  # type: ignore[return-value]


def digits_dataset(
    seed: int = 0,
    *,
    source: str = "sklearn",
    copies: int = 2,
    max_shift: int = 2,
    mnist_train_limit: int = 20_000,
) -> Dataset:
    """Handwritten digits as 28x28x1 float32 images in [0, 1].

    Parameters
    ----------
    seed : int
        Fixes the split and the augmentation.
    source : {"sklearn", "mnist"}
        ``"sklearn"`` (default, offline): scikit-learn's bundled 8x8 digits, upsampled; 25 % of
        each class is held out for test and 10 % for validation. ``"mnist"``: real MNIST from
        ``keras.datasets.mnist`` (downloads about 11 MB on first use); the first
        ``mnist_train_limit`` training images (5,000 of the rest for validation) and the full
        10,000-image test set.
    copies, max_shift : int
        Shift augmentation of the training split (``copies`` shifted copies per image, up to
        ``max_shift`` pixels each way).
    mnist_train_limit : int
        Training images taken from MNIST (keeps the build short).

    Returns
    -------
    Dataset
    """
    if source == "sklearn":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = _upsample_digits(bunch.images / 16.0)[..., None]
        y = bunch.target.astype(np.int64)
        train, val, test = _stratified_split(y, (0.10, 0.25), seed)
        origin = (
            "scikit-learn load_digits (UCI ML optical recognition of handwritten digits: "
            "1,797 8x8 images, values 0..16)"
        )
        preprocessing = (
            "grayscale float32 in [0, 1]: the 8x8 image divided by 16, resized bilinearly to "
            "20x20 and centred in a 28x28 black frame (MNIST framing); white digit on black"
        )
        x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
        x_test, y_test = x[test], y[test]
    elif source == "mnist":
        from vizkit._tf import keras

        try:
            (x_tr, y_tr), (x_te, y_te) = keras.datasets.mnist.load_data()
        except Exception as err:  # no network, proxy, corrupt cache, ...
            reason = " ".join(str(err).split())[:200]
            raise OSError(
                f"MNIST could not be downloaded ({type(err).__name__}: {reason}); build without "
                "--mnist to use scikit-learn's bundled digits"
            ) from err
        x_tr = (x_tr.astype(np.float32) / 255.0)[..., None]
        x_te = (x_te.astype(np.float32) / 255.0)[..., None]
        x_train, y_train = x_tr[:mnist_train_limit], y_tr[:mnist_train_limit].astype(np.int64)
        x_val, y_val = x_tr[-5000:], y_tr[-5000:].astype(np.int64)
        x_test, y_test = x_te, y_te.astype(np.int64)
        origin = f"MNIST via keras.datasets.mnist ({len(x_train):,} training images used)"
        preprocessing = "grayscale float32 in [0, 1]: 8-bit value / 255; white digit on black"
    else:
        raise ValueError(f"digits source {source!r} is unknown: use 'sklearn' or 'mnist'")
    if copies:
        x_train, y_train = augment_shifts(
            x_train, y_train, copies=copies, max_shift=max_shift, seed=seed
        )
        preprocessing += f"; training images shifted by up to {max_shift} px ({copies} copies)"
    return Dataset(
        train=Split(x_train.astype(np.float32), y_train),
        val=Split(x_val.astype(np.float32), y_val),
        test=Split(x_test.astype(np.float32), y_test),
        class_names=DIGIT_CLASSES,
        origin=origin,
        source=source,
        preprocessing=preprocessing,
    )


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------
_AREA_ROOT = (13.0, 26.0)  # sqrt(object area) in pixels, same range for every class
_CIRCUMRADIUS = 2.0 / math.sqrt(3.0 * math.sqrt(3.0))  # triangle's, per unit sqrt(area)


def _dark_colour(rng: np.random.Generator, top: float) -> np.ndarray:
    """A background or clutter colour: each channel uniform in ``[0, top]``."""
    return rng.uniform(0.0, top, size=3)


def _bright_colour(rng: np.random.Generator) -> np.ndarray:
    """An object colour: any hue, brightest channel in [0.8, 1] (above all clutter)."""
    colour = rng.uniform(0.1, 1.0, size=3)
    return colour / colour.max() * rng.uniform(0.8, 1.0)


def _polygon_mask(
    xx: np.ndarray, yy: np.ndarray, vertices: list[tuple[float, float]]
) -> np.ndarray:
    """Pixels whose centres lie inside a convex polygon with counter-clockwise vertices."""
    inside = np.ones(xx.shape, dtype=bool)
    for k, (x0, y0) in enumerate(vertices):
        x1, y1 = vertices[(k + 1) % len(vertices)]
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def shape_mask(
    label: int, cx: float, cy: float, area_root: float, angle: float, size: int = SHAPES_SIZE
) -> np.ndarray:
    """The exact ``(size, size)`` boolean mask of one shape (pixel centres inside the outline).

    Parameters
    ----------
    label : int
        Index into :data:`SHAPE_CLASSES`.
    cx, cy : float
        Centre in pixels (x right, y down; pixel ``(i, j)`` has centre ``(j + 0.5, i + 0.5)``).
    area_root : float
        Square root of the shape's area in pixels (equal areas across classes).
    angle : float
        Rotation in radians.
    size : int
        Image side.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    name = SHAPE_CLASSES[label]
    if name == "circle":
        radius = area_root / math.sqrt(math.pi)
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    if name == "square":
        sides, radius, offset = 4, area_root / math.sqrt(2.0), math.pi / 4
    elif name == "triangle":
        sides, radius, offset = 3, area_root * _CIRCUMRADIUS, -math.pi / 2
    else:  # pragma: no cover - guarded by SHAPE_CLASSES
        raise ValueError(f"unknown shape label {label}")
    vertices = [
        (
            cx + radius * math.cos(angle + offset + 2 * math.pi * k / sides),
            cy + radius * math.sin(angle + offset + 2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]
    return _polygon_mask(xx, yy, vertices)


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A dark colour gradient plus soft anisotropic blobs, and the ``(x, y)`` pixel-centre grid."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    c0, c1 = _dark_colour(rng, 0.45), _dark_colour(rng, 0.45)
    theta = rng.uniform(0, 2 * math.pi)
    t = ((xx - size / 2) * math.cos(theta) + (yy - size / 2) * math.sin(theta)) / size + 0.5
    t = np.clip(t, 0.0, 1.0)[..., None]
    image = c0 * (1 - t) + c1 * t
    for _ in range(int(rng.integers(1, 5))):
        mx, my = rng.uniform(0, size, size=2)
        s1, s2 = rng.uniform(3.0, 14.0, size=2)
        phi = rng.uniform(0, math.pi)
        u = (xx - mx) * math.cos(phi) + (yy - my) * math.sin(phi)
        v = -(xx - mx) * math.sin(phi) + (yy - my) * math.cos(phi)
        g = np.exp(-0.5 * ((u / s1) ** 2 + (v / s2) ** 2))[..., None] * rng.uniform(0.3, 0.8)
        image = image * (1 - g) + _dark_colour(rng, 0.6) * g
    return image, np.stack([xx, yy])


def _segment_mask(
    grid: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float
) -> np.ndarray:
    """Pixels whose centres lie within ``half_width`` of the segment ``p0``-``p1``."""
    xx, yy = grid
    d = p1 - p0
    length2 = float(d @ d) or 1e-9
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / length2, 0.0, 1.0)
    return (xx - p0[0] - t * d[0]) ** 2 + (yy - p0[1] - t * d[1]) ** 2 <= half_width**2


def render_shape(
    label: int, rng: np.random.Generator, size: int = SHAPES_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """One cluttered image of shape ``label`` and its mask.

    Parameters
    ----------
    label : int
        Index into :data:`SHAPE_CLASSES`.
    rng : numpy.random.Generator
    size : int

    Returns
    -------
    image : ndarray, shape (size, size, 3), float32 in [0, 1]
    mask : ndarray, shape (size, size), bool
        Exactly the pixels painted with the object's colour (before pixel noise).
    """
    image, grid = _background(rng, size)
    area_root = rng.uniform(*_AREA_ROOT)
    margin = area_root * _CIRCUMRADIUS + 1.0  # the widest class sets the margin for all
    cx, cy = rng.uniform(margin, size - margin, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    mask = shape_mask(label, cx, cy, area_root, angle, size)
    colour = _bright_colour(rng)
    for _ in range(int(rng.integers(2, 7))):  # distractor lines, drawn below the object
        p0, p1 = rng.uniform(-8, size + 8, size=(2, 2))
        line = _segment_mask(grid, p0, p1, rng.uniform(0.5, 1.5))
        image[line] = _dark_colour(rng, 0.5)
    image[mask] = colour
    image = image + rng.normal(0.0, rng.uniform(0.01, 0.05), size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), mask


def shapes_split(n: int, seed: int = 0, split: str = "train", size: int = SHAPES_SIZE) -> Split:
    """``n`` shape images with balanced classes and their masks.

    Image ``i`` has class ``i % 3`` and depends only on ``(seed, split, i)``, so a longer split
    starts with the images of a shorter one (shuffle before training).

    Parameters
    ----------
    n : int
    seed : int
    split : {"train", "val", "test"}
        Independent random streams for each split.
    size : int

    Returns
    -------
    Split
        ``x`` ``(n, size, size, 3)`` float32, ``y`` ``(n,)`` int64, ``masks`` ``(n, size, size)``.
    """
    code = _SPLIT_CODES[split]
    labels = np.arange(n, dtype=np.int64) % len(SHAPE_CLASSES)  # balanced, prefix-stable
    x = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        x[i], masks[i] = render_shape(int(labels[i]), np.random.default_rng([seed, code, i]), size)
    return Split(x, labels, masks)


def shapes_dataset(
    seed: int = 0, *, n_train: int = 3000, n_val: int = 300, n_test: int = 600
) -> Dataset:
    """The shapes dataset: independent train, validation and test splits.

    Parameters
    ----------
    seed : int
    n_train, n_val, n_test : int
        Split sizes (classes are balanced within one image).

    Returns
    -------
    Dataset
    """
    return Dataset(
        train=shapes_split(n_train, seed, "train"),
        val=shapes_split(n_val, seed, "val"),
        test=shapes_split(n_test, seed, "test"),
        class_names=SHAPE_CLASSES,
        origin=(
            "generated by sample_models.data.shapes_dataset: one bright circle, square or "
            "triangle of random hue, area, position and rotation on a darker cluttered "
            "background (colour gradient, soft blobs, thin lines, pixel noise), with exact "
            "object masks"
        ),
        source="generated",
        preprocessing="RGB float32 in [0, 1] (8-bit value / 255); no mean subtraction",
    )
