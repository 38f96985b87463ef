"""Real photographs for the ImageNet samples, taken from installed packages at build time.

scikit-image (``skimage.data``), scikit-learn (``load_sample_images``) and matplotlib (its
sample data) ship a handful of freely licensed photographs. Each :class:`Photo` names one, the
square crop that frames its main object (resized to 224x224 with PIL's bicubic filter, so the
build is deterministic), its ImageNet class and a hand-drawn outline of that object (polygons,
ellipses and thick lines in the original image's pixel coordinates) from which the
ground-truth mask for the localization metrics (pointing game, relevance mass) is drawn.

Only photographs whose ImageNet class a person would name without hesitation are used:
scikit-learn's ``flower`` (a dahlia: not an ImageNet class), skimage's ``motorcycle`` (ImageNet
has mopeds and scooters only) and its motion-blurred grey ``clock`` are left out. None of the
packages ships a photograph of a dog or a panda.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

SIZE = 224

Shape = tuple[Any, ...]  # ("polygon", points) | ("ellipse", cx, cy, rx, ry) | ("line", points, w)


@dataclasses.dataclass(frozen=True)
class Photo:
    """One bundled photograph: where it comes from, how it is framed and what it shows."""

    name: str
    source: str  # "skimage:<function>", "sklearn:<file>" or "matplotlib:<file>"
    crop: tuple[int, int, int]  # left, top, side (pixels of the original)
    label: int  # ImageNet class index
    accepted: tuple[int, ...]  # ImageNet classes that are also right (for the top-5 check)
    outline: tuple[Shape, ...]
    credit: str

    @property
    def labels(self) -> tuple[int, ...]:
        return (self.label, *self.accepted)


# fmt: off
PHOTOS: tuple[Photo, ...] = (
    Photo(
        name="chelsea",
        source="skimage:chelsea",
        crop=(120, 0, 300),
        label=281,  # tabby
        accepted=(282, 283, 284, 285),  # the other domestic cats
        outline=(
            (
                "polygon",
                [(40, 0), (400, 0), (385, 40), (365, 70), (360, 100), (362, 140), (358, 170),
                 (365, 200), (375, 240), (385, 300), (0, 300), (0, 140), (15, 120), (30, 60),
                 (35, 20)],
            ),
        ),
        credit="scikit-image data.chelsea(): Chelsea the cat, CC0 (Stefan van der Walt)",
    ),
    Photo(
        name="coffee",
        source="skimage:coffee",
        crop=(78, 0, 400),
        label=967,  # espresso
        accepted=(968, 504),  # cup, coffee mug
        outline=(
            ("ellipse", 278, 232, 201, 158),  # saucer
            ("ellipse", 291, 105, 118, 88),  # cup rim
            ("polygon", [(175, 105), (407, 105), (392, 230), (360, 282), (230, 287), (190, 230)]),
            ("polygon", [(400, 72), (415, 62), (426, 74), (410, 140), (395, 140)]),  # spoon
        ),
        credit="scikit-image data.coffee(): courtesy of Pikolo Espresso Bar, CC0 "
        "(Rachel Michetti)",
    ),
    Photo(
        name="rocket",
        source="skimage:rocket",
        crop=(172, 115, 300),
        label=657,  # missile
        accepted=(744, 812),  # projectile, space shuttle
        outline=(
            (
                "polygon",
                [(322, 126), (329, 131), (334, 143), (336, 160), (336, 178), (334, 186),
                 (335, 405), (310, 405), (311, 186), (309, 178), (309, 160), (311, 143),
                 (315, 131)],
            ),
        ),
        credit="scikit-image data.rocket(): DSCOVR on Falcon 9, SpaceX, public domain",
    ),
    Photo(
        name="space shuttle",
        source="skimage:astronaut",
        crop=(310, 30, 202),
        label=812,  # space shuttle
        accepted=(657, 744),  # missile, projectile
        outline=(
            (
                "polygon",
                [(404, 0), (431, 0), (437, 30), (441, 40), (447, 35), (453, 45), (453, 225),
                 (456, 235), (445, 240), (370, 240), (355, 235), (358, 215), (377, 185),
                 (379, 60), (385, 40), (391, 45), (398, 35), (399, 15)],
            ),
        ),
        credit="scikit-image data.astronaut() (the model behind Eileen Collins), NASA, "
        "public domain",
    ),
    Photo(
        name="tripod",
        source="skimage:camera",
        crop=(132, 132, 380),
        label=872,  # tripod
        accepted=(759,),  # reflex camera
        outline=(
            ("polygon", [(252, 138), (326, 138), (332, 184), (254, 184)]),  # camera
            ("polygon", [(274, 182), (332, 182), (330, 202), (276, 202)]),  # head
            ("line", [(292, 200), (292, 486)], 10),  # centre column
            ("line", [(290, 318), (232, 506)], 8),  # legs
            ("line", [(294, 318), (401, 508)], 8),
            ("line", [(298, 322), (338, 303)], 6),  # pan handle
        ),
        credit="scikit-image data.camera(), CC0 (Lav Varshney)",
    ),
    Photo(
        name="palace",
        source="sklearn:china.jpg",
        crop=(20, 20, 380),
        label=698,  # palace
        accepted=(442, 663, 832),  # bell cote, monastery, stupa
        outline=(
            (
                "polygon",
                [(200, 28), (212, 28), (212, 55), (240, 75), (275, 95), (320, 118), (322, 128),
                 (295, 135), (300, 160), (330, 172), (330, 185), (318, 192), (320, 230),
                 (345, 245), (352, 258), (340, 270), (340, 300), (350, 315), (372, 330),
                 (372, 345), (355, 360), (340, 385), (310, 400), (230, 395), (200, 370),
                 (150, 345), (75, 340), (75, 290), (80, 280), (62, 270), (62, 250), (95, 240),
                 (100, 200), (85, 185), (85, 170), (115, 160), (120, 135), (95, 125), (95, 110),
                 (150, 95), (185, 70), (198, 55)],
            ),
        ),
        credit="scikit-learn load_sample_images() china.jpg: danielbuechele, CC BY 2.0",
    ),
    Photo(
        name="grace hopper",
        source="matplotlib:grace_hopper.jpg",
        crop=(0, 20, 512),
        label=652,  # military uniform
        accepted=(),
        outline=(
            (
                "polygon",
                [(180, 85), (210, 40), (255, 24), (300, 33), (345, 68), (368, 100), (370, 170),
                 (362, 240), (345, 290), (330, 318), (380, 340), (450, 365), (495, 385),
                 (512, 430), (512, 600), (15, 600), (25, 420), (45, 375), (100, 350),
                 (175, 325), (160, 290), (150, 240), (152, 180), (150, 120)],
            ),
        ),
        credit="matplotlib sample data grace_hopper.jpg: Rear Admiral Grace Hopper, US Navy, "
        "public domain",
    ),
)
# fmt: on


def load_source(source: str) -> np.ndarray:
    """The original photograph as uint8 RGB ``(H, W, 3)``, from the package that ships it."""
    kind, _, name = source.partition(":")
    if kind == "skimage":
        import skimage.data

        image = getattr(skimage.data, name)()
    elif kind == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(name)
    elif kind == "matplotlib":
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data(name) as handle, Image.open(handle) as opened:
            image = np.asarray(opened.convert("RGB"))
    else:
        raise ValueError(f"unknown photo source {source!r}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def outline_mask(shape: tuple[int, int], outline: tuple[Shape, ...]) -> np.ndarray:
    """Draw ``outline`` filled on a ``(H, W)`` canvas: bool mask at the original resolution."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for part in outline:
        if part[0] == "polygon":
            draw.polygon([tuple(p) for p in part[1]], fill=255)
        elif part[0] == "ellipse":
            _, cx, cy, rx, ry = part
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
        elif part[0] == "line":
            draw.line([tuple(p) for p in part[1]], fill=255, width=part[2])
        else:
            raise ValueError(f"unknown outline part {part[0]!r}")
    return np.asarray(canvas) > 127


