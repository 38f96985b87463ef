"""What each metric measures, in plain language: for the dashboard, the report and the CLI.

One :class:`MetricInfo` per name in :data:`vizkit.metrics.METRICS` (the tests check that every
metric has one), next to the metrics themselves, as the method registry holds each method's
description.
"""

from __future__ import annotations

import dataclasses

from vizkit.errors import InputError
from vizkit.registry import reference_url


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A metric's label, paper, plain-language description and which direction is better."""

    name: str
    label: str
    reference: str
    description: str
    better: str = ""  # "lower", "higher", or "" (a pass/fail check)

    @property
    def url(self) -> str | None:
        """The paper's address (arXiv or DOI), from :attr:`reference`."""
        return reference_url(self.reference)


_RISE = (
    "Petsiuk, Das & Saenko (2018), RISE: Randomized Input Sampling for Explanation of Black-box "
    "Models, BMVC, arXiv:1806.07421"
)
_ADEBAYO = (
    "Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), Sanity Checks for Saliency Maps, "
    "NeurIPS, arXiv:1810.03292"
)


def _info(name: str, label: str, reference: str, description: str, better: str = "") -> MetricInfo:
    return MetricInfo(name, label, reference, " ".join(description.split()), better)


_METRICS = (
    _info(
        "deletion",
        "Deletion",
        _RISE,
        """Removes pixels in order of attribution, most important first, and tracks the
        target's probability. A faithful map makes it fall fast, so a smaller area under the
        curve is better; compare it with the same curve along a random pixel order (the
        baseline). Caveat: removed pixels become a fill (each image's mean colour by default),
        and images the model has never seen can fool it, so read the difference from the
        random order rather than the area alone.""",
        "lower",
    ),
    _info(
        "insertion",
        "Insertion",
        _RISE,
        """Starts from a blurred copy of the image and puts pixels back in order of
        attribution, most important first, tracking the target's probability. A faithful map
        makes it rise fast, so a larger area under the curve is better; compare it with the
        random-order baseline. Caveat: the blurred canvas can already be recognizable, which
        flattens every curve.""",
        "higher",
    ),
    _info(
        "pointing_game",
        "Pointing game",
        "Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2018), Top-down Neural Attention by "
        "Excitation Backprop, IJCV, arXiv:1608.00507",
        """Counts a hit when a map's single most attributed pixel lies on the object (from
        ground-truth masks or boxes); the score is the share of hits, against the chance of
        hitting the object with a random pixel. Caveat: it checks one pixel, and a model that
        really uses the background (a shortcut) is penalized though the map is right.""",
        "higher",
    ),
    _info(
        "relevance_mass",
        "Relevance mass",
        "Arras, Osman & Samek (2022), CLEVR-XAI: A benchmark dataset for the ground truth "
        "evaluation of neural network explanations, Information Fusion 81, arXiv:2003.07258",
        """The share of a map's positive attribution that falls on the object (from
        ground-truth masks or boxes), against the object's share of the image (what a uniform
        map gets). Higher is better. Caveat: like the pointing game it assumes the model
        should look at the object, and coarse maps spill over its edges.""",
        "higher",
    ),
    _info(
        "map_health",
        "Map health",
        "vizkit",
        """Flags maps that cannot be read at all: NaN or infinite values, all zeros, one value
        everywhere, or most pixels at the maximum; each flag comes with the likely cause and
        the fix for the method's family (a saturated softmax, a layer too deep, a patch too
        large, a class the model never finds likely). A healthy map is not yet a faithful
        one: the other metrics judge that.""",
    ),
    _info(
        "cascading_randomization",
        "Model randomization (cascading)",
        _ADEBAYO,
        """Re-initializes the model's weights layer by layer from the top and compares each
        step's maps with the original ones (rank correlation and structural similarity). A
        map that explains the model must change once its weights are gone; a method still
        highly correlated with half the layers randomized is flagged: it shows the image, not
        the model. Costs one explanation per layer.""",
        "lower",
    ),
    _info(
        "data_randomization",
        "Data randomization",
        _ADEBAYO,
        """Retrains a copy of the model on shuffled labels and compares its maps with the
        trained model's. A map that explains what the model learned must differ; similar maps
        mean the method reflects the architecture or the image, not the training. Needs a
        training set and costs a few epochs of training.""",
        "lower",
    ),
)
#: Every metric :func:`vizkit.evaluate` knows, by name.
METRIC_INFO: dict[str, MetricInfo] = {m.name: m for m in _METRICS}
_ALIASES = {"health": "map_health", "randomization_sanity": "cascading_randomization"}


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of a metric (aliases accepted); a clear error lists the names."""
    found = METRIC_INFO.get(_ALIASES.get(name, name))
    if found is None:
        raise InputError(f"unknown metric {name!r}: choose one of {', '.join(METRIC_INFO)}")
    return found
