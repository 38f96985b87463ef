"""vizkit: see inside trained Keras CNNs.

The public API is imported lazily, so ``import vizkit`` is fast and prints no TensorFlow log
noise; TensorFlow loads on first use of a function that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    # errors
    "VizkitError": "vizkit.errors",
    "ModelFileError": "vizkit.errors",
    "UnsafeModelError": "vizkit.errors",
    "InputError": "vizkit.errors",
    "LayerError": "vizkit.errors",
    "VizkitWarning": "vizkit.errors",
    # loading, inputs, layers
    "load_model": "vizkit.loading",
    "check_model_file": "vizkit.loading",
    "load_images": "vizkit.inputs",
    "ImageBatch": "vizkit.inputs",
    # the input contract: scale, class names, sanity checks
    "input_spec": "vizkit.detection",
    "InputSpec": "vizkit.contract",
    "check_inputs": "vizkit.checks",
    "Finding": "vizkit.checks",
    "read_class_names": "vizkit.classes",
    "model_class_names": "vizkit.classes",
    "resolve_targets": "vizkit.inputs",
    "get_layer": "vizkit.models",
    "layer_paths": "vizkit.models",
    "conv_layers": "vizkit.models",
    "first_conv_layer": "vizkit.models",
    "candidate_layers": "vizkit.layers",
    "model_info": "vizkit.layers",
    "ModelInfo": "vizkit.layers",
    # summaries
    "summarize": "vizkit.summary",
    "plot_history": "vizkit.summary",
    "load_history": "vizkit.summary",
    "save_history": "vizkit.summary",
    "ModelSummary": "vizkit.results.summary",
    "ReceptiveField": "vizkit.results.summary",
    "receptive_fields": "vizkit.receptive",
    # sample models
    "sample_model": "vizkit.samples",
    "sample_images": "vizkit.samples",
    "sample_metadata": "vizkit.samples",
    "sample_names": "vizkit.samples",
    "sample_history": "vizkit.samples",
    "sample_path": "vizkit.samples",
    "sample_test_predictions": "vizkit.samples",
    "imagenet_class_names": "vizkit.imagenet",
    # attribution
    "explain": "vizkit.methods",
    "explain_layers": "vizkit.methods",
    "LayerSweep": "vizkit.results.sweep",
    "predict": "vizkit.scoring",
    "Predictions": "vizkit.results.explanation",
    "UnitTarget": "vizkit.targets",
    "RegionTarget": "vizkit.targets",
    "compare": "vizkit.methods",
    "available_methods": "vizkit.registry",
    "get_method": "vizkit.registry",
    # inside the network
    "conv_filters": "vizkit.inspection",
    "feature_maps": "vizkit.inspection",
    "top_activations": "vizkit.inspection",
    "maximize_activation": "vizkit.activation_max",
    "Recipe": "vizkit.activation_max",
    # evaluation
    "evaluate": "vizkit.metrics",
    # whole datasets
    "scan": "vizkit.scanning",
    "open_scan": "vizkit.scanning",
    "Scan": "vizkit.scanning",
    "ClassMeanMaps": "vizkit.results.scan",
    "ConfusionView": "vizkit.results.scan",
    "ErrorMaps": "vizkit.results.scan",
    "RankedImages": "vizkit.results.scan",
    "SpatialBias": "vizkit.results.scan",
    # reports
    "build_report": "vizkit.report",
    "style": "vizkit.plotting.style",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vizkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
