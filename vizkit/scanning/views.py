"""The dataset-level views of a :class:`~vizkit.scanning.reader.Scan`, read from its table and
stored maps (no TensorFlow): mean map per class, the confusion matrix with its mistakes' maps,
right against wrong, the worst images, and the spatial-bias (shortcut) check. Each returns a
result from :mod:`vizkit.results.scan` with ``plot(ax=None)``; :class:`Scan`'s methods of the
same names call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vizkit.errors import InputError
from vizkit.results.scan import ClassMeanMaps, ConfusionView, ErrorMaps, RankedImages, SpatialBias

if TYPE_CHECKING:  # pragma: no cover
    from vizkit.scanning.reader import Scan

SHORTCUT_THRESHOLDS = {"border": 1.5, "corners": 2.0, "object": 1.5}


def _normalized(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest absolute value (all-zero maps stay zero)."""
    maps = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = np.abs(maps).reshape(len(maps), -1).max(axis=1, initial=0.0)
    return maps / np.where(top > 0, top, 1.0)[:, None, None]


def _classes(scan: Scan) -> np.ndarray:
    """Every class index the scan knows of: named, labelled or predicted."""
    names = scan.class_names
    table = scan.table
    top = max(
        int(table["label"].to_numpy().max(initial=-1)),
        int(table["prediction"].to_numpy().max(initial=-1)),
    )
    count = max(len(names) if names else 0, top + 1)
    return np.arange(count)


def class_means(scan: Scan, method: str | None = None, *, by: str = "label") -> ClassMeanMaps:
    """The body of :meth:`Scan.class_means` (documented there)."""
    method = method or scan.methods[0]
    if by not in ("label", "prediction"):
        raise InputError(f"by={by!r}: choose 'label' or 'prediction'")
    classes = _classes(scan)
    h, w = scan.manifest["settings"]["map_shape"]
    sums = np.zeros((len(classes), h, w), np.float64)
    counts = np.zeros(len(classes), np.int64)
    for rows, maps in scan.iter_maps(method):
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
        class_names=scan.class_names,
    )


def confusion(scan: Scan, method: str | None = None, *, examples: int = 4) -> ConfusionView:
    """The body of :meth:`Scan.confusion` (documented there)."""
    method = method or scan.methods[0]
    table = scan.table[scan.table["label"] >= 0]
    classes = _classes(scan)
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
    h, w = scan.manifest["settings"]["map_shape"]
    maps = np.zeros((len(cells), e, h, w), np.float32)
    images = None
    for c, (i, j) in enumerate(cells):
        rows = wrong[(wrong["label"] == i) & (wrong["prediction"] == j)]
        rows = rows.sort_values("probability", ascending=False, kind="stable").head(e)
        n = len(rows)
        ids[c, :n] = rows["id"].to_numpy()
        probs[c, :n] = rows["probability"].to_numpy()
        maps[c, :n] = scan.maps(method, rows["id"].to_numpy())
        thumbs = scan.images(rows["id"].to_numpy())
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
        class_names=scan.class_names,
    )


def errors(scan: Scan, method: str | None = None) -> ErrorMaps:
    """The body of :meth:`Scan.errors` (documented there)."""
    method = method or scan.methods[0]
    classes = _classes(scan)
    h, w = scan.manifest["settings"]["map_shape"]
    sums = np.zeros((2, len(classes), h, w), np.float64)
    counts = np.zeros((2, len(classes)), np.int64)
    for rows, maps in scan.iter_maps(method):
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
        class_names=scan.class_names,
    )


def ranked(
    scan: Scan, method: str | None = None, by: str = "health", *, k: int = 12
) -> RankedImages:
    """The body of :meth:`Scan.ranked` (documented there)."""
    method = method or scan.methods[0]
    table = scan.table
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
                values_all = values_all - table[col("insertion_random_auc")].to_numpy(np.float64)
            description = "least faithful (insertion AUC over its random order)"
            order = np.argsort(np.nan_to_num(values_all, nan=np.inf), kind="stable")
        else:
            raise InputError(
                "ranking by faithfulness needs a scan with metrics=['deletion'] or ['insertion']"
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
        name = scan._column(by, method)
        values_all = table[name].to_numpy(np.float64)
        order = np.argsort(-np.nan_to_num(values_all, nan=-np.inf), kind="stable")
        rows, values = table.iloc[order], values_all[order]
        notes = [""] * len(rows)
        description = f"highest {by}"
    total = len(rows)
    rows, values, notes = rows.head(k), np.asarray(values)[:k], notes[:k]
    ids = rows["id"].to_numpy(np.int64)
    h, w = scan.manifest["settings"]["map_shape"]
    maps = scan.maps(method, ids) if len(ids) else np.zeros((0, h, w), np.float32)
    images = scan.images(ids) if len(ids) else None
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
        class_names=scan.class_names,
    )


def spatial_bias(
    scan: Scan,
    method: str | None = None,
    *,
    thresholds: dict[str, float] | None = None,
    per_image: float = 0.5,
) -> SpatialBias:
    """The body of :meth:`Scan.spatial_bias` (documented there)."""
    from vizkit.scanning.compute import regions as region_masks

    method = method or scan.methods[0]
    limits = {**SHORTCUT_THRESHOLDS, **(thresholds or {})}
    table = scan.table
    height, width = scan.manifest["model"]["input_shape"][:2]
    border = float(scan.manifest["settings"]["border"])
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
