"""The sidebar: choose a model (sample, start-up file or upload) and the images to explain.

It runs in ``app.py`` before every page, so its widgets keep their values on every page. Uploads
belong to this browser session (:mod:`dashboards.sessions`); another session never sees them, and
they are forgotten when the session ends. When the model changes, the image source goes back to
that model's own default (its sample images, or uploads), never another model's leftovers, and
the input options go back to what vizkit decides for it.

The input contract is shown and can be changed here: the **input scale** (what
``vizkit.input_spec`` detected, or a stated convention), how images of another **aspect ratio**
are fitted, and **class names** (the model's own, ImageNet's for a 1000-way head, or an uploaded
labels file). The images are decoded in a worker with these choices, and vizkit's sanity
findings (``vizkit.check_inputs``) on the selected images show below them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import streamlit as st

import vizkit
from dashboards import caches, entries, images, jobs, work
from dashboards import widgets as w
from dashboards.context import Context
from dashboards.display import error_message
from dashboards.sessions import SessionData
from dashboards.settings import MAX_IMAGE_FILES, MAX_SELECTED_IMAGES, Settings
from vizkit.errors import UnsafeModelError

NEXT_MODEL = "vk_select_next_model"
UPLOAD = ("upload", "")
DETECTED = "detected"
#: Input scales the sidebar offers besides the detected one (caffe and torch need RGB).
SCALES = {
    "0-1": "0-1",
    "0-255": "0-255 (raw pixels)",
    "-1-1": "-1 to 1",
    "caffe": "caffe (BGR, ImageNet mean subtracted)",
    "torch": "torch (ImageNet mean and std on 0-1)",
}
RESIZES = {"stretch": "Stretch (Keras' default)", "crop": "Centre crop", "pad": "Pad with black"}
_WHO = {"detected": "Detected", "sample": "Sample metadata", "default": "Default", "user": "Stated"}
MAX_LABELS_MB = 4


def _startup(conf: Settings, data: SessionData) -> tuple[entries.ModelEntry | None, str | None]:
    """The start-up model's entry, or the reason it was refused (asked once per session)."""
    if data.startup is None:
        try:
            data.startup = (entries.startup_entry(conf), None)
        except Exception as err:  # noqa: BLE001 - shown as one line
            data.startup = (None, error_message(err, "Loading the start-up model"))
    return data.startup


def _entries(startup: entries.ModelEntry | None, data: SessionData) -> dict[str, Any]:
    found: dict[str, entries.ModelEntry] = {}
    if startup is not None:
        found[startup.key] = startup
    for entry in entries.sample_entries():
        found.setdefault(entry.key, entry)
    for upload in data.models.values():
        found[upload.entry.key] = upload.entry
    return found


def _handle_model_upload(conf: Settings, uploaded: Any, data: SessionData) -> None:
    """Check and load a newly uploaded model file once; remember why it was refused."""
    if uploaded is None:
        data.refusal = None
        return
    raw = uploaded.getvalue()
    stamp = (uploaded.name, hashlib.sha256(raw).hexdigest())
    if data.seen_upload == stamp:
        return
    data.seen_upload = stamp
    try:
        with st.spinner(f"Checking {uploaded.name}..."):
            entry = entries.accept_upload(data, uploaded.name, raw, conf)
    except Exception as err:  # noqa: BLE001 - refused files show a one-line reason
        reason = error_message(err, "Loading the model")
        if isinstance(err, UnsafeModelError):
            reason += " (the dashboard never runs code from a model file)"
        data.refusal = f"{uploaded.name} was refused: {reason}"
        return
    data.refusal = None
    st.session_state[NEXT_MODEL] = entry.key
    st.rerun()


