"""Open a scan directory: the table, filters, stored maps and the dataset-level views.

``scan = vizkit.open_scan("scan/")`` (or the return value of :func:`vizkit.scan`) reads the
store written by a scan, complete or interrupted, without TensorFlow:

- ``scan.table``: one row per image; ``scan.filter(...)`` / ``scan.sort(...)`` return frames;
- ``scan.maps(method, ids)``, ``scan.images(ids)``, ``scan.explanation(method, ids)``: stored
  maps and thumbnails (an :class:`~vizkit.results.explanation.Explanation` draws as usual);
- views, each a result with ``plot(ax=None)``: :meth:`Scan.class_means`, :meth:`Scan.confusion`,
  :meth:`Scan.errors`, :meth:`Scan.ranked`, :meth:`Scan.spatial_bias`.
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
SHORTCUT_THRESHOLDS = {"border": 1.5, "corners": 2.0, "object": 1.5}


def _normalized(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest absolute value (all-zero maps stay zero)."""
    maps = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = np.abs(maps).reshape(len(maps), -1).max(axis=1, initial=0.0)
    return maps / np.where(top > 0, top, 1.0)[:, None, None]


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

    # -- views -----------------------------------------------------------------------------
    def _classes(self) -> np.ndarray:
        names = self.class_names
        table = self.table
        top = max(
            int(table["label"].to_numpy().max(initial=-1)),
            int(table["prediction"].to_numpy().max(initial=-1)),
        )
        count = max(len(names) if names else 0, top + 1)
        return np.arange(count)

    def class_means(self, method: str | None = None, *, by: str = "label") -> ClassMeanMaps:
        """Mean normalized map per class (``by="label"`` or ``"prediction"``) and overall."""
        method = method or self.methods[0]
        if by not in ("label", "prediction"):
            raise InputError(f"by={by!r}: choose 'label' or 'prediction'")
        classes = self._classes()
        h, w = self.manifest["settings"]["map_shape"]
        sums = np.zeros((len(classes), h, w), np.float64)
        counts = np.zeros(len(classes), np.int64)
        for rows, maps in self.iter_maps(method):
            normal = _normalized(maps)
            groups = rows[by].to_numpy()
            for c in np.unique(groups[groups >= 0]):
                pick = groups == c
                sums[c] += normal[pick].sum(axis=0)
                counts[c] += int(pick.sum())
        with np.errstate(invalid="ignore"):
            means = sums / counts[:, None, None]
            overall = sums.sum(axis=0) / max(int(counts.sum()), 1)
        return ClassMeanMaps(
            method=method,
            by=by,
            classes=classes,
            counts=counts,
            maps=means.astype(np.float32),
            overall=overall.astype(np.float32),
            class_names=self.class_names,
        )

    def confusion(self, method: str | None = None, *, examples: int = 4) -> ConfusionView:
        """Confusion matrix with up to ``examples`` maps per off-diagonal cell (most confident
        mistakes first)."""
        method = method or self.methods[0]
        table = self.table[self.table["label"] >= 0]
        classes = self._classes()
        k = len(classes)
        matrix = np.zeros((k, k), np.int64)
        np.add.at(matrix, (table["label"].to_numpy(), table["prediction"].to_numpy()), 1)
        wrong = table[table["label"] != table["prediction"]]
        cells = sorted(
            {(int(a), int(b)) for a, b in zip(wrong["label"], wrong["prediction"])},
            key=lambda c: (-matrix[c], c),
        )
        e = max(1, int(examples))
        ids = np.full((len(cells), e), -1, np.int64)
        probs = np.full((len(cells), e), np.nan, np.float32)
        h, w = self.manifest["settings"]["map_shape"]
        maps = np.zeros((len(cells), e, h, w), np.float32)
        images = None
        for c, (i, j) in enumerate(cells):
            rows = wrong[(wrong["label"] == i) & (wrong["prediction"] == j)]
            rows = rows.sort_values("probability", ascending=False, kind="stable").head(e)
            n = len(rows)
            ids[c, :n] = rows["id"].to_numpy()
            probs[c, :n] = rows["probability"].to_numpy()
            maps[c, :n] = self.maps(method, rows["id"].to_numpy())
            thumbs = self.images(rows["id"].to_numpy())
            if thumbs is not None:
                if images is None:
                    images = np.zeros((len(cells), e, *thumbs.shape[1:]), np.uint8)
                images[c, :n] = thumbs
        return ConfusionView(
            method=method,
            matrix=matrix,
            cells=np.asarray(cells, np.int64).reshape(-1, 2),
            ids=ids,
            probabilities=probs,
            maps=maps,
            images=images,
            class_names=self.class_names,
        )

    def errors(self, method: str | None = None) -> ErrorMaps:
        """Mean normalized map of correct and of wrong predictions, per true class."""
        method = method or self.methods[0]
        classes = self._classes()
        h, w = self.manifest["settings"]["map_shape"]
        sums = np.zeros((2, len(classes), h, w), np.float64)
        counts = np.zeros((2, len(classes)), np.int64)
        for rows, maps in self.iter_maps(method):
            labels = rows["label"].to_numpy()
            right = rows["prediction"].to_numpy() == labels
            normal = _normalized(maps)
            for c in np.unique(labels[labels >= 0]):
                for side, pick in ((0, right & (labels == c)), (1, ~right & (labels == c))):
                    sums[side, c] += normal[pick].sum(axis=0)
                    counts[side, c] += int(pick.sum())
        with np.errstate(invalid="ignore"):
            means = (sums / counts[:, :, None, None]).astype(np.float32)
            overall = sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1)[:, None, None]
        if counts[1].sum() == 0:
            overall[1] = np.nan
        return ErrorMaps(
            method=method,
            classes=classes,
            correct=means[0],
            wrong=means[1],
            correct_counts=counts[0],
            wrong_counts=counts[1],
            overall_correct=overall[0].astype(np.float32),
            overall_wrong=overall[1].astype(np.float32),
            class_names=self.class_names,
        )

    def ranked(self, method: str | None = None, by: str = "health", *, k: int = 12) -> RankedImages:
        """The ``k`` worst images by ``by``.

        ``"health"``: maps that fail :func:`vizkit.metrics.map_health`; ``"faithfulness"``:
        highest deletion AUC minus its random-order AUC (or lowest insertion AUC, whichever
        the scan computed); ``"outside_mask"``: lowest share of positive attribution on the
        object (needs masks); any other table column: its highest values.
        """
        method = method or self.methods[0]
        table = self.table
        col = lambda name: f"{method}.{name}"  # noqa: E731
        if by == "health":
            rows = table[table[col("health")] != "ok"]
            values = np.full(len(rows), np.nan)
            notes = [f"{s}: {r}" for s, r in zip(rows[col("health")], rows[col("health_reason")])]
            description = "unhealthy maps"
        elif by == "faithfulness":
            if col("deletion_auc") in table.columns:
                values_all = table[col("deletion_auc")].to_numpy(np.float64)
                if col("deletion_random_auc") in table.columns:
                    values_all = values_all - table[col("deletion_random_auc")].to_numpy(np.float64)
                description = "least faithful (deletion AUC above its random order)"
                order = np.argsort(-np.nan_to_num(values_all, nan=-np.inf), kind="stable")
            elif col("insertion_auc") in table.columns:
                values_all = table[col("insertion_auc")].to_numpy(np.float64)
                if col("insertion_random_auc") in table.columns:
                    values_all = values_all - table[col("insertion_random_auc")].to_numpy(
                        np.float64
                    )
                description = "least faithful (insertion AUC over its random order)"
                order = np.argsort(np.nan_to_num(values_all, nan=np.inf), kind="stable")
            else:
                raise InputError(
                    "ranking by faithfulness needs a scan with metrics=['deletion'] or "
                    "['insertion']"
                )
            rows, values = table.iloc[order], values_all[order]
            notes = [""] * len(rows)
        elif by == "outside_mask":
            if col("object_share") not in table.columns:
                raise InputError("ranking by outside_mask needs a scan with masks= or boxes=")
            values_all = 1.0 - table[col("object_share")].to_numpy(np.float64)
            order = np.argsort(-np.nan_to_num(values_all, nan=-np.inf), kind="stable")
            rows, values = table.iloc[order], values_all[order]
            notes = [""] * len(rows)
            description = "attribution outside the object"
        else:
            name = self._column(by, method)
            values_all = table[name].to_numpy(np.float64)
            order = np.argsort(-np.nan_to_num(values_all, nan=-np.inf), kind="stable")
            rows, values = table.iloc[order], values_all[order]
            notes = [""] * len(rows)
            description = f"highest {by}"
        total = len(rows)
        rows, values, notes = rows.head(k), np.asarray(values)[:k], notes[:k]
        ids = rows["id"].to_numpy(np.int64)
        h, w = self.manifest["settings"]["map_shape"]
        maps = self.maps(method, ids) if len(ids) else np.zeros((0, h, w), np.float32)
        images = self.images(ids) if len(ids) else None
        return RankedImages(
            method=method,
            criterion=by,
            description=description,
            ids=ids,
            values=values.astype(np.float64),
            paths=tuple(str(p) for p in rows["path"]),
            notes=tuple(notes),
            labels=rows["label"].to_numpy(np.int64),
            predictions=rows["prediction"].to_numpy(np.int64),
            maps=maps,
            images=images,
            total=total,
            class_names=self.class_names,
        )

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
        from vizkit.scanning.compute import regions as region_masks

        method = method or self.methods[0]
        limits = {**SHORTCUT_THRESHOLDS, **(thresholds or {})}
        table = self.table
        height, width = self.manifest["model"]["input_shape"][:2]
        border = float(self.manifest["settings"]["border"])
        areas = {k: float(v.mean()) for k, v in region_masks(height, width, border).items()}
        names = ["border", "corners", "center"]
        shares = [table[f"{method}.{n}_share"].to_numpy(np.float64) for n in names]
        area_list = [areas[n] for n in names]
        if f"{method}.object_share" in table.columns:
            obj = table[f"{method}.object_share"].to_numpy(np.float64)
            obj_area = table[f"{method}.object_area"].to_numpy(np.float64)
            names += ["object", "background"]
            shares += [obj, 1.0 - obj]
            area_list += [float(np.nanmean(obj_area)), float(1.0 - np.nanmean(obj_area))]
        values = np.array([np.nanmean(s) if np.isfinite(s).any() else np.nan for s in shares])
        over = np.array([np.nanmean(np.nan_to_num(s) > per_image) for s in shares])
        area = np.array(area_list)
        ratios = values / area
        reasons = []
        lookup = dict(zip(names, ratios))
        if lookup["border"] >= limits["border"]:
            reasons.append(
                f"{values[0]:.0%} of the attribution lies on the border band, which is "
                f"{area[0]:.0%} of the image ({lookup['border']:.1f}x): the model may read a "
                "frame, a watermark or padding"
            )
        if lookup["corners"] >= limits["corners"]:
            reasons.append(
                f"{values[1]:.0%} of the attribution lies in the corners ({area[1]:.0%} of the "
                f"image, {lookup['corners']:.1f}x): a corner watermark or logo?"
            )
        if "object" in lookup and lookup["object"] < limits["object"]:
            reasons.append(
                f"only {values[3]:.0%} of the attribution lies on the object, which covers "
                f"{area[3]:.0%} of the image ({lookup['object']:.1f}x): the model may use the "
                "background"
            )
        return SpatialBias(
            method=method,
            regions=tuple(names),
            shares=values,
            areas=area,
            ratios=ratios,
            images_over=over,
            flagged=bool(reasons),
            reasons=tuple(reasons),
            thresholds=limits,
            images=int(np.isfinite(shares[0]).sum()),
        )


def open_scan(root: str | os.PathLike) -> Scan:
    """Open a scan directory written by :func:`vizkit.scan` (complete or not)."""
    return Scan(root)
