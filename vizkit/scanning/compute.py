"""One chunk of a scan: maps, predictions, map statistics, health and metrics.

:class:`Scanner` holds the model and one configured method object per method (their compiled
functions are cached per model, so every chunk reuses them) and turns a decoded
:class:`~vizkit.scanning.sources.LoadedChunk` into a :class:`ChunkOutput`: plain pandas frames
and numpy arrays that :mod:`vizkit.scanning.store` writes. Both engines (local and Ray) run
exactly this code, so they write the same store.

Region statistics use the magnitude ``abs(map)`` of each raw map (where the model looks, for
or against the target; for CAMs, which are non-negative, the same as the map): its share on
the image border band, in the four corner squares, in the central region and, with masks,
inside the object. The ``relevance_mass`` metric keeps its definition (positive part only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vizkit.errors import InputError
from vizkit.scanning.sources import LoadedChunk

METRICS = ("deletion", "insertion", "pointing_game", "relevance_mass")
MASK_METRICS = ("pointing_game", "relevance_mass")
MAP_DTYPES = ("float16", "float32")
TARGETS = ("predicted", "label")


# --------------------------------------------------------------------------------------------
# Settings and keys
# --------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=8)
        return f"array{value.shape}:{value.dtype}:{digest.hexdigest()}"
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def key_of(*parts: Any) -> str:
    """A 16-hex-digit key over JSON-able parts (arrays by their bytes)."""
    text = json.dumps(_jsonable(list(parts)), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every chunk of a scan shares (picklable: the Ray actors get a copy)."""

    targets: str = "predicted"
    metrics: tuple[str, ...] = ()
    metric_params: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    border: float = 0.1
    map_size: tuple[int, int] | None = None
    map_dtype: str = "float16"
    store_images: bool = True
    value_range: tuple[float, float] = (0.0, 1.0)
    input_shape: tuple[int, int, int] = (0, 0, 0)
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method of a scan: its column prefix, registry name, resolved parameters and key."""

    column: str
    name: str
    params: Mapping[str, Any]
    layer: str | None
    key: str
    label: str = ""


def parse_methods(methods: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``"gradcam,saliency"``, a list of names, or ``{name: params}`` -> (column, name, params).

    A name may appear twice with different parameters using ``{"gradcam@conv3": {...}}``-style
    column names: the part before ``@`` is the method.
    """
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if isinstance(methods, Mapping):
        items = [(str(k), dict(v or {})) for k, v in methods.items()]
    else:
        items = []
        for entry in methods:
            if isinstance(entry, str):
                items.append((entry, {}))
            elif isinstance(entry, (tuple, list)) and len(entry) == 2:
                items.append((str(entry[0]), dict(entry[1] or {})))
            else:
                raise InputError(
                    f"method {entry!r} is not a name or a (name, params) pair: pass names such "
                    "as 'gradcam' or a dict {'gradcam': {'layer': 'conv3'}}"
                )
    if not items:
        raise InputError("methods names no method: pass at least one, e.g. methods='gradcam'")
    out, seen = [], set()
    for column, params in items:
        if column in seen:
            raise InputError(f"method {column!r} is given twice: name the second 'name@tag'")
        seen.add(column)
        out.append((column, column.split("@", 1)[0], params))
    return out


def map_shape(settings: Settings) -> tuple[int, int]:
    height, width = settings.input_shape[:2]
    return settings.map_size if settings.map_size is not None else (height, width)


