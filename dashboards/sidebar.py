"""The sidebar: choose a model (sample, start-up file or upload) and the images to explain.

It runs in ``app.py`` before every page, so its widgets keep their values on every page. Uploaded
files stay in this session's ``st.session_state``; another browser session never sees them.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import state
from dashboards import widgets as w
from vizkit.errors import UnsafeModelError, VizkitError

NEXT_MODEL = "vk_select_next_model"


def _startup(conf: state.Settings) -> tuple[state.ModelEntry | None, str | None]:
    """The start-up model's entry (loaded once per session), or the reason it was refused."""
    if "vk_startup" not in st.session_state:
        try:
            entry, problem = state.startup_entry(conf), None
        except Exception as err:  # noqa: BLE001 - shown as one line
            entry, problem = None, w.error_message(err, "Loading the start-up model")
        st.session_state["vk_startup"] = (entry, problem)
    return st.session_state["vk_startup"]


def _entries(startup: state.ModelEntry | None) -> dict[str, state.ModelEntry]:
    entries: dict[str, state.ModelEntry] = {}
    if startup is not None:
        entries[startup.key] = startup
    for name in state.sample_names():
        entry = state.sample_entry(name)
        entries.setdefault(entry.key, entry)
    entries.update(st.session_state.get("vk_uploads", {}))
    return entries


def _handle_model_upload(conf: state.Settings, uploaded: Any) -> None:
    """Load a newly uploaded model file once; remember the refusal reason if refused."""
    if uploaded is None:
        st.session_state.pop("vk_model_refusal", None)
        return
    data = uploaded.getvalue()
    stamp = (uploaded.name, state.digest(data))
    if st.session_state.get("vk_model_seen") == stamp:
        return
    st.session_state["vk_model_seen"] = stamp
    try:
        entry = state.load_model_file(uploaded.name, data, conf.max_upload_bytes)
    except Exception as err:  # noqa: BLE001 - refused files show a one-line reason
        reason = w.error_message(err, "Loading the model")
        if isinstance(err, UnsafeModelError):
            reason += " (the dashboard never runs code from a model file)"
        st.session_state["vk_model_refusal"] = f"{uploaded.name} was refused: {reason}"
        return
    st.session_state.pop("vk_model_refusal", None)
    st.session_state.setdefault("vk_model_bytes", {})[entry.key] = data
    st.session_state.setdefault("vk_uploads", {})[entry.key] = entry
    st.session_state[NEXT_MODEL] = entry.key
    st.rerun()


def render(conf: state.Settings) -> state.Context | None:
    sb = st.sidebar
    if NEXT_MODEL in st.session_state:  # set before the picker exists in this run
        st.session_state[w.KEEP + "model"] = st.session_state.pop(NEXT_MODEL)

    sb.header("Model")
    startup, problem = _startup(conf)
    if problem:
        sb.error(problem, icon=":material/error:")
    entries = _entries(startup)
    keys = list(entries)
    chosen = None
    if keys:
        chosen = w.select(
            "Model to inspect",
            keys,
            "model",
            default=keys[0],
            format_func=lambda k: entries[k].label if k in entries else k,
            where=sb,
            help="A sample model, the model the server was started with, or one you uploaded.",
        )
    with sb.expander("Upload a model", expanded=not keys):
        uploaded = st.file_uploader(
            f"A .keras or .h5 file (up to {conf.max_upload_mb} MB)",
            type=["keras", "h5", "hdf5"],
            key="vk_model_upload",
            max_upload_size=conf.max_upload_mb,
            help="Loaded with vizkit's safe loader: files that would run code are refused.",
        )
        _handle_model_upload(conf, uploaded)
    refusal = st.session_state.get("vk_model_refusal")
    if refusal:
        sb.error(refusal, icon=":material/block:")
    if chosen is None:
        sb.info("Upload a model file to begin.")
        return None

    entry = entries[chosen]
    try:
        model = state.model_for(entry)
    except VizkitError as err:
        sb.error(f"{entry.label}: {w.error_message(err)}", icon=":material/error:")
        return None
    ctx = state.Context(entry=entry, model=model)
    info = state.model_info(entry.key, model)
    if info.get("image_model"):
        _images(ctx, sb)
    else:
        sb.warning("This model does not take images, so there are no images to choose.")
    return ctx


def _image_label(batch: Any, i: int) -> str:
    name = batch.names[i] if batch.names else f"image {i}"
    if batch.labels is not None:
        label = int(batch.labels[i])
        names = batch.class_names
        true = names[label] if names and label < len(names) else str(label)
        return name if f"({true})" in name else f"{name} (true: {true})"
    return name


def _default_picks(batch: Any, limit: int = 4) -> list[int]:
    if batch.labels is None:
        return list(range(min(limit, len(batch))))
    picks, seen = [], set()
    for i, label in enumerate(batch.labels):
        if int(label) not in seen:
            picks.append(i)
            seen.add(int(label))
        if len(picks) >= limit:
            break
    return picks


def _images(ctx: state.Context, sb: Any) -> None:
    sb.header("Images")
    samples = state.sample_names()
    options = []
    if ctx.sample:
        options.append(f"sample:{ctx.sample}")
    options.append("upload")
    options += [f"sample:{s}" for s in samples if s != ctx.sample]

    def label(option: str) -> str:
        if option == "upload":
            return "Upload images"
        name = option.split(":", 1)[1]
        if name == ctx.sample:
            return "Sample images (with true labels)"
        return f"Images of sample {name} (converted)"

    source = w.select(
        "Image source", options, "image_source", default=options[0], format_func=label, where=sb
    )
    pool = None
    if source == "upload":
        files = sb.file_uploader(
            "Images (PNG, JPEG, BMP, GIF, WebP, TIFF; any size or mode)",
            type=list(state.IMAGE_TYPES),
            accept_multiple_files=True,
            key="vk_image_upload",
            help="Converted to the model's input size and channels.",
            max_upload_size=state.MAX_IMAGE_MB,
        )
        if files:
            pool, refused = state.images_from_uploads(
                ctx.key, ctx.model, [(f.name, f.getvalue()) for f in files]
            )
            for line in refused:
                sb.error(f"Refused {line}", icon=":material/block:")
        source_key = "upload:" + ",".join(state.digest(f.getvalue()) for f in files or [])
    else:
        sample = source.split(":", 1)[1]
        pool = state.images_for_model(ctx.key, ctx.model, sample)
        source_key = source
    if pool is None or len(pool) == 0:
        return
    ctx.pool = pool
    ctx.pool_key = state.make_key(ctx.key, source_key)
    indices = list(range(len(pool)))
    picked = w.multiselect(
        "Images to explain",
        indices,
        f"images_{state.make_key(ctx.key, source_key)[:12]}",
        default=_default_picks(pool),
        format_func=lambda i: _image_label(pool, i),
        max_selections=state.MAX_SELECTED_IMAGES,
        where=sb,
        help=f"Up to {state.MAX_SELECTED_IMAGES} images; rows of the attribution grid.",
    )
    if picked:
        picked = sorted(picked)
        ctx.images = pool[picked]
        ctx.images_key = state.make_key(ctx.pool_key, tuple(picked))
        sb.image(
            [o for o in ctx.images.originals],
            caption=[_image_label(pool, i) for i in picked],
            width=64,
        )
