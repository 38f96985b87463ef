"""Occlusion: slide a patch over the image and record how much the target's score drops.

The map at a pixel is the drop in the target probability (``score="probability"``, the
default; or the logit), averaged over the patches that covered that pixel; pixels no patch
covered get 0. Patches start every ``stride`` pixels from the top-left, and a last row/column of
patches is added flush with the bottom/right edge when the stride does not land there, so every
pixel is covered when ``stride <= patch_size``.

All occluded images (flattened over images and patch positions) go through one compiled forward
function, which loops over ``batch_size`` chunks on-graph with two chunks in flight; the occluded
images are built inside that function from the patch coordinates, so the host never
materializes them. Never ``model.predict`` per image.

Fill values: ``zero`` (0), ``mean`` (each image's per-channel mean) or ``blur`` (the same
image under a Gaussian blur with sigma = patch_size / 2).

The patch is sized to the image unless given: about 1/8 of the shorter side, with a stride of
half that (:func:`default_patch`: 4/2 pixels on 28x28 digits, 8/4 on 64x64, 28/14 on 224x224).
A patch as large as the image is refused: every patch would hide everything and the map would be
constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError
from vizkit.methods.base import (
    CHUNKS_IN_FLIGHT,
    TARGETS,
    Chunk,
    Method,
    common_params,
    first_output,
)
from vizkit.registry import Param, register


def default_patch(height: int, width: int) -> tuple[int, int]:
    """Default ``(patch_size, stride)`` for an image: about 1/8 of the shorter side, and half."""
    patch = max(1, int(min(int(height), int(width)) / 8 + 0.5))
    return patch, max(1, patch // 2)


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) coordinates of the patches along one axis of length ``size``."""
    patch = min(patch, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


@register
class Occlusion(Method):
    """Drop in the target score when a patch of the image is hidden.

    References
    ----------
    Zeiler & Fergus (2014), arXiv:1311.2901.
    """

    name = "occlusion"
    label = "Occlusion"
    reference = (
        "Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, "
        "arXiv:1311.2901"
    )
    family = "perturbation"
    description = """
        Hides one square patch of the image at a time and records how much the target's
        probability drops: red regions are where hiding the image hurts the class most, blue
        ones where hiding it helps. It treats the model as a black box and is easy to explain
        to anyone. Caveats: the patch size sets the resolution and should be smaller than the
        object; the fill (black, mean or blur) can itself look like a feature to the model;
        when the softmax is saturated, hiding a small patch changes nothing (score the logit or
        use larger patches); it costs one forward pass per patch position.
    """
    hyperparameters = (
        Param(
            "patch_size",
            int,
            None,
            label="Patch size",
            help="Side of the square patch, pixels; None: about 1/8 of the image's shorter side",
            min=1,
            max=512,
            step=1,
        ),
        Param(
            "stride",
            int,
            None,
            label="Stride",
            help="Step between patches, pixels; None: half the patch size",
            min=1,
            max=512,
            step=1,
        ),
        Param(
            "fill",
            str,
            "zero",
            label="Fill",
            help="What the patch shows",
            choices=("zero", "mean", "blur"),
        ),
        *common_params(score="probability"),
    )

    def __init__(self, model: keras.Model, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._asked = (self.params["patch_size"], self.params["stride"])
        height, width = self._sig.shape[1:3]
        if height is not None and width is not None:  # known input size: fix the defaults now
            self.params.update(self._patch(int(height), int(width)))

    def _patch(self, height: int, width: int) -> dict[str, int]:
        """``patch_size`` and ``stride`` for ``height`` x ``width`` images (defaults filled in,
        a patch covering the image refused)."""
        auto_patch, _ = default_patch(height, width)
        patch = self._asked[0] or auto_patch
        stride = self._asked[1] or max(1, patch // 2)
        if patch >= min(height, width):
            raise InputError(
                f"occlusion: patch_size={patch} is as large as the {height}x{width} image, so "
                f"every patch hides all of it and the map is constant: use a patch smaller than "
                f"{min(height, width)} pixels (the default for this size is {auto_patch})"
            )
        return {"patch_size": int(patch), "stride": int(stride)}

    def fills(self, x: np.ndarray) -> np.ndarray:
        kind = self.params["fill"]
        if kind == "zero":
            return np.zeros_like(x)
        if kind == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
        from scipy.ndimage import gaussian_filter

        sigma = self.params["patch_size"] / 2.0
        return np.stack(
            [gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest") for img in x]
        ).astype(np.float32)

    def occluded_fn(self) -> Any:
        def build() -> Any:
            model, scoring = self.head_graph(), self.scoring
            i32 = TARGETS

            @tf.function(
                input_signature=[
                    self._sig,
                    self._sig,
                    i32,
                    i32,
                    i32,
                    i32,
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.int32),
                ],
                reduce_retracing=True,
            )
            def occluded(
                x: Any,
                fill: Any,
                image: Any,
                top: Any,
                left: Any,
                targets: Any,
                patch: Any,
                chunk: Any,
            ) -> Any:
                rows = tf.range(tf.shape(x)[1])[None, :]
                cols = tf.range(tf.shape(x)[2])[None, :]
                total = tf.shape(image)[0]
                parts = (total + chunk - 1) // chunk

                def body(i: Any, scores: Any) -> Any:
                    part = tf.range(i * total // parts, (i + 1) * total // parts)
                    t, l_ = tf.gather(top, part), tf.gather(left, part)
                    in_rows = (rows >= t[:, None]) & (rows < t[:, None] + patch)
                    in_cols = (cols >= l_[:, None]) & (cols < l_[:, None] + patch)
                    mask = in_rows[:, :, None] & in_cols[:, None, :]
                    mask = tf.cast(mask, tf.float32)[..., None]
                    which = tf.gather(image, part)
                    images = tf.gather(x, which) * (1.0 - mask) + tf.gather(fill, which) * mask
                    out = tf.cast(first_output(model(images)), tf.float32)
                    return i + 1, scores.write(i, scoring.score(out, tf.gather(targets, part)))

                _, scores = tf.while_loop(
                    lambda i, _: i < parts,
                    body,
                    (tf.constant(0), tf.TensorArray(tf.float32, size=parts, infer_shape=False)),
                    parallel_iterations=CHUNKS_IN_FLIGHT,
                )
                return scores.concat()

            return occluded

        return self.cached(("occlusion",), build)

    def images_per_chunk(self) -> int:
        return max(1, self.batch_size)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        out, targets, base = self.forward(x, targets)
        n, height, width = x.shape[:3]
        self.params.update(self._patch(height, width))
        patch, stride = self.params["patch_size"], self.params["stride"]
        tops, lefts = patch_starts(height, patch, stride), patch_starts(width, patch, stride)
        grid_top, grid_left = np.meshgrid(tops, lefts, indexing="ij")
        positions = len(tops) * len(lefts)
        image = np.repeat(np.arange(n, dtype=np.int32), positions)
        top = np.tile(grid_top.ravel(), n).astype(np.int32)
        left = np.tile(grid_left.ravel(), n).astype(np.int32)
        fn = self.occluded_fn()
        x_t, fill_t = tf.constant(x), tf.constant(self.fills(x))
        size = tf.constant(patch, tf.int32)
        scores = fn(
            x_t,
            fill_t,
            tf.constant(image),
            tf.constant(top),
            tf.constant(left),
            tf.constant(targets[image]),
            size,
            tf.constant(self.forward_batch_size, tf.int32),
        ).numpy()
        drops = (base[image] - scores).astype(np.float64)
        heat = np.zeros((n, height, width), dtype=np.float64)
        count = np.zeros((n, height, width), dtype=np.float64)
        ph, pw = min(patch, height), min(patch, width)
        for i, t, l_, d in zip(image, top, left, drops):
            heat[i, t : t + ph, l_ : l_ + pw] += d
            count[i, t : t + ph, l_ : l_ + pw] += 1.0
        maps = np.where(count > 0, heat / np.maximum(count, 1.0), 0.0).astype(np.float32)
        return Chunk(maps, out, targets, base, {})
