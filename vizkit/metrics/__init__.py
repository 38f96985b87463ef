"""How far to trust an attribution map: faithfulness, localization, sanity checks, map health.

- :func:`deletion` / :func:`insertion`: RISE curves and their areas against a random order.
- :func:`pointing_game` / :func:`relevance_mass`: localization against ground-truth masks/boxes.
- :func:`cascading_randomization` (alias :func:`randomization_sanity`) and
  :func:`data_randomization`: Adebayo et al.'s sanity checks.
- :func:`map_health`: blank, constant, NaN and saturated maps, with the likely cause.
- :func:`evaluate`: the methods x metrics table (:func:`run_evaluation` keeps the result objects).
- :func:`metric_info`: each metric's label, paper and plain-language description.

Every metric returns a result object with ``to_frame()`` and ``plot(ax=None)``.
"""

from vizkit.metrics._common import spearman, ssim, ssim_maps
from vizkit.metrics.evaluate import DEFAULT_METRICS, METRICS, evaluate, run_evaluation
from vizkit.metrics.faithfulness import deletion, fill_images, insertion, perturbation_curve
from vizkit.metrics.health import check_map, map_health
from vizkit.metrics.info import METRIC_INFO, MetricInfo, metric_info
from vizkit.metrics.localization import boxes_to_masks, pointing_game, relevance_mass
from vizkit.metrics.sanity import (
    cascading_randomization,
    clone_model,
    data_randomization,
    randomization_sanity,
)
from vizkit.results.metrics import (
    EvaluationResult,
    HealthReport,
    HealthResult,
    PerturbationCurve,
    PointingGameResult,
    RandomizationResult,
    RelevanceMassResult,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "METRIC_INFO",
    "MetricInfo",
    "EvaluationResult",
    "HealthReport",
    "HealthResult",
    "PerturbationCurve",
    "PointingGameResult",
    "RandomizationResult",
    "RelevanceMassResult",
    "boxes_to_masks",
    "cascading_randomization",
    "check_map",
    "clone_model",
    "data_randomization",
    "deletion",
    "evaluate",
    "fill_images",
    "insertion",
    "map_health",
    "metric_info",
    "perturbation_curve",
    "pointing_game",
    "randomization_sanity",
    "relevance_mass",
    "run_evaluation",
    "spearman",
    "ssim",
    "ssim_maps",
]
