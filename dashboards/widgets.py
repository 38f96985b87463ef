"""Widgets shared by the dashboard pages.

- Page widgets are created through the helpers here (:func:`select`, :func:`slider`, ...). Their
  keys start with ``keep_`` and :func:`keep_widget_state` (called by ``app.py`` on every run)
  stops Streamlit from dropping their values while another page is shown, so settings survive
  page switches. Each helper validates the stored value against the current options (a layer
  picked for another model falls back to the default).
- :func:`param_widgets` builds a method's widgets from the registry's typed parameters.
- Blocks several pages share: :func:`page` (title, context checks, one-line errors),
  :func:`target_picker`, :func:`layer_picker`, :func:`spatial_layer` (with the message for models
  without one), :func:`channel_picker`, :func:`long_job_button` and :func:`display_options`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dashboards.display import guard

KEEP = "keep_"


def page(title: str, body: Callable[[Any], None], *, needs_images: bool = False) -> None:
    """Standard page frame: title, context checks, and the body inside :func:`guard`."""
    from dashboards import context

    st.title(title)
    with guard(f"The {title} page"):
        ctx = context.current()
        if ctx is None:
            st.info("Choose a model in the sidebar to begin.", icon=":material/arrow_back:")
            return
        if needs_images:
            if not ctx.facts.image_model:
                st.error(
                    f"{ctx.entry.label} is not an image model (its input is not height x width x "
                    "channels), so this view has nothing to show: choose an image classifier.",
                    icon=":material/error:",
                )
                return
            if ctx.images is None:
                st.info(
                    "Choose sample images or upload images in the sidebar.",
                    icon=":material/arrow_back:",
                )
                return
        body(ctx)


# --------------------------------------------------------------------------------------------
# Widgets whose values survive page switches
# --------------------------------------------------------------------------------------------
def keep_widget_state() -> None:
    """Re-assign kept widget values so Streamlit does not clean them up on other pages."""
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(KEEP):
            st.session_state[key] = st.session_state[key]


def _key(key: str) -> str:
    return key if key.startswith(KEEP) else KEEP + key


def _offer(key: str, options: Sequence[Any]) -> None:
    """Record the options a kept widget offers (tests read them to change every widget)."""
    st.session_state.setdefault("_vk_options", {})[key] = list(options)


def select(
    label: str,
    options: Sequence[Any],
    key: str,
    default: Any = None,
    *,
    format_func: Callable[[Any], str] = str,
    help: str | None = None,
    where: Any = None,
    radio: bool = False,
    horizontal: bool = True,
) -> Any:
    where = where or st
    key = _key(key)
    options = list(options)
    _offer(key, options)
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]
    if radio:
        return where.radio(
            label, options, key=key, format_func=format_func, help=help, horizontal=horizontal
        )
    return where.selectbox(label, options, key=key, format_func=format_func, help=help)


def multiselect(
    label: str,
    options: Sequence[Any],
    key: str,
    default: Sequence[Any] = (),
    *,
    format_func: Callable[[Any], str] = str,
    help: str | None = None,
    max_selections: int | None = None,
    where: Any = None,
) -> list[Any]:
    where = where or st
    key = _key(key)
    options = list(options)
    _offer(key, options)
    current = st.session_state.get(key)
    if current is None:
        current = [d for d in default if d in options]
    else:
        current = [c for c in current if c in options]
    if max_selections is not None:
        current = current[:max_selections]
    st.session_state[key] = current
    return where.multiselect(
        label,
        options,
        key=key,
        format_func=format_func,
        help=help,
        max_selections=max_selections,
    )


def slider(
    label: str,
    lo: float,
    hi: float,
    key: str,
    default: float,
    *,
    step: float | None = None,
    help: str | None = None,
    where: Any = None,
) -> Any:
    """A kept slider. A value out of the new range, or one left at the maximum when the maximum
    changes (all 4 channels of one layer, then a layer of 64), goes back to ``default``."""
    where = where or st
    key = _key(key)
    kind = float if any(isinstance(v, float) for v in (lo, hi, default, step)) else int
    lo, hi, default = kind(lo), kind(hi), kind(default)
    value = st.session_state.get(key)
    highs = st.session_state.setdefault("_vk_slider_hi", {})
    pinned = highs.get(key) not in (None, hi) and value == highs.get(key)
    highs[key] = hi
    if (
        pinned  # at the old maximum (e.g. every channel of a smaller layer): back to the default
        or not isinstance(value, (int, float))
        or not lo <= value <= hi
        or type(value) is not kind
    ):
        st.session_state[key] = min(max(default, lo), hi)
    step = kind(step) if step is not None else None
    return where.slider(label, lo, hi, key=key, step=step, help=help)


def number(
    label: str,
    key: str,
    default: float | None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    step: float | None = None,
    help: str | None = None,
    where: Any = None,
    kind: type | None = None,
) -> Any:
    """A number box; ``default=None`` makes an optional number (empty box = ``None``, which the
    box shows as "auto": the library's own choice, e.g. a patch sized to the image)."""
    where = where or st
    key = _key(key)
    kind = kind or (float if any(isinstance(v, float) for v in (lo, hi, default, step)) else int)
    cast = lambda v: None if v is None else kind(v)  # noqa: E731
    lo, hi, step, default = cast(lo), cast(hi), cast(step), cast(default)
    value = st.session_state.get(key)
    ok = isinstance(value, (int, float)) and type(value) is kind
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok and not (value is None and default is None and key in st.session_state):
        st.session_state[key] = default
    optional = {"value": None, "placeholder": "auto"} if default is None else {}
    return where.number_input(
        label,
        min_value=lo,
        max_value=hi,
        step=step,
        key=key,
        help=help,
        format="%g" if kind is float else "%d",
        **optional,
    )


def checkbox(
    label: str, key: str, default: bool, *, help: str | None = None, where: Any = None
) -> bool:
    where = where or st
    key = _key(key)
    if not isinstance(st.session_state.get(key), bool):
        st.session_state[key] = bool(default)
    return where.checkbox(label, key=key, help=help)


def text(label: str, key: str, default: str, *, help: str | None = None, where: Any = None) -> str:
    where = where or st
    key = _key(key)
    if not isinstance(st.session_state.get(key), str):
        st.session_state[key] = str(default)
    return where.text_input(label, key=key, help=help)


SLIDER_SPAN = 1000  # wider numeric ranges get a number box instead of a slider
NO_WIDGET_CHOICES = ("custom",)  # choices that need an array the dashboard cannot take


def param_widgets(
    method: Any,
    key_prefix: str,
    *,
    where: Any = None,
    skip: Sequence[str] = (),
    limits: dict[str, float] | None = None,
    columns: int = 1,
) -> dict[str, Any]:
    """Widgets generated from a registry method's typed parameters; returns ``{name: value}``.

    ``method`` is a :class:`vizkit.registry.MethodInfo`. ``limits`` lowers a numeric parameter's
    maximum (e.g. a patch size to the image size); ``columns`` spreads the widgets over that many
    columns. Parameters whose type has no widget (arrays, callables) keep their defaults and are
    not passed.
    """
    limits = limits or {}
    values: dict[str, Any] = {}
    shown = [p for p in method.params if p.name not in skip]
    places = (where or st).columns(columns) if columns > 1 else [where or st]
    for i, p in enumerate(shown):
        where = places[i % len(places)]
        key = f"{key_prefix}_{method.name}_{p.name}"
        label = p.label or p.name.replace("_", " ").capitalize()
        help_text = p.help or None
        if p.choices:
            choices = [c for c in p.choices if c not in NO_WIDGET_CHOICES] or list(p.choices)
            values[p.name] = select(label, choices, key, p.default, help=help_text, where=where)
        elif p.type is bool:
            values[p.name] = checkbox(label, key, bool(p.default), help=help_text, where=where)
        elif p.type in (int, float):
            hi = p.max
            if p.name in limits and (hi is None or limits[p.name] < hi):
                hi = limits[p.name]
            lo = p.min
            if p.default is None:  # the method chooses (e.g. sized to the image): "auto"
                values[p.name] = number(
                    label,
                    key,
                    None,
                    lo=lo,
                    hi=hi,
                    step=p.step,
                    help=help_text,
                    where=where,
                    kind=p.type,
                )
                continue
            default = p.type(p.default)
            if hi is not None:
                default = min(default, p.type(hi))
            if lo is not None and hi is not None and hi - lo <= SLIDER_SPAN:
                values[p.name] = slider(
                    label,
                    p.type(lo),
                    p.type(hi),
                    key,
                    default,
                    step=p.step,
                    help=help_text,
                    where=where,
                )
            else:
                values[p.name] = number(
                    label,
                    key,
                    default,
                    lo=lo,
                    hi=hi,
                    step=p.step,
                    help=help_text,
                    where=where,
                )
        elif p.type is str:
            values[p.name] = text(label, key, str(p.default or ""), help=help_text, where=where)
    return values


# --------------------------------------------------------------------------------------------
# Pickers shared by several pages
# --------------------------------------------------------------------------------------------
def class_label(index: int, class_names: Sequence[str] | None) -> str:
    if class_names and 0 <= index < len(class_names):
        return f"{index}: {class_names[index]}"
    return f"class {index}"


def target_picker(ctx: Any, key: str, *, where: Any = None) -> Any:
    """Which class to explain: ``"predicted"`` (default), ``"true"`` (known labels) or an int."""
    options: list[Any] = ["predicted"]
    if ctx.images is not None and ctx.images.labels is not None:
        options.append("true")
    options += list(range(ctx.facts.num_classes))
    names = ctx.class_names

    def label(option: Any) -> str:
        if option == "predicted":
            return "Predicted class (per image)"
        if option == "true":
            return "True class (per image)"
        return class_label(int(option), names)

    return select(
        "Target class",
        options,
        key,
        "predicted",
        format_func=label,
        where=where,
        help="The class whose evidence the maps show; see the top classes per image.",
    )


def layer_picker(
    candidates: Sequence[Any],
    key: str,
    *,
    label: str = "Layer",
    where: Any = None,
    help: str | None = None,
) -> str:
    """Pick among ``vizkit.candidate_layers`` results (shown with their size and receptive field)."""
    labels = {c.path: c.label for c in candidates}
    paths = list(labels)
    return select(
        label,
        paths,
        key,
        paths[0],
        format_func=lambda p: labels.get(p, p),
        where=where,
        help=help or "Ranked by how well the layer suits class activation maps (first = default).",
    )


def spatial_layer(
    ctx: Any,
    key: str,
    *,
    default: str | None = None,
    where: Any = None,
    help: str | None = None,
) -> str | None:
    """Pick a layer with a spatial output; None (after saying why) when the model has none."""
    layers = list(ctx.facts.spatial_layers)
    if not layers:
        st.error(
            "This model has no layer with a spatial (height x width x channels) output, so it "
            "has no feature maps or channels to show.",
            icon=":material/block:",
        )
        return None
    return select(
        "Layer",
        layers,
        key,
        default if default in layers else layers[0],
        where=where,
        help=help or "Any layer with a spatial output, nested models included (outer/inner).",
    )


def channel_picker(
    channels: int, key: str, *, many: bool = False, where: Any = None, default: int = 8
) -> Any:
    """One channel (a number box) or several (a multiselect, the first ``default`` preselected)."""
    if many:
        options = list(range(channels))
        return multiselect("Channels", options, key, options[: min(channels, default)], where=where)
    return number(f"Channel (0-{channels - 1})", key, 0, lo=0, hi=channels - 1, step=1, where=where)


def long_job_button(label: str, key: str, job_key: str, *, help: str | None = None) -> bool:
    """A button that starts long work; True when pressed or when the job ran before."""
    from dashboards import work

    pressed = st.button(label, key=key, type="primary", icon=":material/play_arrow:", help=help)
    return pressed or work.finished(job_key) is not None or work.running(job_key)


CMAPS = ("auto", "jet", "viridis", "inferno", "magma", "turbo", "RdBu_r", "bwr", "gray")


def display_options(prefix: str, *, where: Any = None, overlay: bool = True) -> dict[str, Any]:
    """Display controls for attribution maps: kind, colour scale, colour map, opacity, clipping."""
    where = where or st
    with where.expander("Display", expanded=True):
        cols = st.columns(3)
        kinds = ["auto", "overlay", "heatmap", "masked"] if overlay else ["heatmap"]
        kind = select(
            "Show maps as",
            kinds,
            f"{prefix}_kind",
            kinds[0],
            where=cols[0],
            radio=True,
            format_func=str.capitalize,
            help="Auto: pixel-level gradient maps as heatmap panels (speckle over a photo reads "
            "as noise), smooth maps (CAMs, occlusion) over the image.",
        )
        shared = (
            select(
                "Colour scale",
                ["panel", "shared"],
                f"{prefix}_scale",
                "panel",
                where=cols[1],
                radio=True,
                format_func={"panel": "Per panel", "shared": "Shared per row"}.get,
            )
            == "shared"
        )
        sign = select(
            "Values",
            ["auto", "absolute", "signed"],
            f"{prefix}_sign",
            "auto",
            where=cols[2],
            radio=True,
            format_func=str.capitalize,
            help="Auto: signed maps keep their sign, others show magnitude.",
        )
        cols = st.columns(3)
        cmap = select("Colour map", list(CMAPS), f"{prefix}_cmap", "auto", where=cols[0])
        alpha = slider(
            "Overlay opacity", 0.0, 1.0, f"{prefix}_alpha", 0.5, step=0.05, where=cols[1]
        )
        clip = slider(
            "Clip at percentile",
            90.0,
            100.0,
            f"{prefix}_clip",
            99.5,
            step=0.5,
            where=cols[2],
            help="Values above this percentile saturate the colours.",
        )
    return {
        "kind": kind,
        "shared": shared,
        "absolute": {"auto": None, "absolute": True, "signed": False}[sign],
        "cmap": None if cmap == "auto" else cmap,
        "alpha": float(alpha),
        "clip": None if clip >= 100 else float(clip),
    }


def fragment_marker(name: str) -> None:
    """Count this fragment's runs in the page (the latency bench waits for the number to grow)."""
    key = f"_vk_fragment_{name}"
    runs = st.session_state[key] = st.session_state.get(key, 0) + 1
    st.html(f'<div id="vk-fragment-{name}" data-run="{runs}" style="display:none"></div>')
