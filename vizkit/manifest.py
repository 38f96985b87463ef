"""What the command line must know about methods and metrics without importing TensorFlow.

The registry (:mod:`vizkit.registry`) and :func:`vizkit.metrics.metric_info` are the sources of
method and metric facts, but reading them imports the method modules and so TensorFlow (several
seconds). ``vizkit methods`` and the CLI's argument checks read this static copy instead: names,
labels, families, whether a method uses a layer, the plain-language descriptions and the papers.

The block between the GENERATED markers is written by::

    python -m vizkit.manifest            # rewrite it from the registry
    python -m vizkit.manifest --check    # exit 1, naming what differs, when it is stale

``make lint`` runs the check and ``tests/test_cli_checks.py`` fails with the same message, so
a new or changed method or metric is one command away from a passing build.

No TensorFlow here (and nothing that imports it).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from vizkit.registry import reference_url


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """One method as the command line sees it (see :class:`vizkit.registry.MethodInfo`)."""

    name: str
    label: str
    family: str
    needs_layer: bool
    reference: str
    description: str

    @property
    def url(self) -> str | None:
        """The paper's address, from :attr:`reference`."""
        return reference_url(self.reference)


@dataclasses.dataclass(frozen=True)
class MetricEntry:
    """One metric as the command line sees it (see :class:`vizkit.metrics.MetricInfo`)."""

    name: str
    label: str
    reference: str
    description: str
    better: str

    @property
    def url(self) -> str | None:
        """The paper's address, from :attr:`reference`."""
        return reference_url(self.reference)


