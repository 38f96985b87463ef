"""Draw the README's activation-maximization grid: ImageNet classes of ``imagenet_lite0``.

Run from the repository root: ``.venv/bin/python docs/make_activation_grid.py`` (15-20 minutes on
2 CPU cores: 200 steps of the default 224x224 recipe, 4 augmented views per step, for 8 classes).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

import vizkit

# well-known classes: goldfish, flamingo, daisy, zebra, lemon, honeycomb, strawberry, jellyfish
CLASSES = [1, 130, 985, 340, 951, 599, 949, 107]


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
    fig = Figure(figsize=(10, 6.0), layout="constrained")
    result.plot(
        fig=fig,
        cols=4,
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
