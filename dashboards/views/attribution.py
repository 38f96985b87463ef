"""Attribution page: several methods side by side (rows = images, columns = input + methods).

The top classes of every image are shown as bars; clicking one explains that class. Maps are
computed jobs (cached by content); the display options redraw only the grid (a fragment), from
the cached maps.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import about, display, work
from dashboards import widgets as w
from dashboards.context import Context

TARGET_KEY = w.KEEP + "attr_target"
TOP_K = 3
PER_ROW = 4


def bar(probability: float) -> str:
    """A thin probability bar (HTML: progress elements mean "work running" to the tests)."""
    width = f"{100 * min(max(probability, 0.0), 1.0):.1f}%"
    return (
        '<div class="vk-prob" style="height:6px;background:rgba(128,128,128,.2);'
        f'border-radius:3px;margin:-6px 0 4px"><div style="width:{width};height:6px;'
        'background:#1f77b4;border-radius:3px"></div></div>'
    )


def _explain_class(index: int) -> None:
    st.session_state[TARGET_KEY] = index


def top_classes(ctx: Context) -> None:
    """The top classes of each image as bars; a click makes that class the target."""
    probs = work.predictions(ctx)
    names = ctx.class_names
    target = st.session_state.get(TARGET_KEY)
    st.caption("Top classes per image (click a class to explain it)")
    rows = work.top_classes(probs, TOP_K)
    for start in range(0, len(rows), PER_ROW):
        columns = st.columns(PER_ROW)
        for column, i in zip(columns, range(start, min(start + PER_ROW, len(rows)))):
            with column.container(border=True):
                st.markdown(f"**{ctx.images.names[i]}**" if ctx.images.names else f"image {i}")
                for rank, (c, p) in enumerate(rows[i]):
                    st.button(
                        f"{w.class_label(c, names)} · {p:.0%}",
                        key=f"attr_top_{i}_{rank}",
                        on_click=_explain_class,
                        args=(c,),
                        type="primary" if target == c else "secondary",
                        width="stretch",
                    )
                    st.html(bar(p))


@st.fragment
def grid(ctx: Context, explanations: list[Any], computed: tuple[Any, ...]) -> None:
    """Display options and the grid: changing them redraws from the cached maps only."""
    options = w.display_options("attr")
    comparison = work.compare(explanations)
    display.show_figure(
        lambda: comparison.plot(
            kind=options["kind"],
            shared_scale=options["shared"],
            cmap=options["cmap"],
            alpha=options["alpha"],
            clip_percentile=options["clip"],
            absolute=options["absolute"],
        ),
        "attribution_grid",
        key=(computed, options),
        tags=ctx.tags,
        layout=(computed, options["kind"], options["shared"], options["absolute"]),
        changing=display.beside_inputs,
    )
    layer = next((e.layer for e in explanations if e.layer), None)
    st.caption(
        " · ".join(f"{e.label or e.method}: {e.seconds * 1000:.0f} ms" for e in explanations)
        + (f" · layer {layer}" if layer else "")
    )
    w.fragment_marker("attr")


def layer_comparison(
    ctx: Context, chosen: list[str], infos: dict[str, Any], target: Any, params: dict[str, Any]
) -> None:
    """On request, one CAM at several layers side by side, from the every-layer sweep the
    compute worker keeps (:func:`vizkit.explain_layers`)."""
    sweepable = [m for m in chosen if work.one_pass(m, params.get(m, {}))]
    if not sweepable or len(ctx.facts.candidates) < 2:
        return
    if not w.checkbox(
        "Compare layers",
        "attr_layers_on",
        False,
        help="The same CAM at several layers, deepest first: how the map sharpens and loses "
        "class specificity towards the input. All layers come from one pass.",
    ):
        return
    columns = st.columns([1, 3])
    method = w.select(
        "CAM",
        sweepable,
        "attr_layers_method",
        sweepable[0],
        format_func=lambda m: infos[m].label,
        where=columns[0],
    )
    own = params.get(method, {})
    sweep = work.explain_layers(ctx, method, target, own)
    labels = {c.path: c.label for c in ctx.facts.candidates}
    layers = w.multiselect(
        "Layers",
        sweep.layers,
        f"attr_layers_{ctx.key}",
        [sweep.layers[i] for i in sweep.spread(4)],  # five columns stay readable on the page
        format_func=lambda p: labels.get(p, p),
        max_selections=6,
        where=columns[1],
    )
    if not layers:
        st.info("Choose at least one layer.")
        return
    shown = [p for p in sweep.layers if p in layers]  # deepest first, whatever the click order
    display.show_figure(
        lambda: sweep.plot(layers=shown),
        "attribution_layers",
        key=(ctx.key, ctx.images_key, method, target, sorted(own.items()), shown),
        tags=ctx.tags,
    )


def body(ctx: Context) -> None:
    methods = work.registry_methods()
    infos = {m: work.method_info(m) for m in methods}
    top = st.columns([3, 2])
    chosen = w.multiselect(
        "Methods",
        methods,
        "attr_methods",
        default=[m for m in work.DEFAULT_ATTRIBUTION if m in methods] or methods[:1],
        format_func=lambda m: infos[m].label,
        where=top[0],
        help="Each method becomes a column of the grid.",
    )
    target = w.target_picker(ctx, "attr_target", where=top[1])
    about.methods([infos[m] for m in chosen], where=top[0])
    top_classes(ctx)
    if not chosen:
        st.info("Choose at least one method.")
        return

    layer = None
    layer_methods = [m for m in chosen if infos[m].needs_layer]
    if layer_methods:
        if not ctx.facts.candidates:
            labels = ", ".join(infos[m].label for m in layer_methods)
            st.error(
                f"{labels} cannot run on this model: it has no layer with a spatial (height x "
                "width x channels) output, i.e. no convolutional feature maps to weight. Use a "
                "method that needs no layer instead.",
                icon=":material/block:",
            )
            chosen = [m for m in chosen if m not in layer_methods]
            if not chosen:
                return
        else:
            layer = w.layer_picker(ctx.facts.candidates, "attr_layer")

    params: dict[str, dict[str, Any]] = {}
    if any(infos[m].params for m in chosen):
        with st.expander("Method parameters", expanded=False):
            columns = st.columns(min(len(chosen), 3))
            for i, m in enumerate(chosen):
                where = columns[i % len(columns)]
                where.markdown(f"**{infos[m].label}**")
                params[m] = w.param_widgets(
                    infos[m],
                    "attr",
                    where=where,
                    skip=work.HIDDEN_PARAMS,
                    limits=work.size_limits(ctx, infos[m]),
                )

    explanations = [work.explain(ctx, m, target, layer, params.get(m, {})) for m in chosen]
    grid(ctx, explanations, (ctx.key, ctx.images_key, chosen, target, layer, params))
    work.warm_layers(ctx, chosen, layer)
    layer_comparison(ctx, chosen, infos, target, params)
    with st.expander("Per-image table and raw maps"):
        display.show_table(
            work.compare(explanations).to_frame(), "attribution_table", hide_index=True
        )
        display.download_npz(work.maps_arrays(explanations), "attribution_maps")


w.page("Attribution", body, needs_images=True)