def regions(height: int, width: int, border: float) -> dict[str, np.ndarray]:
    """Boolean ``(H, W)`` masks of the border band, the corner squares and the centre.

    The band is ``round(border * min(H, W))`` pixels wide (at least one); the corners are the
    band's four ``b x b`` squares; the centre is the middle half of each side.
    """
    b = max(1, int(round(border * min(height, width))))
    edge = np.zeros((height, width), bool)
    edge[:b] = edge[-b:] = True
    edge[:, :b] = edge[:, -b:] = True
    corner = np.zeros((height, width), bool)
    for rows in (slice(0, b), slice(height - b, height)):
        for cols in (slice(0, b), slice(width - b, width)):
            corner[rows, cols] = True
    centre = np.zeros((height, width), bool)
    centre[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
    return {"border": edge, "corners": corner, "center": centre}


def map_statistics(maps: np.ndarray, border: float) -> dict[str, np.ndarray]:
    """Per-map statistics ``(N,)`` of raw maps ``(N, H, W)`` (NaN-safe).

    ``min``, ``max``, ``mean``, ``abs_mean``; ``positive_fraction`` (positive part over
    magnitude); ``peak_row``/``peak_col`` (first maximum); ``centroid_row``/``centroid_col`` of
    the magnitude (in [0, 1] of the side); ``border_share``, ``corners_share``,
    ``center_share``: share of the magnitude in each of :func:`regions` (NaN for an all-zero
    map).
    """
    maps = np.asarray(maps, np.float32)
    n, height, width = maps.shape
    clean = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
    flat = clean.reshape(n, -1)
    positive = np.maximum(clean, 0.0)
    magnitude = np.abs(clean)
    total = positive.reshape(n, -1).sum(axis=1, dtype=np.float64)
    absolute = np.abs(flat).sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = {
            "min": flat.min(axis=1),
            "max": flat.max(axis=1),
            "mean": flat.mean(axis=1, dtype=np.float64),
            "abs_mean": absolute / flat.shape[1],
            "positive_fraction": np.where(absolute > 0, total / absolute, np.nan),
        }
        peak = flat.argmax(axis=1)
        stats["peak_row"] = (peak // width).astype(np.int32)
        stats["peak_col"] = (peak % width).astype(np.int32)
        rows = (np.arange(height) + 0.5) / height
        cols = (np.arange(width) + 0.5) / width
        safe = np.where(absolute > 0, absolute, np.nan)
        stats["centroid_row"] = (magnitude.sum(axis=2) @ rows) / safe
        stats["centroid_col"] = (magnitude.sum(axis=1) @ cols) / safe
        for name, region in regions(height, width, border).items():
            inside = (magnitude * region).reshape(n, -1).sum(axis=1, dtype=np.float64)
            stats[f"{name}_share"] = inside / safe
    return stats


def downsample(values: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``(N, H, W[, C])`` to ``size`` by block means when the sides divide, else bilinear."""
    if size is None or tuple(values.shape[1:3]) == tuple(size):
        return values
    n, height, width = values.shape[:3]
    h, w = size
    if height % h == 0 and width % w == 0:
        shape = (n, h, height // h, w, width // w, *values.shape[3:])
        return values.astype(np.float32).reshape(shape).mean(axis=(2, 4))
    from scipy import ndimage

    zoom = (1, h / height, w / width) + (1,) * (values.ndim - 3)
    return ndimage.zoom(values.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")


def thumbnails(images: np.ndarray, settings: Settings) -> np.ndarray:
    """Model-ready images to uint8 ``(N, h, w, C)`` at the maps' size, for display."""
    lo, hi = settings.value_range
    unit = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    small = downsample(unit, settings.map_size)
    return np.clip(np.round(small * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ChunkOutput:
    """What one chunk adds to the store (picklable)."""

    fingerprint: str
    index: int
    base: pd.DataFrame | None  # one row per image of the chunk, skipped ones included
    methods: dict[str, pd.DataFrame]  # method key -> one row per readable image
    maps: dict[str, np.ndarray]  # method key -> (n, h, w)
    images: np.ndarray | None  # (n, h, w, C) uint8 thumbnails
    count: int  # images in the chunk (readable or not)
    seconds: float = 0.0


class Scanner:
    """Computes chunks for a model, a list of methods and shared settings.

    Parameters
    ----------
    model : keras.Model
    specs : sequence of MethodSpec
    settings : Settings
    """

    def __init__(self, model: Any, specs: Sequence[MethodSpec], settings: Settings) -> None:
        from vizkit.methods import create

        self.model = model
        self.specs = list(specs)
        self.settings = settings
        self.objects = {
            s.key: create(model, s.name, layer=s.layer, **dict(s.params)) for s in self.specs
        }
        self.by_key = {s.key: s for s in self.specs}

    def compute(
        self,
        chunk: LoadedChunk,
        todo: Sequence[str],
        *,
        need_base: bool = True,
        need_images: bool = True,
    ) -> ChunkOutput:
        """Maps and rows for the methods ``todo`` (keys), plus predictions and thumbnails."""
        import time

        start = time.perf_counter()
        x = chunk.images
        targets = None
        if self.settings.targets == "label" and len(x):
            if (chunk.labels < 0).any():
                raise InputError(
                    "targets='label' needs a label for every image: use class subfolders or "
                    "labels=, or explain the predicted class (targets=None)"
                )
            targets = chunk.labels
        methods: dict[str, pd.DataFrame] = {}
        maps: dict[str, np.ndarray] = {}
        first = None
        order = list(todo) or ([self.specs[0].key] if need_base and len(x) else [])
        for key in order:
            if not len(x):
                break
            explanation = self.objects[key].explain(x, targets)
            first = first or explanation
            if key in todo:
                methods[key], maps[key] = self._method_rows(key, explanation, chunk)
        if not len(x):  # every image of the chunk was skipped
            for key in todo:
                methods[key] = pd.DataFrame({"offset": np.zeros(0, np.int64)})
                maps[key] = np.zeros((0, *map_shape(self.settings)), self.settings.map_dtype)
        base = self._base_rows(chunk, first) if need_base else None
        images = None
        if need_images and self.settings.store_images:
            images = thumbnails(x, self.settings)
        return ChunkOutput(
            fingerprint=chunk.fingerprint,
            index=chunk.plan.index,
            base=base,
            methods=methods,
            maps=maps,
            images=images,
            count=chunk.plan.count,
            seconds=time.perf_counter() - start,
        )

    # -- rows ------------------------------------------------------------------------------
    def _base_rows(self, chunk: LoadedChunk, explanation: Any) -> pd.DataFrame:
        n_ok = len(chunk.offsets)
        rows = {
            "offset": np.concatenate([chunk.offsets, [s[0] for s in chunk.skipped]]).astype(
                np.int64
            ),
            "row": np.concatenate([np.arange(n_ok), np.full(len(chunk.skipped), -1)]).astype(
                np.int64
            ),
            "path": list(chunk.names) + [s[1] for s in chunk.skipped],
            "hash": list(chunk.hashes) + [""] * len(chunk.skipped),
            "label": np.concatenate(
                [chunk.labels, np.full(len(chunk.skipped), -1, np.int64)]
            ).astype(np.int64),
            "error": [""] * n_ok + [s[2] for s in chunk.skipped],
        }
        skipped = len(chunk.skipped)
        if explanation is not None:
            pred = explanation.predictions
            classes = np.asarray(pred.classes, np.int64)
            probs = np.asarray(pred.probabilities, np.float32)
            rows["prediction"] = np.concatenate([classes[:, 0], np.full(skipped, -1)])
            rows["probability"] = np.concatenate([probs[:, 0], np.full(skipped, np.nan)])
            rows["target"] = np.concatenate([explanation.targets, np.full(skipped, -1)])
            rows["score"] = np.concatenate([explanation.scores, np.full(skipped, np.nan)])
            rows["top_classes"] = [list(map(int, c)) for c in classes] + [[]] * skipped
            rows["top_probabilities"] = [list(map(float, p)) for p in probs] + [[]] * skipped
        else:
            rows["prediction"] = np.full(skipped, -1)
            rows["probability"] = np.full(skipped, np.nan)
            rows["target"] = np.full(skipped, -1)
            rows["score"] = np.full(skipped, np.nan)
            rows["top_classes"] = [[]] * skipped
            rows["top_probabilities"] = [[]] * skipped
        rows["has_mask"] = np.concatenate(
            [
                np.ones(n_ok, bool) if chunk.masks is not None else np.zeros(n_ok, bool),
                np.zeros(skipped, bool),
            ]
        )
        frame = pd.DataFrame(rows)
        for column in ("prediction", "target"):
            frame[column] = frame[column].astype(np.int64)
        return frame.sort_values("offset", kind="stable").reset_index(drop=True)

    def _method_rows(
        self, key: str, explanation: Any, chunk: LoadedChunk
    ) -> tuple[pd.DataFrame, np.ndarray]:
        from vizkit.metrics import deletion, insertion, map_health, pointing_game, relevance_mass

        settings = self.settings
        raw = np.asarray(explanation.maps, np.float32)
        columns: dict[str, Any] = {"offset": chunk.offsets}
        columns.update(map_statistics(raw, settings.border))
        health = map_health(explanation)
        columns["health"] = [r.status for r in health.reports]
        columns["health_reason"] = [r.reason for r in health.reports]
        params = settings.metric_params
        for name in settings.metrics:
            own = dict(params.get(name, {}))
            if name in ("deletion", "insertion"):
                own.setdefault("seed", settings.seed)
                fn = deletion if name == "deletion" else insertion
                curve = fn(self.model, explanation, **own)
                columns[f"{name}_auc"] = curve.auc
                if curve.baseline is not None:
                    columns[f"{name}_random_auc"] = curve.baseline_auc
            elif chunk.masks is not None:
                if name == "pointing_game":
                    result = pointing_game(raw, chunk.masks, **own)
                    columns["pointing_hit"] = np.where(result.valid, result.hits, False)
                    columns["object_area"] = result.area_share
                else:
                    result = relevance_mass(raw, chunk.masks, **own)
                    columns["relevance_mass"] = result.mass
                    columns["object_area"] = result.area_share
        if chunk.masks is not None:  # background share needs no extra work: 1 - object share
            magnitude = np.abs(np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0))
            total = magnitude.reshape(len(raw), -1).sum(axis=1, dtype=np.float64)
            inside = (magnitude * chunk.masks).reshape(len(raw), -1).sum(axis=1, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                columns["object_share"] = np.where(total > 0, inside / total, np.nan)
            columns["object_area"] = chunk.masks.reshape(len(raw), -1).mean(axis=1)
        stored = downsample(raw, settings.map_size).astype(settings.map_dtype)
        return pd.DataFrame(columns), stored
