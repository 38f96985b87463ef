"""Attribution methods: importing this package imports every module in it, and the method
classes register themselves (so adding a method is adding a module, and its tests).

``vizkit.explain(model, inputs, method="gradcam")`` is the notebook shortcut over
``get_method(name).cls(model, **params).explain(inputs, targets)``. Method objects are cheap to
create: compiled functions and rebuilt graphs are cached per model, not per object.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from vizkit._tf import keras
from vizkit.methods.base import Method
from vizkit.progress import Progress, ProgressArg
from vizkit.registry import available_methods, get_method
from vizkit.results.explanation import Comparison, Explanation
from vizkit.results.sweep import LayerSweep

__all__ = ["Method", "explain", "compare", "available_methods", "get_method", "create"]

# Method modules register their classes on import; the families' own modules come first, so
# the registry lists the established methods before newer ones.
_FIRST = ("cam", "occlusion", "saliency")
for _name in sorted(
    (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")),
    key=lambda n: (n not in _FIRST, _FIRST.index(n) if n in _FIRST else 0, n),
):
    importlib.import_module(f"{__name__}.{_name}")


def create(
    model: keras.Model,
    method: str = "gradcam",
    *,
    layer: str | int | None = None,
    output: int | str | None = None,
    **params: Any,
) -> Method:
    """A configured method object: ``create(model, "smoothgrad", samples=30)``."""
    info = get_method(method)
    if layer is not None and not info.needs_layer:
        return info.cls(model, output=output, **params)  # layer ignored for layer-free methods
    if info.needs_layer:
        return info.cls(model, layer=layer, output=output, **params)
    return info.cls(model, output=output, **params)


def explain(
    model: keras.Model,
    inputs: Any,
    method: str | Sequence[str] = "gradcam",
    targets: Any = None,
    layer: str | int | None = None,
    *,
    output: int | str | None = None,
    progress: ProgressArg = None,
    value_range: tuple[float, float] | str | None = None,
    preprocess: str | Any = None,
    class_names: Sequence[str] | None = None,
    **params: Any,
) -> Explanation | Comparison:
    """Explain ``model``'s decision on ``inputs`` with one method (or several).

    Parameters
    ----------
    model : keras.Model
        Single-input image classifier; never modified.
    inputs : ndarray (N, H, W, C), ImageBatch, paths or PIL images
    method : str or list of str
        A name from :func:`vizkit.available_methods`; a list returns a :class:`Comparison`.
    targets : int, sequence of int, None, or a target object
        Class per image (None = the predicted class); or, for every image, a
        :class:`vizkit.UnitTarget` (a regression output, one unit of a multi-label head), a
        :class:`vizkit.RegionTarget` (a region of a segmentation output) or a callable
        ``fn(outputs) -> scores`` (see :mod:`vizkit.targets`).
    layer : str or int, optional
        Layer for CAMs (``"base/inner"`` or an inner name); ignored by layer-free methods.
        ``None`` uses the first of :func:`vizkit.candidate_layers`.
    output : int or str, optional
        Head of a multi-output model.
    progress : None, bool or callable
        Progress over methods and batches of images (see :mod:`vizkit.progress`): None shows a
        bar in notebooks for long calls; a callable gets ``(done, total)``.
    value_range, preprocess : optional
        The input scale of images loaded here (paths, PIL images, uint8 arrays); see
        :func:`vizkit.load_images`. Default: what :func:`vizkit.input_spec` decides.
    class_names : sequence of str, optional
        One name per class, for titles and tables (default: the images', a sample's, or
        ImageNet's for a 1000-way head).
    **params
        The method's hyperparameters (``score``, ``batch_size``, ``samples``, ...). With a list
        of methods, each gets the parameters it knows.

    Returns
    -------
    Explanation, or Comparison for a list of methods
        Sanity findings (:func:`vizkit.check_inputs`) are emitted as
        :class:`vizkit.VizkitWarning`.
    """
    from vizkit.inputs import prepare_inputs

    inputs = prepare_inputs(
        inputs, model, value_range=value_range, preprocess=preprocess, class_names=class_names
    )
    if isinstance(method, str):
        explainer = create(model, method, layer=layer, output=output, **params)
        result = explainer.explain(inputs, targets, progress=progress)
        _warn(model, inputs, result, output)
        return result
    names = list(method)
    if not names:
        from vizkit.errors import InputError

        raise InputError("method=[] names no methods: pass at least one")
    unused = set(params) - {p.name for n in names for p in get_method(n).params}
    if unused:
        from vizkit.errors import InputError

        raise InputError(f"no chosen method takes parameter {sorted(unused)[0]!r}")
    batch = inputs
    explainers = []
    for name in names:
        known = {p.name for p in get_method(name).params}
        own = {k: v for k, v in params.items() if k in known}
        explainers.append(create(model, name, layer=layer, output=output, **own))
    steps = [-(-len(batch) // max(1, e.images_per_chunk())) for e in explainers]
    results = []
    with Progress(progress, sum(steps), desc="explain", unit="batch") as bar:
        for explainer, offset in zip(explainers, np.cumsum([0, *steps[:-1]])):
            bar.set_description(explainer.name)
            hook = bar.child(int(offset)) if bar.active else False
            results.append(explainer.explain(batch, targets, progress=hook))
    _warn(model, batch, results[0], output)
    return Comparison(tuple(results))


def explain_layers(
    model: keras.Model,
    inputs: Any,
    method: str = "gradcam",
    layers: str | int | Sequence[str | int] | None = None,
    targets: Any = None,
    *,
    output: int | str | None = None,
    progress: ProgressArg = None,
    value_range: tuple[float, float] | str | None = None,
    preprocess: str | Any = None,
    class_names: Sequence[str] | None = None,
    **params: Any,
) -> LayerSweep:
    """One layer method's maps at many layers for the same images and targets.

    Gradient CAMs (Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM) and Eigen-CAM compute every layer
    in one forward and one backward pass, so a sweep over all of a network's layers costs about
    one backward pass more than a single map; other layer methods (Score-CAM, Guided Grad-CAM,
    the tf-keras-vis engine) run layer by layer. Values equal :func:`explain`'s at each layer.

    Parameters
    ----------
    layers : str, int, list of them, or None
        The layers (paths, inner names or indices, as for :func:`explain`); ``None`` takes
        every one of :func:`vizkit.candidate_layers`, deepest first.
    model, inputs, method, targets, output, progress, value_range, preprocess, class_names,
    **params
        As for :func:`explain` (one method only).

    Returns
    -------
    LayerSweep
        ``sweep[layer]`` is that layer's :class:`Explanation`; ``sweep.plot(layers=...)`` draws
        layers side by side.
    """
    from vizkit.inputs import prepare_inputs

    if not isinstance(method, str):
        from vizkit.errors import InputError

        raise InputError("explain_layers takes one method name: call it once per method")
    inputs = prepare_inputs(
        inputs, model, value_range=value_range, preprocess=preprocess, class_names=class_names
    )
    explainer = create(model, method, output=output, **params)
    sweep = explainer.explain_layers(inputs, targets, layers, progress=progress)
    _warn(model, inputs, sweep.template, output)
    return sweep


def _warn(model: Any, inputs: Any, result: Explanation, output: int | str | None) -> None:
    """Emit the sanity findings about these inputs (see :mod:`vizkit.checks`)."""
    from vizkit.checks import check_inputs, is_quiet, warn_findings

    if not is_quiet():
        warn_findings(check_inputs(model, inputs, result.predictions, output=output), 4)


def compare(explanations: Sequence[Explanation]) -> Comparison:
    """Put explanations of the same images side by side (``.plot()`` draws the grid)."""
    return Comparison(tuple(explanations))
