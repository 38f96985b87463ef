"""Widgets and display helpers shared by the dashboard pages.

- :func:`page` runs a page body inside :func:`guard`, which turns every failure into a one-line
  ``st.error`` (no traceback ever reaches the browser; details go to the server log).
- Page widgets are created through the helpers here (:func:`select`, :func:`slider`, ...). Their
  keys start with ``keep_`` and :func:`keep_widget_state` (called by ``app.py`` on every run)
  stops Streamlit from dropping their values while another page is shown, so settings survive
  page switches. Each helper validates the stored value against the current options (a layer
  picked for another model falls back to the default).
- :func:`show_figure`, :func:`show_table` and :func:`download_npz` render results and offer them
  as PNG + PDF, CSV and NPZ downloads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import streamlit as st

from vizkit.errors import VizkitError, one_line

log = logging.getLogger("vizkit.dashboard")
KEEP = "keep_"
DISPLAY_DPI = 110


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
def error_message(err: BaseException, what: str = "This view") -> str:
    """The one line shown for ``err``: vizkit's own sentence, or a short generic reason."""
    if isinstance(err, VizkitError):
        return one_line(str(err))
    if isinstance(err, MemoryError):
        return f"{what} ran out of memory: choose fewer images, a smaller layer or fewer steps."
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:  # e.g. TensorFlow's "in user code:" preamble
        first = lines[-1]
    first = one_line(first)
    if len(first) > 180:
        first = first[:177] + "..."
    reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return (
        f"{what} failed ({reason}). Try other settings or another model; "
        "the server log has the details."
    )