def frame(image: np.ndarray, mask: np.ndarray, crop: tuple[int, int, int]) -> tuple[Any, Any]:
    """Crop the square ``crop`` and resize to 224x224: image float32 0-255, mask bool."""
    from PIL import Image

    left, top, side = crop
    height, width = image.shape[:2]
    if left < 0 or top < 0 or left + side > width or top + side > height:
        raise ValueError(f"crop {crop} does not fit a {width}x{height} photograph")
    box = (left, top, left + side, top + side)
    picture = Image.fromarray(image).crop(box).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    outline = Image.fromarray(mask.astype(np.uint8) * 255).crop(box)
    outline = outline.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.float32), np.asarray(outline) > 127


@dataclasses.dataclass(frozen=True)
class PhotoSet:
    """The framed photographs: ``images`` ``(N, 224, 224, 3)`` float32 in [0, 255], ``masks``
    ``(N, 224, 224)`` bool, ImageNet ``labels`` ``(N,)`` and display ``names``."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    photos: tuple[Photo, ...]


def load_photos(photos: tuple[Photo, ...] = PHOTOS) -> PhotoSet:
    """Load, frame and outline ``photos`` (about a second)."""
    images, masks = [], []
    for photo in photos:
        original = load_source(photo.source)
        mask = outline_mask(original.shape[:2], photo.outline)
        image, framed = frame(original, mask, photo.crop)
        images.append(image)
        masks.append(framed)
    return PhotoSet(
        images=np.stack(images),
        masks=np.stack(masks),
        labels=np.array([p.label for p in photos], dtype=np.int64),
        names=tuple(p.name for p in photos),
        photos=tuple(photos),
    )
