"""``vizkit.scan``: stream a dataset through a model and attribution methods into a store.

The local engine decodes the next chunks on a thread pool while the current one runs through
the model's compiled functions, writes each chunk as soon as it is done (so a kill loses at most
the chunk in flight), and keeps memory flat: at most ``prefetch + 1`` chunks are alive. The Ray
engine (:mod:`vizkit.scanning.ray_engine`) runs the same :class:`~vizkit.scanning.compute.Scanner`
on an actor pool and writes the same store.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.scanning.compute import (
    MAP_DTYPES,
    MASK_METRICS,
    METRICS,
    MethodSpec,
    Scanner,
    Settings,
    key_of,
    map_shape,
    parse_methods,
)
from vizkit.scanning.memory import DatasetSource
from vizkit.scanning.sources import LoadedChunk, make_source, prefetched
from vizkit.scanning.store import StoreWriter, done_chunks, finish

ENGINES = ("local", "ray")
CHUNK_IMAGES = 256  # default images per chunk (the unit of resume), a multiple of the batch


def _progress_sink(progress: Any, total: int | None, initial: int) -> tuple[Callable, Callable]:
    """``(update(n), close())`` for ``progress``: True (tqdm), False, or ``fn(done, total)``."""
    if callable(progress):
        state = {"done": initial}
        progress(initial, total)

        def update(n: int) -> None:
            state["done"] += n
            progress(state["done"], total)

        return update, lambda: None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=initial, unit="img", desc="vizkit scan", smoothing=0.1)
        return bar.update, bar.close
    return (lambda n: None), (lambda: None)


def _resolve_settings(
    model: Any,
    resolved: Any,
    *,
    targets: str | None,
    metrics: Sequence[str] | str | None,
    metric_params: Mapping[str, Mapping[str, Any]] | None,
    border: float,
    map_size: int | Sequence[int] | None,
    map_dtype: str,
    store_images: bool,
    value_range: Sequence[float] | str | None,
    seed: int,
    has_masks: bool,
    preprocess: str | None = None,
) -> Settings:
    from vizkit.inputs import model_image_shape

    height, width, channels = model_image_shape(model)
    if height is None or width is None:
        raise InputError(
            "scan needs a model with a fixed input size (height, width): this model accepts "
            "any size; wrap it with a fixed keras.Input"
        )
    if targets not in (None, "predicted", "label"):
        raise InputError(f"targets={targets!r}: choose None (the predicted class) or 'label'")
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = tuple(metrics or ())
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric {unknown[0]!r}: choose from {', '.join(METRICS)}")
    if any(m in MASK_METRICS for m in metrics) and not has_masks:
        raise InputError(
            f"metrics {', '.join(m for m in metrics if m in MASK_METRICS)} need object masks: "
            "pass masks= (a folder mirroring the images, or an array) or boxes="
        )
    if map_dtype not in MAP_DTYPES:
        raise InputError(f"map_dtype={map_dtype!r}: choose float16 or float32")
    size = None
    if map_size is not None:
        size = (
            (int(map_size), int(map_size))
            if np.ndim(map_size) == 0
            else tuple(int(v) for v in map_size)
        )
        if len(size) != 2 or min(size) < 1 or size[0] > height or size[1] > width:
            raise InputError(
                f"map_size={map_size!r}: give one side or (height, width) no larger than the "
                f"input ({height}, {width})"
            )
    if not 0.0 < float(border) < 0.5:
        raise InputError(f"border={border!r} must be a share of the side in (0, 0.5)")
    from vizkit.detection import input_spec

    spec = input_spec(model, value_range=value_range, preprocess=preprocess)
    if not spec.linear_map:
        raise InputError(
            f"scan takes linear input scales only (value_range=(low, high), '0-1', '0-255', "
            f"'-1-1'), not {spec.label!r}: scan arrays you preprocessed yourself instead"
        )
    lo, hi = spec.value_range
    return Settings(
        targets="label" if targets == "label" else "predicted",
        metrics=metrics,
        metric_params={k: dict(v) for k, v in (metric_params or {}).items()},
        border=float(border),
        map_size=size,
        map_dtype=map_dtype,
        store_images=bool(store_images),
        value_range=(lo, hi),
        input_shape=(int(height), int(width), int(channels)),
        seed=int(seed),
    )


def _method_specs(model: Any, methods: Any, model_hash: str, settings: Settings) -> list:
    from vizkit.methods import create

    specs = []
    for column, name, params in parse_methods(methods):
        params = dict(params)
        layer = params.pop("layer", None)
        method = create(model, name, layer=layer, **params)  # validates names and parameters
        public = {k: v for k, v in method.params.items() if k != "batch_size"}
        key = key_of(
            "method",
            model_hash,
            name,
            public,
            method.layer,
            settings.targets,
            settings.metrics,
            settings.metric_params,
            settings.border,
            settings.map_size,
            settings.map_dtype,
            settings.seed,
        )
        specs.append(MethodSpec(column, name, {**params}, method.layer, key, method.info.label))
    return specs


def _manifest(
    previous: Mapping[str, Any],
    specs: Sequence[MethodSpec],
    resolved: Any,
    model_hash: str,
    src: Any,
    settings: Settings,
    size: int,
    plans: Sequence[Any],
) -> dict[str, Any]:
    """The manifest of this run (methods of earlier runs in the same store are kept)."""
    manifest_methods = dict(previous.get("methods", {}))
    for s in specs:
        manifest_methods[s.key] = {
            "column": s.column,
            "method": s.name,
            "label": s.label,
            "params": s.params,
            "layer": s.layer,
            "key": s.key,
        }
    current = [manifest_methods[s.key] for s in specs]
    return dict(
        model={
            "weights_sha256": model_hash,
            "spec": resolved.spec,
            "name": resolved.model.name,
            "file_sha256": resolved.file_sha256,
            "input_shape": list(settings.input_shape),
        },
        source=src.describe(),
        class_names=list(src.class_names) if src.class_names else _model_classes(resolved),
        settings={
            "targets": settings.targets,
            "metrics": list(settings.metrics),
            "metric_params": settings.metric_params,
            "border": settings.border,
            "map_shape": list(map_shape(settings)),
            "map_dtype": settings.map_dtype,
            "value_range": list(settings.value_range),
            "chunk_size": size,
            "seed": settings.seed,
        },
        methods=manifest_methods,
        current=current,
        plan=[{"fingerprint": p.fingerprint, "start": p.start, "count": p.count} for p in plans],
        others=[list(o) for o in getattr(src, "others", [])],
        total=src.total,
        complete=False,
    )


def scan(
    model: Any,
    source: Any,
    methods: str | Sequence[str] | Mapping[str, Mapping[str, Any]] = "gradcam",
    out: str | os.PathLike | None = None,
    *,
    metrics: Sequence[str] | str | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    targets: str | None = None,
    labels: Sequence[int] | None = None,
    masks: Any = None,
    boxes: Any = None,
    class_names: Sequence[str] | None = None,
    value_range: Sequence[float] | str | None = None,
    preprocess: str | None = None,
    chunk_size: int | None = None,
    map_dtype: str = "float16",
    map_size: int | Sequence[int] | None = None,
    store_images: bool = True,
    border: float = 0.1,
    seed: int = 0,
    engine: str = "local",
    workers: int | None = None,
    ray_options: Mapping[str, Any] | None = None,
    progress: bool | Callable[[int, int | None], Any] = True,
    overwrite: bool = False,
    trust: bool = False,
) -> Any:
    """Explain a whole dataset into a resumable store and return the :class:`Scan`.

    Parameters
    ----------
    model : keras.Model, model file path or ``"sample:NAME"``
        Never modified. With ``engine="ray"`` a path or sample name is loaded by each actor;
        a model object is saved once into the store for them.
    source : folder, list of paths, ndarray (N, H, W, C) or tf.data.Dataset
        A folder with class subfolders gives labels (``image_dataset_from_directory`` layout,
        alphabetical); a flat folder has none. Arrays and dataset elements are model-ready
        (uint8 is scaled from 0..255 to ``value_range``).
    methods : str, list of str, or dict of name to parameters
        ``"gradcam,saliency"`` or ``{"gradcam": {"layer": "conv3"}, "saliency": {}}``.
    out : path
        The scan directory (created; rerunning into it resumes and reuses finished work).
    metrics : list of str, optional
        Any of ``deletion``, ``insertion`` (per-image AUCs, plus the random-order baseline),
        ``pointing_game``, ``relevance_mass`` (need masks); ``metric_params`` passes
        parameters per metric (e.g. ``{"deletion": {"steps": 10}}``).
    targets : None or "label"
        Explain the predicted class (default) or the true label.
    labels, masks, boxes, class_names
        For path lists and arrays: aligned with the images. For folders ``masks`` is a folder
        mirroring the image paths and ``boxes`` a dict from relative path to a box.
    value_range : (low, high) or str, optional
        The model's input scale (``(0, 255)``, ``"-1-1"``; ``preprocess`` takes the same names).
        Default: what :func:`vizkit.input_spec` decides (a sample's metadata, a ``Rescaling`` /
        ``Normalization`` block at the model's input, else 0-1). Scans take linear scales only.
    chunk_size : int, optional
        Images per chunk, the unit of work and of resume (default 256, a multiple of the
        model's batch size).
    map_dtype : {"float16", "float32"}
    map_size : int or (int, int), optional
        Store maps (and thumbnails) downsampled to this size; statistics use full maps.
    store_images : bool
        Keep uint8 thumbnails at the maps' size (for views and the dashboard).
    border : float
        Width of the border band for the spatial statistics, as a share of the side.
    engine : {"local", "ray"}
        ``"ray"`` runs chunks on a Ray Data actor pool (``pip install 'vizkit[ray]'``);
        ``workers`` actors (default: one per ``num_cpus`` in ``ray_options``, which also takes
        ``num_gpus`` and ``address``).
    progress : bool or callable
        A tqdm bar with throughput and ETA, or ``fn(done, total)``.
    overwrite : bool
        Replace a scan of another model in ``out``.
    trust : bool
        Load model files that run code (only for files you trust).

    Returns
    -------
    Scan
        The opened store (:func:`vizkit.open_scan`).
    """
    from vizkit.sources import resolve_model, weights_sha256

    if out is None:
        raise InputError("scan needs out=DIR: the folder that keeps the maps and the table")
    if engine not in ENGINES:
        raise InputError(f"engine={engine!r}: choose 'local' or 'ray'")
    resolved = resolve_model(model, trust=trust)
    keras_model = resolved.model
    model_hash = weights_sha256(keras_model)
    src = make_source(source, labels=labels, masks=masks, boxes=boxes, class_names=class_names)
    settings = _resolve_settings(
        keras_model,
        resolved,
        targets=targets,
        metrics=metrics,
        metric_params=metric_params,
        border=border,
        map_size=map_size,
        map_dtype=map_dtype,
        store_images=store_images,
        value_range=value_range,
        seed=seed,
        has_masks=src.has_masks,
        preprocess=preprocess,
    )
    if engine == "ray" and isinstance(src, DatasetSource):
        raise InputError(
            "engine='ray' reads files or arrays: save the tf.data.Dataset's images to a "
            "folder first, or use engine='local'"
        )
    specs = _method_specs(keras_model, methods, model_hash, settings)
    base_key = "base-" + key_of("base", model_hash, settings.targets, settings.value_range)
    images_key = (
        "images-" + key_of("images", settings.value_range, settings.map_size)
        if settings.store_images
        else None
    )
    size = _chunk_size(keras_model, chunk_size)
    writer = StoreWriter(out, model_hash, overwrite=overwrite)
    plans = src.plan(size)
    manifest = _manifest(writer.manifest, specs, resolved, model_hash, src, settings, size, plans)
    manifest.update(base_key=base_key, images_key=images_key)
    writer.save_manifest(**manifest)
    job = _Job(writer, src, specs, settings, base_key, images_key, size)
    job.trust = bool(trust)
    started = time.perf_counter()
    try:
        if engine == "ray":
            from vizkit.scanning.ray_engine import run_ray

            run_ray(job, plans, resolved, keras_model, progress, workers, ray_options or {})
        else:
            job.run_local(keras_model, plans, progress, workers)
    finally:
        plan = job.plan_record if isinstance(src, DatasetSource) else manifest["plan"]
        if isinstance(src, DatasetSource):
            writer.manifest["total"] = sum(p["count"] for p in plan)
        writer.save_manifest(plan=plan, seconds=round(time.perf_counter() - started, 3))
        writer.close()
    finish(writer.root, writer.manifest, writer.tmp)
    writer.save_manifest(complete=True)
    shutil.rmtree(writer.tmp, ignore_errors=True)
    from vizkit.scanning.reader import Scan

    return Scan(writer.root)


def _model_classes(resolved: Any) -> list[str] | None:
    if getattr(resolved, "sample", None):
        from vizkit.samples import sample_metadata

        return list(sample_metadata(resolved.sample)["class_names"])
    return None


def _chunk_size(model: Any, chunk_size: int | None) -> int:
    from vizkit.methods.base import auto_batch_size

    if chunk_size is not None:
        if isinstance(chunk_size, bool) or int(chunk_size) < 1:
            raise InputError(f"chunk_size must be a positive integer, not {chunk_size!r}")
        return int(chunk_size)
    batch = auto_batch_size(model)
    return max(batch, CHUNK_IMAGES // batch * batch)


class _Job:
    """The state one run shares between its engine and the store."""

    def __init__(
        self,
        writer: StoreWriter,
        source: Any,
        specs: list[MethodSpec],
        settings: Settings,
        base_key: str,
        images_key: str | None,
        chunk_size: int,
    ) -> None:
        self.writer = writer
        self.source = source
        self.specs = specs
        self.settings = settings
        self.base_key = base_key
        self.images_key = images_key
        self.chunk_size = chunk_size
        self.plan_record: list[dict[str, Any]] = []
        self.trust = False  # Ray actors load model files with the caller's trust setting

    def todo(self, fingerprint: str) -> tuple[list[str], bool, bool]:
        """Missing method keys, whether predictions and thumbnails are missing."""
        w = self.writer
        missing = [s.key for s in self.specs if not w.has(s.key, fingerprint)]
        need_base = not w.has(self.base_key, fingerprint)
        need_images = self.images_key is not None and not w.has_images(self.images_key, fingerprint)
        return missing, need_base, need_images

    def pending(self, plans: Sequence[Any]) -> tuple[list[Any], int]:
        """Plans with work left, and how many images are already done."""
        keys = [s.key for s in self.specs] + [self.base_key]
        done = done_chunks(self.writer.root, keys, [p.fingerprint for p in plans])
        images_done = [
            self.images_key is None or self.writer.has_images(self.images_key, p.fingerprint)
            for p in plans
        ]
        work = [p for p, d, i in zip(plans, done, images_done) if not (d and i)]
        return work, sum(p.count for p, d, i in zip(plans, done, images_done) if d and i)

    def run_local(self, model: Any, plans: list[Any], progress: Any, workers: int | None) -> None:
        scanner = Scanner(model, self.specs, self.settings)
        shape = self.settings.input_shape
        vr = self.settings.value_range
        if isinstance(self.source, DatasetSource):
            chunks: Iterator[LoadedChunk] = self.source.iterate(self.chunk_size, shape, vr)
            total = self.source.total if self.source.total >= 0 else None
            initial = 0
        else:
            work, initial = self.pending(plans)
            total = self.source.total
            chunks = prefetched(
                lambda p: self.source.load(p, shape, vr), work, workers=workers or 2
            )
        update, close = _progress_sink(progress, total, initial)
        try:
            for chunk in chunks:
                self.plan_record.append(
                    {
                        "fingerprint": chunk.fingerprint,
                        "start": chunk.plan.start,
                        "count": chunk.plan.count,
                    }
                )
                todo, need_base, need_images = self.todo(chunk.fingerprint)
                if todo or need_base or need_images:
                    self.writer.log(
                        "started",
                        chunk=chunk.plan.index,
                        fingerprint=chunk.fingerprint,
                        methods=sorted(todo),
                    )
                    output = scanner.compute(
                        chunk, todo, need_base=need_base, need_images=need_images
                    )
                    self.writer.write_chunk(output, self.base_key, self.images_key)
                update(chunk.plan.count)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
            close()


__all__ = ["scan", "ENGINES"]