# BEGIN GENERATED (python -m vizkit.manifest)
# fmt: off
METHODS: tuple[MethodEntry, ...] = (
    MethodEntry(
        name='gradcam',
        label='Grad-CAM',
        family='cam',
        needs_layer=True,
        reference='Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391',
        description="Weights each channel of a convolutional layer by the average gradient of the class score, sums the channels and keeps the positive part: a coarse heat map of the regions that raise the class score. Bright regions carry positive evidence for the class at the chosen layer; the map has the layer's resolution, upsampled (blocky on deep layers). The last convolutional layer gives the most class-specific map, earlier layers sharper but less specific maps. Caveat: a blank map means no positive evidence at this layer (or a saturated softmax: explain the logit).",
    ),
    MethodEntry(
        name='gradcam_pp',
        label='Grad-CAM++',
        family='cam',
        needs_layer=True,
        reference='Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks, WACV, arXiv:1710.11063',
        description="Grad-CAM with weights from higher-order gradients, meant to cover several objects of a class and more of each object than Grad-CAM. Bright regions carry positive evidence for the class at the chosen layer; the map has the layer's resolution, upsampled (blocky on deep layers). The last convolutional layer gives the most class-specific map, earlier layers sharper but less specific maps. Caveat: its weights assume an exponential score; in practice its maps are often close to Grad-CAM's, and as coarse.",
    ),
    MethodEntry(
        name='layercam',
        label='LayerCAM',
        family='cam',
        needs_layer=True,
        reference='Jiang, Zhang, Hou, Cheng & Wei (2021), LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 30, https://ieeexplore.ieee.org/document/9462463',
        description="Weights every activation by its own positive gradient, location by location (Grad-CAM uses one weight per channel), and sums the channels: finer maps than Grad-CAM at earlier layers, where Grad-CAM gets noisy. Bright regions carry positive evidence for the class at the chosen layer; the map has the layer's resolution, upsampled (blocky on deep layers). The last convolutional layer gives the most class-specific map, earlier layers sharper but less specific maps. Caveat: at the last layer it is close to Grad-CAM.",
    ),
    MethodEntry(
        name='guided_gradcam',
        label='Guided Grad-CAM',
        family='cam',
        needs_layer=True,
        reference='Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391',
        description="Guided backpropagation multiplied by the upsampled Grad-CAM map: fine image detail, restricted to the regions Grad-CAM finds for the class. Caveats: inside those regions it inherits guided backpropagation's weak sensitivity to the class and the model's weights (Adebayo et al., 2018), and outside them Grad-CAM's coarse region.",
    ),
    MethodEntry(
        name='scorecam',
        label='Score-CAM',
        family='score-cam',
        needs_layer=True,
        reference='Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279',
        description='Masks the image with each channel of a layer (upsampled and scaled to 0-1) and weighs the channel by the target\'s probability on the masked image; no gradients. Bright regions are those whose visibility alone keeps the class probable. It needs one forward pass per channel, so it is slow on wide layers. Caveat: it explains classes the model believes in. For a class that keeps a near-zero probability on every masked image, every weight is near zero and the map is blank or nearly so; a blank map then says "no part of the image alone makes this class likely", not "no evidence".',
    ),
    MethodEntry(
        name='faster_scorecam',
        label='Faster Score-CAM',
        family='score-cam',
        needs_layer=True,
        reference='Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279; Faster Score-CAM: https://github.com/tabayashi0117/Score-CAM',
        description='Score-CAM on only the channels with the most spatial variation in each image (max_n), for a fraction of the cost. Read it like Score-CAM; it can miss regions that only the skipped channels cover. Caveat: it explains classes the model believes in. For a class that keeps a near-zero probability on every masked image, every weight is near zero and the map is blank or nearly so; a blank map then says "no part of the image alone makes this class likely", not "no evidence".',
    ),
    MethodEntry(
        name='occlusion',
        label='Occlusion',
        family='perturbation',
        needs_layer=False,
        reference='Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, arXiv:1311.2901',
        description="Hides one square patch of the image at a time and records how much the target's probability drops: red regions are where hiding the image hurts the class most, blue ones where hiding it helps. It treats the model as a black box and is easy to explain to anyone. Caveats: the patch size sets the resolution and should be smaller than the object; the fill (black, mean or blur) can itself look like a feature to the model; when the softmax is saturated, hiding a small patch changes nothing (score the logit or use larger patches); it costs one forward pass per patch position.",
    ),
    MethodEntry(
        name='saliency',
        label='Saliency (vanilla gradient)',
        family='gradient',
        needs_layer=False,
        reference='Simonyan, Vedaldi & Zisserman (2014), Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps, arXiv:1312.6034',
        description='The gradient of the class score with respect to each pixel: how much a tiny change of that pixel would move the score. With the default channel sum the map is signed: red pixels would raise the score if brightened, blue ones lower it. Read it as a sensitivity map, not as what the model relies on. Caveats: speckled on real photos, vanishes when a softmax saturates (explain the logit), and it can look alike for every class and even for a randomized model; check it with the sanity checks.',
    ),
    MethodEntry(
        name='smoothgrad',
        label='SmoothGrad',
        family='gradient',
        needs_layer=False,
        reference='Smilkov, Thorat, Kim, Viegas & Wattenberg (2017), SmoothGrad: removing noise by adding noise, arXiv:1706.03825',
        description="Saliency averaged over many noisy copies of the image: the speckle cancels out and the regions the gradient consistently points at remain. Read it like saliency (red raises the score, blue lowers it). Caveats: the noise level changes the picture (too little leaves speckle, too much blurs everything); it costs one gradient pass per sample; it keeps saliency's weak sensitivity to the class.",
    ),
    MethodEntry(
        name='gradient_x_input',
        label='Gradient x input',
        family='gradient',
        needs_layer=False,
        reference='Shrikumar, Greenside, Shcherbina & Kundaje (2016), Not Just a Black Box: Learning Important Features Through Propagating Activation Differences, arXiv:1605.01713',
        description="The gradient times the pixel value, summed over colour channels: a first-order estimate of each pixel's contribution to the score compared with a zero image. Red pixels push the score up, blue ones pull it down. Caveats: pixels whose value is zero get nothing whatever their importance, so the map depends on the input scale (black is zero on a 0-1 scale but not on a -1-1 scale); as noisy as the gradient.",
    ),
    MethodEntry(
        name='integrated_gradients',
        label='Integrated gradients',
        family='gradient',
        needs_layer=False,
        reference='Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML, arXiv:1703.01365',
        description="Gradients averaged along a straight path from a baseline image (black, or a blurred copy) to the image, times the difference from the baseline. The map adds up to the score's change from the baseline to the image, so its values are in score units: red pixels raise the score relative to the baseline, blue ones lower it. Caveats: the picture depends on the baseline (a black baseline gives nothing to black regions); too few steps break the sum; it costs one gradient pass per step.",
    ),
    MethodEntry(
        name='guided_backprop',
        label='Guided backpropagation',
        family='gradient',
        needs_layer=False,
        reference='Springenberg, Dosovitskiy, Brox & Riedmiller (2015), Striving for Simplicity: The All Convolutional Net, arXiv:1412.6806',
        description="A gradient in which every ReLU lets only positive signals flow back, which gives sharp, edge-like pictures of the image structures that excite the network. Caveat: such maps reconstruct the image more than they explain the class: they change little between classes and barely change when the model's weights are randomized (Adebayo et al., 2018). Use them to see which image features the network responds to, not why it chose a class.",
    ),
    MethodEntry(
        name='rectified_backprop',
        label='Rectified backpropagation (DeconvNet)',
        family='gradient',
        needs_layer=False,
        reference='Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, arXiv:1311.2901',
        description="The DeconvNet rule: every ReLU passes back the positive part of the signal whatever it did on the forward pass. Shows the image structures that excite the network, like guided backpropagation. Caveat: such maps reconstruct the image more than they explain the class: they change little between classes and barely change when the model's weights are randomized (Adebayo et al., 2018). Use them to see which image features the network responds to, not why it chose a class.",
    ),
    MethodEntry(
        name='eigencam',
        label='EigenCAM',
        family='activation-cam',
        needs_layer=True,
        reference='Muhammad & Yeasin (2020), Eigen-CAM: Class Activation Map using Principal Components, IJCNN, arXiv:2008.00299',
        description="The first principal component of a layer's activations, drawn over the image: the dominant spatial pattern the layer responds to. It uses no gradients and no class, so every target gets the same map: it shows what the layer finds salient, not why a class was chosen. Caveats: class-agnostic; a principal component has no natural sign (vizkit makes its largest values positive); where background dominates the activations, the map highlights the background.",
    ),
    MethodEntry(
        name='hirescam',
        label='HiResCAM',
        family='cam',
        needs_layer=True,
        reference='Draelos & Carin (2020), Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural networks, arXiv:2011.08891',
        description="Multiplies every activation by its gradient, location by location, and sums the channels. Grad-CAM averages the gradients over the image first, which can highlight places the model did not use; HiResCAM does not, so for a head that is linear in the layer (global pooling then Dense) its map is exactly each location's contribution to the score. Bright regions carry positive evidence for the class at the chosen layer; the map has the layer's resolution, upsampled (blocky on deep layers). The last convolutional layer gives the most class-specific map, earlier layers sharper but less specific maps. Caveat: negative evidence is dropped by the ReLU.",
    ),
)
METRICS: tuple[MetricEntry, ...] = (
    MetricEntry(
        name='deletion',
        label='Deletion',
        reference='Petsiuk, Das & Saenko (2018), RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC, arXiv:1806.07421',
        description="Removes pixels in order of attribution, most important first, and tracks the target's probability. A faithful map makes it fall fast, so a smaller area under the curve is better; compare it with the same curve along a random pixel order (the baseline). Caveat: removed pixels become a fill (each image's mean colour by default), and images the model has never seen can fool it, so read the difference from the random order rather than the area alone.",
        better='lower',
    ),
    MetricEntry(
        name='insertion',
        label='Insertion',
        reference='Petsiuk, Das & Saenko (2018), RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC, arXiv:1806.07421',
        description="Starts from a blurred copy of the image and puts pixels back in order of attribution, most important first, tracking the target's probability. A faithful map makes it rise fast, so a larger area under the curve is better; compare it with the random-order baseline. Caveat: the blurred canvas can already be recognizable, which flattens every curve.",
        better='higher',
    ),
    MetricEntry(
        name='pointing_game',
        label='Pointing game',
        reference='Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2018), Top-down Neural Attention by Excitation Backprop, IJCV, arXiv:1608.00507',
        description="Counts a hit when a map's single most attributed pixel lies on the object (from ground-truth masks or boxes); the score is the share of hits, against the chance of hitting the object with a random pixel. Caveat: it checks one pixel, and a model that really uses the background (a shortcut) is penalized though the map is right.",
        better='higher',
    ),
    MetricEntry(
        name='relevance_mass',
        label='Relevance mass',
        reference='Arras, Osman & Samek (2022), CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network explanations, Information Fusion 81, arXiv:2003.07258',
        description="The share of a map's positive attribution that falls on the object (from ground-truth masks or boxes), against the object's share of the image (what a uniform map gets). Higher is better. Caveat: like the pointing game it assumes the model should look at the object, and coarse maps spill over its edges.",
        better='higher',
    ),
    MetricEntry(
        name='map_health',
        label='Map health',
        reference='vizkit',
        description="Flags maps that cannot be read at all: NaN or infinite values, all zeros, one value everywhere, or most pixels at the maximum; each flag comes with the likely cause and the fix for the method's family (a saturated softmax, a layer too deep, a patch too large, a class the model never finds likely). A healthy map is not yet a faithful one: the other metrics judge that.",
        better='',
    ),
    MetricEntry(
        name='cascading_randomization',
        label='Model randomization (cascading)',
        reference='Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), Sanity Checks for Saliency Maps, NeurIPS, arXiv:1810.03292',
        description="Re-initializes the model's weights layer by layer from the top and compares each step's maps with the original ones (rank correlation and structural similarity). A map that explains the model must change once its weights are gone; a method still highly correlated with half the layers randomized is flagged: it shows the image, not the model. Costs one explanation per layer.",
        better='lower',
    ),
    MetricEntry(
        name='data_randomization',
        label='Data randomization',
        reference='Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), Sanity Checks for Saliency Maps, NeurIPS, arXiv:1810.03292',
        description="Retrains a copy of the model on shuffled labels and compares its maps with the trained model's. A map that explains what the model learned must differ; similar maps mean the method reflects the architecture or the image, not the training. Needs a training set and costs a few epochs of training.",
        better='lower',
    ),
)
# fmt: on
# END GENERATED

