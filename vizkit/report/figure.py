"""One attribution figure for one image (``vizkit explain``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vizkit.plotting.figures import save_figure, save_format_for
from vizkit.plotting.style import STYLE_DPI
from vizkit.plotting.style import style as use_style
from vizkit.report.plan import class_names_for
from vizkit.sources import ResolvedModel, resolve_model


def explain_figure(
    model: Any,
    image: Any,
    *,
    method: str = "gradcam",
    out: str | os.PathLike[str],
    target: int | None = None,
    layer: str | int | None = None,
    params: dict[str, Any] | None = None,
    kind: str = "auto",
    style: str = "paper",
    seed: int = 0,
    trust: bool = False,
    layers: Sequence[str | int] | None = None,
    sweep: bool = False,
) -> Path:
    """Explain one image with one method and save the figure to ``out`` (.png/.pdf/.svg).

    The figure shows the input and the map (``kind``: ``"auto"``, ``"overlay"``,
    ``"heatmap"`` or ``"masked"``) with its colour bar; the input is titled with the predicted
    and the explained class and their probabilities, and a legend says what the colours mean.
    ``model`` is a ``keras.Model``, a model file or ``"sample:NAME"``
    (:func:`vizkit.sources.resolve_model`). With ``layers`` (or ``sweep=True``: up to 6 layers
    from the deepest to the shallowest) a layer method's maps at those layers come side by side
    (:func:`vizkit.explain_layers`).
    """
    from vizkit.inputs import load_images
    from vizkit.methods import compare, create
    from vizkit.models import get_layer, head_info
    from vizkit.registry import get_method

    fmt = save_format_for(Path(out))
    resolved: ResolvedModel = resolve_model(model, trust=trust)
    info = get_method(method)
    if layer is not None:
        layer = get_layer(resolved.model, layer)[0]
    batch = load_images(image, resolved.model)[:1]
    if resolved.sample is not None and not batch.class_names:  # name the classes in titles
        names = class_names_for(resolved, batch, head_info(resolved.model).num_classes)
        batch = dataclasses.replace(batch, class_names=tuple(names))
    options = dict(params or {})
    if "seed" in info.defaults():
        options.setdefault("seed", seed)
    explainer = create(resolved.model, info.name, layer=layer, **options)
    if layers is not None or sweep:
        swept = explainer.explain_layers(batch, target, None if layers is None else list(layers))
        comparison = swept.compare(None if layers is not None else swept.spread())
    else:
        comparison = compare([explainer.explain(batch, target)])
    with use_style(style):
        # the same grid as the report's comparisons: the input, then the map(s)
        fig = comparison.plot(images=[0], kind=kind, panel_size=2.8)
        written = save_figure(fig, Path(out).with_suffix(""), [fmt], dpi=STYLE_DPI[style])
    return written[fmt]