@contextlib.contextmanager
def guard(what: str = "This view") -> Iterator[None]:
    """Show any exception as one ``st.error`` line. Streamlit's rerun/stop signals pass through."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - this is the last line of defence
        if not isinstance(err, VizkitError):
            log.exception("dashboard error in %s", what)
        st.error(error_message(err, what), icon=":material/error:")


def page(title: str, body: Callable[[Any], None], *, needs_images: bool = False) -> None:
    """Standard page frame: title, context checks, and the body inside :func:`guard`."""
    from dashboards import state

    st.title(title)
    with guard(f"The {title} page"):
        ctx = state.context()
        if ctx is None:
            st.info("Choose a model in the sidebar to begin.", icon=":material/arrow_back:")
            return
        if needs_images:
            info = state.model_info(ctx.key, ctx.model)
            if not info["image_model"]:
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
    where = where or st
    key = _key(key)
    kind = float if any(isinstance(v, float) for v in (lo, hi, default, step)) else int
    lo, hi, default = kind(lo), kind(hi), kind(default)
    value = st.session_state.get(key)
    if not isinstance(value, (int, float)) or not lo <= value <= hi or type(value) is not kind:
        st.session_state[key] = min(max(default, lo), hi)
    step = kind(step) if step is not None else None
    return where.slider(label, lo, hi, key=key, step=step, help=help)


def number(
    label: str,
    key: str,
    default: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    step: float | None = None,
    help: str | None = None,
    where: Any = None,
) -> Any:
    where = where or st
    key = _key(key)
    kind = float if any(isinstance(v, float) for v in (lo, hi, default, step)) else int
    cast = lambda v: None if v is None else kind(v)  # noqa: E731
    lo, hi, step, default = cast(lo), cast(hi), cast(step), kind(default)
    value = st.session_state.get(key)
    ok = isinstance(value, (int, float)) and type(value) is kind
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        st.session_state[key] = default
    return where.number_input(
        label,
        min_value=lo,
        max_value=hi,
        step=step,
        key=key,
        help=help,
        format="%g" if kind is float else "%d",
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
) -> dict[str, Any]:
    """Widgets generated from a registry method's typed parameters; returns ``{name: value}``.

    ``method`` is a :class:`vizkit.registry.MethodInfo`. ``limits`` lowers a numeric parameter's
    maximum (e.g. a patch size to the image size). Parameters whose type has no widget (arrays,
    callables) keep their defaults and are not passed.
    """
    where = where or st
    limits = limits or {}
    values: dict[str, Any] = {}
    for p in method.params:
        if p.name in skip:
            continue
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
            default = p.type(p.default if p.default is not None else (lo or 0))
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
# Showing and downloading results
# --------------------------------------------------------------------------------------------
def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"


_FIGURE_LOCK = threading.Lock()


def figure_bytes(fig: Any, fmt: str, dpi: float | None = None) -> bytes:
    """Encode a figure (one encoding at a time: cached figures are shared between sessions)."""
    from vizkit.plotting.figures import DEFAULT_DPI
    from vizkit.plotting.figures import figure_bytes as encode

    with _FIGURE_LOCK:
        return encode(fig, fmt, dpi=dpi or DEFAULT_DPI)


def show_figure(
    figure: Any,
    name: str,
    *,
    key: Any = None,
    caption: str | None = None,
    where: Any = None,
    width: Any = "content",
) -> bytes:
    """Show a matplotlib Figure as an image with PNG and PDF downloads; return the shown PNG.

    ``figure`` is a Figure, or a function that builds one; with a ``key`` (anything that names
    the figure's content completely) the built figure and its PNG are cached, so reruns that do
    not change the picture cost nothing. The figure is shown at its natural size (never wider
    than the page); downloads are rendered on click: a 300 dpi PNG and a vector PDF.
    """
    from dashboards import state

    where = where or st

    def build() -> Any:
        return figure() if callable(figure) else figure

    if key is not None:
        fig, png = state.figure(
            state.make_key(name, key), build, lambda f: figure_bytes(f, "png", DISPLAY_DPI)
        )
    else:
        fig = build()
        png = figure_bytes(fig, "png", DISPLAY_DPI)
    where.image(png, caption=caption, width=width)
    stem = slug(name)
    row = where.container(horizontal=True)
    row.download_button(
        "PNG",
        data=lambda: figure_bytes(fig, "png"),
        file_name=f"{stem}.png",
        mime="image/png",
        key=f"dl_{stem}_png",
        on_click="ignore",
        icon=":material/download:",
    )
    row.download_button(
        "PDF",
        data=lambda: figure_bytes(fig, "pdf"),
        file_name=f"{stem}.pdf",
        mime="application/pdf",
        key=f"dl_{stem}_pdf",
        on_click="ignore",
        icon=":material/download:",
    )
    return png


def show_table(
    frame: Any, name: str, *, where: Any = None, height: Any = "auto", **kwargs: Any
) -> None:
    """A sortable table with a CSV download."""
    where = where or st
    where.dataframe(frame, height=height, **kwargs)
    stem = slug(name)
    where.download_button(
        "CSV",
        data=frame.to_csv(index=False).encode(),
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=f"dl_{stem}_csv",
        on_click="ignore",
        icon=":material/download:",
    )


def download_npz(
    arrays: dict[str, Any], name: str, *, label: str = "Maps (NPZ)", where: Any = None
) -> None:
    where = where or st
    stem = slug(name)

    def encode() -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{slug(k): np.asarray(v) for k, v in arrays.items()})
        return buffer.getvalue()

    where.download_button(
        label,
        data=encode,
        file_name=f"{stem}.npz",
        mime="application/octet-stream",
        key=f"dl_{stem}_npz",
        on_click="ignore",
        icon=":material/download:",
    )


def new_figure(width: float, height: float) -> Any:
    from vizkit.plotting.figures import new_figure as make

    return make(width, height)


def on_axes(width: float, height: float, draw: Callable[[Any], Any]) -> Callable[[], Any]:
    """A figure builder: a new ``width`` x ``height`` figure with one axes that ``draw`` fills."""

    def build() -> Any:
        fig = new_figure(width, height)
        draw(fig.add_subplot())
        return fig

    return build


def class_label(index: int, class_names: Sequence[str] | None) -> str:
    if class_names and 0 <= index < len(class_names):
        return f"{index}: {class_names[index]}"
    return f"class {index}"


def draw_confusion(
    ax: Any, matrix: Any, class_names: Sequence[str], normalize: bool = False
) -> Any:
    """A confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    n = len(matrix)
    ticks = np.arange(n)
    names = [str(c) for c in class_names] if len(class_names) == n else [str(i) for i in ticks]
    ax.set_xticks(ticks, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    threshold = shown.max() / 2 if shown.size else 0
    if n <= 20:
        for i in range(n):
            for j in range(n):
                value = f"{shown[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
                colour = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, value, ha="center", va="center", color=colour, fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


# --------------------------------------------------------------------------------------------
# Pickers shared by several pages
# --------------------------------------------------------------------------------------------
def target_picker(
    ctx: Any, class_names: Sequence[str] | None, key: str, *, where: Any = None
) -> Any:
    """Which class to explain: ``"predicted"`` (default), ``"true"`` (known labels) or an int."""
    from dashboards import state

    count = state.model_info(ctx.key, ctx.model).get("num_classes") or 0
    options: list[Any] = ["predicted"]
    if ctx.images is not None and ctx.images.labels is not None:
        options.append("true")
    options += list(range(int(count)))

    def label(option: Any) -> str:
        if option == "predicted":
            return "Predicted class (per image)"
        if option == "true":
            return "True class (per image)"
        return class_label(int(option), class_names)

    return select(
        "Target class",
        options,
        key,
        "predicted",
        format_func=label,
        where=where,
        help="The class whose evidence the maps show; see the top classes per image below.",
    )


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def layer_label(item: Any) -> str:
    """``path · 7x7x64 · RF 15x15`` for a candidate layer."""
    path = item if isinstance(item, str) else _field(item, "path")
    if isinstance(item, str):
        return path
    if isinstance(getattr(item, "label", None), str):
        return item.label
    parts = [path]
    shape = _field(item, "shape") or _field(item, "output_shape")
    height, width = _field(item, "height"), _field(item, "width")
    channels = _field(item, "channels")
    if height is not None and width is not None:
        parts.append(f"{height}x{width}" + (f"x{channels}" if channels is not None else ""))
    elif shape:
        parts.append("x".join("?" if d is None else str(d) for d in tuple(shape)[-3:]))
    rf = _field(item, "receptive_field")
    if rf is not None:
        size = _field(rf, "size", rf)
        try:
            parts.append(f"RF {float(size[0]):g}x{float(size[1]):g}")
        except (TypeError, IndexError, ValueError):
            parts.append(f"RF {rf}")
    return " · ".join(parts)


def layer_picker(
    candidates: Sequence[Any],
    key: str,
    *,
    label: str = "Layer",
    where: Any = None,
    help: str | None = None,
) -> str:
    """Pick a layer among candidates (paths or objects with ``path``); returns the path."""
    paths = [c if isinstance(c, str) else _field(c, "path") for c in candidates]
    labels = {p: layer_label(c) for p, c in zip(paths, candidates)}
    return select(
        label,
        paths,
        key,
        paths[0],
        format_func=lambda p: labels.get(p, p),
        where=where,
        help=help or "Ranked by how well the layer suits class activation maps (first = default).",
    )


CMAPS = ("auto", "jet", "viridis", "inferno", "magma", "turbo", "RdBu_r", "bwr", "gray")


def display_options(prefix: str, *, where: Any = None, overlay: bool = True) -> dict[str, Any]:
    """Display controls for attribution maps: kind, colour scale, colour map, opacity, clipping."""
    where = where or st
    with where.expander("Display", expanded=True):
        cols = st.columns(3)
        kinds = ["overlay", "heatmap", "masked"] if overlay else ["heatmap"]
        kind = select(
            "Show maps as",
            kinds,
            f"{prefix}_kind",
            kinds[0],
            where=cols[0],
            radio=True,
            format_func=str.capitalize,
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