BEGIN = "# BEGIN GENERATED (python -m vizkit.manifest)\n# fmt: off\n"
END = "# fmt: on\n# END GENERATED"


def method_names() -> list[str]:
    """Names of the registered attribution methods, in registration order."""
    return [entry.name for entry in METHODS]


def metric_names() -> list[str]:
    """Names of the metrics :func:`vizkit.evaluate` knows."""
    return [entry.name for entry in METRICS]


def method_entry(name: str) -> MethodEntry:
    """The entry for ``name``; a one-line error lists the valid names."""
    for entry in METHODS:
        if entry.name == name:
            return entry
    from vizkit.errors import InputError

    raise InputError(f"unknown method {name!r}: choose one of {', '.join(method_names())}")


def from_registry() -> tuple[tuple[MethodEntry, ...], tuple[MetricEntry, ...]]:
    """The entries as the registry and the metrics have them (imports TensorFlow)."""
    from vizkit.metrics import METRIC_INFO
    from vizkit.registry import available_methods, get_method

    methods = []
    for name in available_methods():
        info = get_method(name)
        methods.append(
            MethodEntry(
                name=name,
                label=info.label,
                family=info.family,
                needs_layer=bool(info.needs_layer),
                reference=info.reference,
                description=info.description,
            )
        )
    metrics = [
        MetricEntry(m.name, m.label, m.reference, m.description, m.better)
        for m in METRIC_INFO.values()
    ]
    return tuple(methods), tuple(metrics)


