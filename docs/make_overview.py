"""Draw the README's overview picture: method comparison on the flagship sample model.

EfficientNet-Lite0 with converted ImageNet weights (``imagenet_lite0``) on three of its shipped
photographs (Chelsea the cat, a cup of espresso, a space shuttle), each explained for its
predicted class. Run from the repository root: ``.venv/bin/python docs/make_overview.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

import vizkit

PHOTOS = ("chelsea", "coffee", "space shuttle")


def main() -> None:
    model = vizkit.sample_model("imagenet_lite0")
    photos = vizkit.sample_images("imagenet_lite0")
    picked = [i for i, name in enumerate(photos.names) if name.split(" (")[0] in PHOTOS]
    images = photos[picked]
    comparison = vizkit.explain(
        model, images, method=["saliency", "integrated_gradients", "gradcam", "occlusion"]
    )
    # the default look: gradient maps as heatmaps, CAM and occlusion over the photo in grey;
    # each panel on its own colour scale (the three photos' maps differ in size by 10x), legend
    # under the grid
    fig = comparison.plot(shared_scale="panel")
    out = Path(__file__).parent / "images" / "overview.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90)
    # 256 colours (dithered): a fraction of the size, no visible change at this resolution
    Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        out, optimize=True
    )
    print(out)


if __name__ == "__main__":
    main()