def render(conf: Settings) -> Context | None:
    data = caches.session()
    sb = st.sidebar
    if NEXT_MODEL in st.session_state:  # set before the picker exists in this run
        st.session_state[w.KEEP + "model"] = st.session_state.pop(NEXT_MODEL)

    sb.header("Model")
    startup, problem = _startup(conf, data)
    if problem:
        sb.error(problem, icon=":material/error:")
    found = _entries(startup, data)
    keys = list(found)
    chosen = None
    if keys:
        chosen = w.select(
            "Model to inspect",
            keys,
            "model",
            default=keys[0],
            format_func=lambda k: found[k].label if k in found else k,
            where=sb,
            help="A sample model, the model the server was started with, or one you uploaded.",
        )
    with sb.expander("Upload a model", expanded=not keys):
        uploaded = st.file_uploader(
            f"A .keras or .h5 file (up to {conf.upload_mb} MB)",
            type=["keras", "h5", "hdf5"],
            key="vk_model_upload",
            max_upload_size=conf.upload_mb,
            help="Checked and loaded with vizkit's safe loader in a separate process: files "
            "that would run code are refused.",
        )
        _handle_model_upload(conf, uploaded, data)
    if data.refusal:
        sb.error(data.refusal, icon=":material/block:")
    if data.notice:
        sb.info(data.notice, icon=":material/info:")
    if chosen is None:
        sb.info("Upload a model file to begin.")
        return None

    entry = found[chosen]
    try:
        facts = entries.facts(entry)
    except Exception as err:  # noqa: BLE001 - shown as one line
        sb.error(
            f"{entry.label}: {error_message(err, 'Loading the model')}", icon=":material/error:"
        )
        return None
    ctx = Context(entry=entry, facts=facts)
    if facts.image_model:
        _images(ctx, sb, conf, data)
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


def _source(ctx: Context, sb: Any) -> tuple[str, str]:
    """The image source picker; it starts at the model's default whenever the model changes."""
    import vizkit

    options = [("sample", ctx.sample)] if ctx.sample else []
    options.append(UPLOAD)
    options += [("sample", s) for s in vizkit.sample_names() if s != ctx.sample]
    if st.session_state.get("_vk_source_model") != ctx.key:
        st.session_state["_vk_source_model"] = ctx.key
        st.session_state.pop(w.KEEP + "image_source", None)

    def label(option: tuple[str, str]) -> str:
        if option == UPLOAD:
            return "Upload images"
        if option[1] == ctx.sample:
            return "Sample images (with true labels)"
        return f"Images of sample {option[1]} (converted)"

    return w.select(
        "Image source", options, "image_source", default=options[0], format_func=label, where=sb
    )


def _reset_on_model_change(ctx: Context) -> None:
    """Input options start at what vizkit decides for each model."""
    if st.session_state.get("_vk_input_model") != ctx.key:
        st.session_state["_vk_input_model"] = ctx.key
        for key in ("input_scale", "resize"):
            st.session_state.pop(w.KEEP + key, None)


def _input_options(ctx: Context, sb: Any) -> None:
    """Input scale, aspect ratio and class names: set on ``ctx`` and shown in the sidebar."""
    _reset_on_model_change(ctx)
    detected = ctx.facts.input_spec
    channels = (ctx.facts.input_shape or (None,))[-1]
    options = [DETECTED] + [k for k in SCALES if channels == 3 or k not in ("caffe", "torch")]

    def label(option: str) -> str:
        if option == DETECTED:
            return f"{_WHO[detected.source]}: {detected.label}"
        return SCALES[option]

    choice = w.select(
        "Input scale",
        options,
        "input_scale",
        default=DETECTED,
        format_func=label,
        where=sb,
        help="What raw pixels the model expects. vizkit reads Rescaling / Normalization layers at "
        "the model's input (and sample models' metadata); choose another scale if the model's "
        "preprocessing happens outside it (keras.applications ResNet/VGG: caffe; MobileNetV2, "
        "Xception, Inception: -1 to 1; DenseNet: torch).",
    )
    if choice != DETECTED:
        ctx.input_spec = vizkit.InputSpec.named(choice, source="user")
    sb.caption(f"Input scale used: {ctx.spec.describe()}")
    ctx.resize = w.select(
        "Aspect ratio",
        list(RESIZES),
        "resize",
        default="stretch",
        format_func=RESIZES.get,
        where=sb,
        help="How an image whose aspect ratio differs from the model's input is fitted: "
        "stretched to the size (Keras' loaders' default), centre-cropped to the model's aspect "
        "ratio, or padded with black borders.",
    )
    _labels(ctx, sb)