def render(methods: tuple[MethodEntry, ...], metrics: tuple[MetricEntry, ...]) -> str:
    """The generated block of this file for ``methods`` and ``metrics``."""
    lines = ["METHODS: tuple[MethodEntry, ...] = ("]
    for entry in methods:
        lines.append("    MethodEntry(")
        lines += [
            f"        {f.name}={getattr(entry, f.name)!r}," for f in dataclasses.fields(entry)
        ]
        lines.append("    ),")
    lines += [")", "METRICS: tuple[MetricEntry, ...] = ("]
    for metric in metrics:
        lines.append("    MetricEntry(")
        lines += [
            f"        {f.name}={getattr(metric, f.name)!r}," for f in dataclasses.fields(metric)
        ]
        lines.append("    ),")
    lines.append(")")
    return "\n".join(lines) + "\n"


def stale() -> list[str]:
    """What differs between this file and the registry: one line per method or metric."""
    methods, metrics = from_registry()
    problems = []
    for kind, stored, current in (("method", METHODS, methods), ("metric", METRICS, metrics)):
        old = {e.name: e for e in stored}
        new = {e.name: e for e in current}
        problems += [
            f"{kind} {n!r} is registered but not in the manifest" for n in new if n not in old
        ]
        problems += [
            f"{kind} {n!r} is in the manifest but no longer registered" for n in old if n not in new
        ]
        for name in new.keys() & old.keys():
            fields = [
                f.name
                for f in dataclasses.fields(new[name])
                if getattr(new[name], f.name) != getattr(old[name], f.name)
            ]
            if fields:
                problems.append(f"{kind} {name!r} changed: {', '.join(fields)}")
        if not problems and [e.name for e in stored] != [e.name for e in current]:
            problems.append(f"the {kind}s are registered in another order")
    return problems


def write(path: Path | None = None) -> Path:
    """Rewrite the generated block of this module from the registry."""
    path = Path(__file__) if path is None else Path(path)
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + BEGIN + render(*from_registry()) + END + tail, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m vizkit.manifest [--check]``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        problems = stale()
        for line in problems:
            print(f"vizkit/manifest.py is stale: {line}", file=sys.stderr)
        if problems:
            print("regenerate it with: python -m vizkit.manifest", file=sys.stderr)
        return 1 if problems else 0
    print(write())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
