"""Open a scan directory: the table, filters, stored maps and the dataset-level views.

``scan = vizkit.open_scan("scan/")`` (or the return value of :func:`vizkit.scan`) reads the
store written by a scan, complete or interrupted, without TensorFlow:

- ``scan.table``: one row per image; ``scan.filter(...)`` / ``scan.sort(...)`` return frames;
- ``scan.maps(method, ids)``, ``scan.images(ids)``, ``scan.explanation(method, ids)``: stored
  maps and thumbnails (an :class:`~vizkit.results.explanation.Explanation` draws as usual);
- views, each a result with ``plot(ax=None)``: :meth:`Scan.class_means`, :meth:`Scan.confusion`,
  :meth:`Scan.errors`, :meth:`Scan.ranked`, :meth:`Scan.spatial_bias` (computed in
  :mod:`vizkit.scanning.views`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vizkit.errors import InputError
from vizkit.results.scan import ClassMeanMaps, ConfusionView, ErrorMaps, RankedImages, SpatialBias
from vizkit.scanning.store import SKIPPED, TABLE, assemble, read_array, read_manifest

RANKINGS = ("health", "faithfulness", "outside_mask")


class Scan:
    """A scan store opened for reading (see the module docstring).

    Parameters
    ----------
    root : path
        A directory written by :func:`vizkit.scan`.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self._table: pd.DataFrame | None = None
        self._skipped: pd.DataFrame | None = None
        self._arrays: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        state = "complete" if self.complete else "partial"
        return (
            f"Scan({str(self.root)!r}, {len(self.table)} images, methods "
            f"{', '.join(self.methods)}, {state})"
        )

    # -- metadata --------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True when the last run finished (False while running or after an interruption)."""
        return bool(self.manifest.get("complete"))

    @property
    def methods(self) -> tuple[str, ...]:
        """Method columns of the last run, e.g. ``("gradcam", "saliency")``."""
        return tuple(m["column"] for m in self.manifest["current"])

    @property
    def class_names(self) -> tuple[str, ...] | None:
        names = self.manifest.get("class_names")
        return tuple(names) if names else None

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.manifest["settings"].get("metrics", ()))

    def class_name(self, index: int) -> str:
        names = self.class_names
        return str(names[index]) if names and 0 <= index < len(names) else str(int(index))

    def method_info(self, method: str | None = None) -> dict[str, Any]:
        """The manifest entry of a method column (default: the first)."""
        current = self.manifest["current"]
        if method is None:
            return current[0]
        for entry in current:
            if entry["column"] == method:
                return entry
        raise InputError(f"the scan has no method {method!r}: it has {', '.join(self.methods)}")

    # -- tables ----------------------------------------------------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """One row per image: ``id, path, hash, label, prediction, probability, target,
        score, top_classes, top_probabilities, correct, chunk, row`` and per method
        ``<method>.<statistic>`` columns (health, region shares, metrics)."""
        if self._table is None:
            path = self.root / TABLE
            if self.complete and path.is_file():
                self._table = pd.read_parquet(path)
            else:
                self._table, self._skipped = assemble(self.root, self.manifest)
        return self._table

    @property
    def skipped(self) -> pd.DataFrame:
        """Files that could not be read: ``id, path, reason``."""
        if self._skipped is None:
            path = self.root / SKIPPED
            if self.complete and path.is_file():
                self._skipped = pd.read_parquet(path)
            else:
                self._table, self._skipped = assemble(self.root, self.manifest)
        return self._skipped

    def refresh(self) -> Scan:
        """Re-read the manifest and table (for a scan still running)."""
        self.__init__(self.root)
        return self

    def filter(
        self,
        *,
        label: int | str | Sequence[int | str] | None = None,
        prediction: int | str | Sequence[int | str] | None = None,
        correct: bool | None = None,
        method: str | None = None,
        health: str | Sequence[str] | None = None,
        column: str | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> pd.DataFrame:
        """Rows of :attr:`table` matching every condition given.

        ``label``/``prediction`` take class indices or names; ``health`` a status (``"ok"``,
        ``"blank"``, ...) or ``"unhealthy"`` for any failure, of ``method``'s maps;
        ``column`` with ``low``/``high`` keeps a value range (``column`` may be a method's
        statistic such as ``"deletion_auc"`` when ``method`` is given).
        """
        frame = self.table
        keep = np.ones(len(frame), bool)
        for name, wanted in (("label", label), ("prediction", prediction)):
            if wanted is not None:
                values = [wanted] if isinstance(wanted, (int, str, np.integer)) else list(wanted)
                keep &= frame[name].isin([self._class_index(v) for v in values]).to_numpy()
        if correct is not None:
            keep &= (frame["correct"] == bool(correct)).fillna(False).to_numpy(dtype=bool)
        if health is not None:
            col = f"{method or self.methods[0]}.health"
            if health == "unhealthy":
                keep &= (frame[col] != "ok").to_numpy()
            else:
                wanted = [health] if isinstance(health, str) else list(health)
                keep &= frame[col].isin(wanted).to_numpy()
        if column is not None:
            col = self._column(column, method)
            values = frame[col].to_numpy(dtype=np.float64)
            if low is not None:
                keep &= values >= low
            if high is not None:
                keep &= values <= high
        return frame[keep]

    def sort(
        self,
        by: str,
        *,
        method: str | None = None,
        ascending: bool = True,
        frame: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """``frame`` (default: the table) sorted by a column or a method's statistic."""
        frame = self.table if frame is None else frame
        return frame.sort_values(self._column(by, method), ascending=ascending, kind="stable")

    def _column(self, name: str, method: str | None) -> str:
        table = self.table
        if name in table.columns:
            return name
        full = f"{method or self.methods[0]}.{name}"
        if full in table.columns:
            return full
        raise InputError(f"the scan table has no column {name!r} (nor {full!r})")

    def _class_index(self, value: int | str) -> int:
        if isinstance(value, str):
            names = self.class_names or ()
            if value not in names:
                raise InputError(f"unknown class {value!r}: the classes are {', '.join(names)}")
            return names.index(value)
        return int(value)

    # -- stored arrays ---------------------------------------------------------------------
    def _array(self, key: str, fingerprint: str) -> Any:
        cached = self._arrays.get((key, fingerprint))
        if cached is None:
            cached = self._arrays[(key, fingerprint)] = read_array(
                self.root / "maps.zarr" / key / fingerprint
            )
        return cached

    def _read(self, key: str, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(ids, np.int64))
        table = self.table.set_index("id", drop=False)
        missing = [int(i) for i in ids if i not in table.index]
        if missing:
            raise InputError(f"image id {missing[0]} is not in the scan")
        rows = table.loc[ids]
        parts: list[np.ndarray | None] = [None] * len(ids)
        for fingerprint, group in rows.groupby("chunk", sort=False):
            positions = np.flatnonzero(rows["chunk"].to_numpy() == fingerprint)
            values = self._array(key, str(fingerprint)).oindex[group["row"].to_numpy()]
            for p, v in zip(positions, values):
                parts[p] = v
        return np.stack(parts)

    def maps(self, method: str, ids: Sequence[int] | np.ndarray | int) -> np.ndarray:
        """Stored maps ``(n, h, w)`` float32 of images ``ids``."""
        key = self.method_info(method)["key"]
        return self._read(key, ids).astype(np.float32)

    def images(self, ids: Sequence[int] | np.ndarray | int) -> np.ndarray | None:
        """Stored thumbnails ``(n, h, w, C)`` uint8 (None when the scan kept none)."""
        key = self.manifest.get("images_key")
        if not key:
            return None
        return self._read(key, ids)

    def iter_maps(self, method: str) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """``(rows, maps)`` per chunk over the whole table: constant memory for big scans."""
        key = self.method_info(method)["key"]
        for fingerprint, group in self.table.groupby("chunk", sort=False):
            array = self._array(key, str(fingerprint))
            yield group, np.asarray(array.oindex[group["row"].to_numpy()], np.float32)

    def explanation(self, method: str, ids: Sequence[int] | np.ndarray | int) -> Any:
        """An :class:`~vizkit.results.explanation.Explanation` of stored maps and thumbnails
        (``.plot(i)`` draws it; nothing is recomputed)."""
        from vizkit.results.explanation import Explanation, FrozenParams, Predictions

        ids = np.atleast_1d(np.asarray(ids, np.int64))
        info = self.method_info(method)
        rows = self.table.set_index("id", drop=False).loc[ids]
        maps = self.maps(method, ids)
        images = self.images(ids)
        if images is None:
            images = np.full((*maps.shape, 1), 128, np.uint8)
        classes = np.array([list(c) for c in rows["top_classes"]], np.int64)
        probs = np.array([list(p) for p in rows["top_probabilities"]], np.float32)
        return Explanation(
            method=info["method"],
            maps=maps,
            inputs=images.astype(np.float32) / 255.0,
            targets=rows["target"].to_numpy(np.int64),
            scores=rows["score"].to_numpy(np.float32),
            predictions=Predictions(classes=classes, probabilities=probs),
            layer=info.get("layer"),
            params=FrozenParams(info.get("params") or {}),
            model_name=self.manifest["model"].get("name", ""),
            value_range=(0.0, 1.0),
            class_names=self.class_names,
            label=info.get("label", ""),
            image_names=tuple(str(p) for p in rows["path"]),
        )

    # -- views (computed in vizkit.scanning.views) ----------------------------------------
    def class_means(self, method: str | None = None, *, by: str = "label") -> ClassMeanMaps:
        """Mean normalized map per class (``by="label"`` or ``"prediction"``) and overall."""
        from vizkit.scanning import views

        return views.class_means(self, method, by=by)

    def confusion(self, method: str | None = None, *, examples: int = 4) -> ConfusionView:
        """Confusion matrix with up to ``examples`` maps per off-diagonal cell (most confident
        mistakes first)."""
        from vizkit.scanning import views

        return views.confusion(self, method, examples=examples)

    def errors(self, method: str | None = None) -> ErrorMaps:
        """Mean normalized map of correct and of wrong predictions, per true class."""
        from vizkit.scanning import views

        return views.errors(self, method)

    def ranked(self, method: str | None = None, by: str = "health", *, k: int = 12) -> RankedImages:
        """The ``k`` worst images by ``by``.

        ``"health"``: maps that fail :func:`vizkit.metrics.map_health`; ``"faithfulness"``:
        highest deletion AUC minus its random-order AUC (or lowest insertion AUC, whichever
        the scan computed); ``"outside_mask"``: lowest share of positive attribution on the
        object (needs masks); any other table column: its highest values.
        """
        from vizkit.scanning import views

        return views.ranked(self, method, by, k=k)

    def spatial_bias(
        self,
        method: str | None = None,
        *,
        thresholds: dict[str, float] | None = None,
        per_image: float = 0.5,
    ) -> SpatialBias:
        """Attribution share on the border, corners, centre (and object / background) against
        their area: flags a model that decides from a watermark, a frame or the background.

        Flagged when the border's attribution share is at least ``thresholds["border"]``
        (1.5) times its area share, the corners' at least ``thresholds["corners"]`` (2) times,
        or, with masks, the object's less than ``thresholds["object"]`` (1.5) times its area.
        """
        from vizkit.scanning import views

        return views.spatial_bias(self, method, thresholds=thresholds, per_image=per_image)


def open_scan(root: str | os.PathLike) -> Scan:
    """Open a scan directory written by :func:`vizkit.scan` (complete or not)."""
    return Scan(root)