def _labels(ctx: Context, sb: Any) -> None:
    """An uploaded labels file names the classes (one per line, or JSON)."""
    with sb.expander("Class names"):
        uploaded = st.file_uploader(
            "Labels file: one name per line, or JSON (list or {index: name})",
            type=["txt", "json", "csv", "names", "labels"],
            key="vk_labels_" + hashlib.sha256(ctx.key.encode()).hexdigest()[:12],
            max_upload_size=MAX_LABELS_MB,
            help="Names the model's output classes in every title and table.",
        )
        problem = None
        if uploaded is not None:
            try:
                names = vizkit.read_class_names(uploaded.getvalue())
                if len(names) != ctx.facts.num_classes:
                    raise vizkit.InputError(
                        f"{uploaded.name} names {len(names)} classes, but the model has "
                        f"{ctx.facts.num_classes}: give one name per output class"
                    )
                ctx.labels = names
            except vizkit.VizkitError as err:
                problem = error_message(err, "Reading the labels")
        if problem:
            st.error(problem, icon=":material/block:")
        st.caption(_names_source(ctx, uploaded))


def _names_source(ctx: Context, uploaded: Any) -> str:
    if ctx.labels:
        return f"Class names: from {uploaded.name} ({len(ctx.labels)})."
    names = ctx.facts.class_names
    if names and ctx.sample:
        return f"Class names: the sample model's ({len(names)})."
    if names and len(names) == 1000:
        return "Class names: ImageNet's (the model has a 1000-way head)."
    if names:
        return f"Class names: the model's ({len(names)})."
    return "No class names: classes show as numbers. Upload a labels file to name them."


def _findings(ctx: Context, sb: Any) -> None:
    """vizkit's sanity findings on the selected images (the ones the API warns about)."""
    try:
        found = work.input_findings(ctx)
    except Exception as err:  # noqa: BLE001 - shown as one line
        sb.caption(error_message(err, "Checking the inputs"))
        return
    for message in found or ():
        sb.warning(message, icon=":material/warning:")


def _images(ctx: Context, sb: Any, conf: Settings, data: SessionData) -> None:
    sb.header("Images")
    _input_options(ctx, sb)
    source = _source(ctx, sb)
    pool = None
    if source == UPLOAD:
        files = sb.file_uploader(
            f"Images (PNG, JPEG, BMP, GIF, WebP, TIFF; up to {MAX_IMAGE_FILES} files of "
            f"{conf.image_mb} MB)",
            type=list(images.IMAGE_TYPES),
            accept_multiple_files=True,
            key="vk_image_upload",
            help="Converted to the model's input size and channels.",
            max_upload_size=conf.image_mb,
        )
        if not files:
            return
        with st.spinner("Reading the images..."):
            pool, pool_key, refused = images.uploaded_pool(
                ctx, data, [(f.name, f.getvalue()) for f in files]
            )
        for line in refused:
            sb.error(f"Refused {line}", icon=":material/block:")
    else:
        pool = images.sample_pool(ctx, source[1])
        pool_key = jobs.make_key(ctx.key, *source, ctx.spec.label, ctx.resize)
    if pool is None or len(pool) == 0:
        return
    if ctx.class_names and pool.class_names != tuple(ctx.class_names):
        pool = dataclasses.replace(pool, class_names=tuple(ctx.class_names))
        pool_key = jobs.make_key(pool_key, "names", tuple(ctx.class_names))
    ctx.pool, ctx.pool_key = pool, pool_key
    picked = w.multiselect(
        "Images to explain",
        list(range(len(pool))),
        f"images_{pool_key[:12]}",
        default=_default_picks(pool),
        format_func=lambda i: _image_label(pool, i),
        max_selections=MAX_SELECTED_IMAGES,
        where=sb,
        help=f"Up to {MAX_SELECTED_IMAGES} images; rows of the attribution grid.",
    )
    if picked:
        picked = sorted(picked)
        ctx.images = pool[picked]
        ctx.images_key = jobs.make_key(pool_key, tuple(picked))
        sb.image(
            list(ctx.images.originals),
            caption=[_image_label(pool, i) for i in picked],
            width=64,
        )
        _findings(ctx, sb)
