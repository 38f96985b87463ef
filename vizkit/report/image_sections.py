"""Report sections about the given images: predictions, attribution maps and their evaluation.

Each method and each metric shown gets its plain-language explanation (what it shows, how to
read it, its caveats) and its paper, from the registry (:attr:`MethodInfo.description`) and
:func:`vizkit.metrics.metric_info`. Predictions come from :func:`vizkit.predict`, never
re-derived here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vizkit.errors import InputError
from vizkit.plotting.figures import new_figure
from vizkit.report.model_sections import NO_IMAGES
from vizkit.report.plan import Plan
from vizkit.report.writer import Writer, attempt, frame_html, skip
from vizkit.templates import html as tpl


def method_about(methods: Sequence[str]) -> list[tpl.About]:
    """One plain-language explanation with its paper link per method."""
    from vizkit.registry import get_method

    blocks = []
    for name in methods:
        info = get_method(name)
        blocks.append(
            tpl.About(info.label, info.description, info.reference, info.url, info.family_label)
        )
    return blocks


def metric_about(metrics: Sequence[str]) -> list[tpl.About]:
    """One plain-language explanation with its paper link per metric (aliases merged)."""
    from vizkit.metrics import metric_info

    infos = {metric_info(name).name: metric_info(name) for name in metrics}
    return [
        tpl.About(
            info.label,
            info.description,
            "" if info.reference == "vizkit" else info.reference,
            info.url,
            f"{info.better} is better" if info.better else "",
        )
        for info in infos.values()
    ]


def _top_k_frame(preds: Any, index: int, class_names: Sequence[str], k: int) -> Any:
    names = class_names if any(n != str(i) for i, n in enumerate(class_names)) else None
    frame = preds[index].to_frame(names).head(k)
    frame = frame.drop(columns=["image", "image_name"], errors="ignore")
    return frame.rename(columns={"class_name": "name"}).reset_index(drop=True)


def _comparison_caption(comparison: Any, index: int) -> str:
    """Caption of one image's comparison grid: the predicted and the explained class."""
    from vizkit.plotting.attribution import explained_text, predicted_text

    first = comparison.explanations[0]
    explained = sorted({explained_text(e, index) for e in comparison.explanations})
    return (
        f"Method comparison for {first.image_name(index)}: predicted "
        f"{predicted_text(first, index)}; the maps explain {' / '.join(explained)} "
        "(class and its probability). Gradient maps are shown alone, smooth maps (CAMs, "
        "occlusion) over the image in grey; each method column has its own colour scale."
    )


def _explain_all(writer: Writer, section: tpl.Section, plan: Plan) -> dict[str, Any]:
    """Every method's explanation of the images (a failing method is noted and left out)."""
    from vizkit.methods import explain
    from vizkit.registry import get_method

    explanations: dict[str, Any] = {}
    for method in plan.methods:
        writer.tick(f"explaining: {method}")
        seeded = {"seed": plan.seed} if "seed" in get_method(method).defaults() else {}

        def run(method: str = method, seeded: dict[str, Any] = seeded) -> Any:
            return explain(plan.model, plan.batch, method=method, targets=plan.targets, **seeded)

        result = attempt(section, f"method {method}", run)
        if result is not None:
            explanations[method] = result
    return explanations


def images_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """Top-k predictions and the method comparison grid per image, and what each method shows.

    The explanations are kept on ``writer.explanations`` for the evaluation section.
    """
    import pandas as pd

    from vizkit.methods import compare
    from vizkit.scoring import predict

    batch = plan.batch
    if batch is None:
        skip(section, NO_IMAGES)
        return
    k = plan.top_k
    section.intro = (
        f"Top-{k} predictions and attribution maps ({', '.join(plan.methods)}) for "
        f"{len(batch)} image(s); maps explain "
        + ("the predicted class." if plan.targets is None else "the requested target class.")
    )
    section.blocks.append(tpl.Group("How to read each method", list(method_about(plan.methods))))
    preds = predict(plan.model, batch, k=k)
    names = plan.class_names
    frames = []
    for i in range(len(batch)):
        frame = _top_k_frame(preds, i, names, k)
        frame.insert(0, "image", batch.names[i] if batch.names else f"image {i}")
        frames.append(frame)
    writer.table(pd.concat(frames, ignore_index=True), "predictions")

    writer.explanations = _explain_all(writer, section, plan)
    comparison = compare(list(writer.explanations.values())) if writer.explanations else None
    for i in range(len(batch)):
        name = batch.names[i] if batch.names else f"image {i}"
        group = tpl.Group(title=f"Image {i + 1}: {name}")
        label = ""
        if batch.labels is not None:
            true = int(batch.labels[i])
            label = f" True class: {names[true] if true < len(names) else true}."
        top = frame_html(_top_k_frame(preds, i, names, k))
        group.blocks.append(tpl.Table(caption=f"Top-{k} predictions.{label}", html=top))

        def grid(i: int = i, name: str = name, group: tpl.Group = group) -> None:
            if comparison is None:
                raise InputError("no attribution method succeeded")
            fig = comparison.plot(images=[i])
            group.blocks.append(
                writer.figure(fig, f"compare-{i:02d}-{name}", _comparison_caption(comparison, i))
            )

        attempt(section, f"comparison for {name}", grid)
        section.blocks.append(group)


def evaluation_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """Deletion / insertion (and localization with masks) per method, health warnings."""
    from vizkit.metrics import run_evaluation

    batch = plan.batch
    if batch is None:
        skip(section, NO_IMAGES)
        return
    if not writer.explanations:
        skip(section, "no attribution maps to evaluate (every method failed)")
        return
    section.intro = (
        "How far to trust each method's maps on these images: deletion (lower area is better) "
        "and insertion (higher is better) against a random pixel order"
        + (", localization against the object masks" if batch.masks is not None else "")
        + ", and map health."
    )
    result = run_evaluation(
        plan.model, batch, dict(writer.explanations), plan.metrics, plan.targets, seed=plan.seed
    )
    frame = result.to_frame()
    section.blocks.append(writer.table(frame, "evaluation", "Metrics per method.", index=True))
    measured = list(dict.fromkeys(m for per in result.results.values() for m in per))
    section.blocks.append(tpl.Group("How to read each metric", list(metric_about(measured))))
    for method, notes in result.warnings.items():
        for note in notes:
            section.blocks.append(tpl.Note(f"{method}: {note}"))
    kinds = [kind for kind in ("deletion", "insertion") if result.curves(kind)]
    if kinds:
        fig = new_figure(6.4, 2.9 * len(kinds))
        for ax, kind in zip(fig.subplots(len(kinds), 1, squeeze=False)[:, 0], kinds):
            result.plot(ax=ax, kind=kind)
        section.blocks.append(
            writer.figure(fig, "deletion-insertion", "Deletion and insertion curves per method.")
        )
