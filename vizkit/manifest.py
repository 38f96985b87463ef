"""What the command line must know about the attribution methods without importing TensorFlow.

The registry (:mod:`vizkit.registry`) is the source of method facts, but filling it imports the
method modules and so TensorFlow (several seconds). ``vizkit methods`` and the CLI's argument
checks read this static copy instead: names, labels, whether a method uses a layer, and its
paper. ``tests/test_manifest.py`` fails when it differs from the registry;
regenerate it with::

    python -m vizkit.manifest

No TensorFlow here (and nothing that imports it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """One method as the command line sees it."""

    name: str
    label: str
    needs_layer: bool
    reference: str


# BEGIN GENERATED (python -m vizkit.manifest)
METHODS: tuple[MethodEntry, ...] = (
    MethodEntry(
        name="gradcam",
        label="Grad-CAM",
        needs_layer=True,
        reference="Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391",
    ),
    MethodEntry(
        name="gradcam_pp",
        label="Grad-CAM++",
        needs_layer=True,
        reference="Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks, WACV, arXiv:1710.11063",
    ),
    MethodEntry(
        name="layercam",
        label="LayerCAM",
        needs_layer=True,
        reference="Jiang, Zhang, Hou, Cheng & Wei (2021), LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 30",
    ),
    MethodEntry(
        name="guided_gradcam",
        label="Guided Grad-CAM",
        needs_layer=True,
        reference="Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391",
    ),
    MethodEntry(
        name="scorecam",
        label="Score-CAM",
        needs_layer=True,
        reference="Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279",
    ),
    MethodEntry(
        name="faster_scorecam",
        label="Faster Score-CAM",
        needs_layer=True,
        reference="Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279; Faster Score-CAM: https://github.com/tabayashi0117/Score-CAM",
    ),
    MethodEntry(
        name="occlusion",
        label="Occlusion",
        needs_layer=False,
        reference="Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, arXiv:1311.2901",
    ),
    MethodEntry(
        name="saliency",
        label="Saliency (vanilla gradient)",
        needs_layer=False,
        reference="Simonyan, Vedaldi & Zisserman (2014), Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps, arXiv:1312.6034",
    ),
    MethodEntry(
        name="smoothgrad",
        label="SmoothGrad",
        needs_layer=False,
        reference="Smilkov, Thorat, Kim, Viegas & Wattenberg (2017), SmoothGrad: removing noise by adding noise, arXiv:1706.03825",
    ),
    MethodEntry(
        name="gradient_x_input",
        label="Gradient x input",
        needs_layer=False,
        reference="Shrikumar, Greenside, Shcherbina & Kundaje (2016), Not Just a Black Box: Learning Important Features Through Propagating Activation Differences, arXiv:1605.01713",
    ),
    MethodEntry(
        name="integrated_gradients",
        label="Integrated gradients",
        needs_layer=False,
        reference="Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML, arXiv:1703.01365",
    ),
    MethodEntry(
        name="guided_backprop",
        label="Guided backpropagation",
        needs_layer=False,
        reference="Springenberg, Dosovitskiy, Brox & Riedmiller (2015), Striving for Simplicity: The All Convolutional Net, arXiv:1412.6806",
    ),
    MethodEntry(
        name="rectified_backprop",
        label="Rectified backpropagation (DeconvNet)",
        needs_layer=False,
        reference="Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, arXiv:1311.2901",
    ),
    MethodEntry(
        name="eigencam",
        label="EigenCAM",
        needs_layer=True,
        reference="Muhammad & Yeasin (2020), Eigen-CAM: Class Activation Map using Principal Components, IJCNN, arXiv:2008.00299",
    ),
    MethodEntry(
        name="hirescam",
        label="HiResCAM",
        needs_layer=True,
        reference="Draelos & Carin (2020), Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural networks, arXiv:2011.08891",
    ),
)
# END GENERATED


def method_names() -> list[str]:
    """Names of the registered attribution methods, in registration order."""
    return [entry.name for entry in METHODS]


def method_entry(name: str) -> MethodEntry:
    """The entry for ``name``; a one-line error lists the valid names."""
    for entry in METHODS:
        if entry.name == name:
            return entry
    from vizkit.errors import InputError

    raise InputError(f"unknown method {name!r}: choose one of {', '.join(method_names())}")


def from_registry() -> tuple[MethodEntry, ...]:
    """The entries as the registry has them (imports the methods, hence TensorFlow)."""
    from vizkit.registry import available_methods, get_method

    entries = []
    for name in available_methods():
        info = get_method(name)
        entries.append(
            MethodEntry(
                name=name,
                label=info.label,
                needs_layer=bool(info.needs_layer),
                reference=info.reference,
            )
        )
    return tuple(entries)


def render(entries: tuple[MethodEntry, ...]) -> str:
    """The generated block of this file for ``entries``."""
    lines = ["METHODS: tuple[MethodEntry, ...] = ("]
    for e in entries:
        lines += [
            "    MethodEntry(",
            f"        name={e.name!r},",
            f"        label={e.label!r},",
            f"        needs_layer={e.needs_layer!r},",
            f"        reference={e.reference!r},",
            "    ),",
        ]
    lines.append(")")
    return "\n".join(lines)


def write(path: Path | None = None) -> Path:
    """Rewrite the generated block of this module from the registry."""
    path = Path(__file__) if path is None else Path(path)
    text = path.read_text(encoding="utf-8")
    begin = "# BEGIN GENERATED (python -m vizkit.manifest)\n"
    end = "# END GENERATED"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(head + begin + render(from_registry()) + "\n" + end + tail, encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write())
