"""Draw the README's overview picture: method comparison on the shapes sample model.

Run from the repository root: ``.venv/bin/python docs/make_overview.py``.
"""

from __future__ import annotations

from pathlib import Path

import vizkit


def main() -> None:
    model = vizkit.sample_model("shapes_vgg")
    images = vizkit.sample_images("shapes_vgg")[[0, 1, 2]]
    comparison = vizkit.explain(
        model, images, method=["saliency", "integrated_gradients", "gradcam", "occlusion"]
    )
    # the default look: gradient maps as heatmaps, CAM and occlusion over the photo in grey,
    # one colour scale per method (colour bars in the maps' units), legend under the grid
    fig = comparison.plot(shared_scale="method")
    out = Path(__file__).parent / "images" / "overview.png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
