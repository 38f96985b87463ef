"""Draw the README's activation-maximization grid: ImageNet classes of ``imagenet_lite0``.

Run from the repository root: ``.venv/bin/python docs/make_activation_grid.py`` (about 5 minutes
on 2 CPU cores: 200 steps of the default recipe for 12 classes in one batch).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

import vizkit

# well-known classes: goldfish, flamingo, tarantula, daisy, jellyfish, lemon, and more
CLASSES = [1, 130, 76, 985, 107, 951, 323, 949, 301, 84, 953, 779]


def main() -> None:
    model = vizkit.sample_model("imagenet_lite0")
    metadata = vizkit.sample_metadata("imagenet_lite0")
    result = vizkit.maximize_activation(
        model,
        units=CLASSES,
        value_range=tuple(metadata["value_range"]),
        class_names=vizkit.imagenet_class_names(),
        seed=0,
    )
    fig = Figure(figsize=(12, 6.6), layout="constrained")
    result.plot(
        fig=fig,
        cols=6,
        title=f"imagenet_lite0: activation maximization of class logits ({result.steps} steps, "
        "default recipe, seed 0)",
    )
    out = Path(__file__).parent / "images" / "activation_max_imagenet.png"
    fig.savefig(out, dpi=100)
    from PIL import Image

    with Image.open(out) as drawn:  # 256 colours: a third of the size, no visible change
        quantized = drawn.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    quantized.save(out, optimize=True)
    print(out, [f"{label}: {value:.1f}" for label, value in zip(result.labels, result.activation)])


if __name__ == "__main__":
    main()
