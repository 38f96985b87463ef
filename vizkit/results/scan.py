"""Dataset-level views of a scan (:func:`vizkit.scan`): plain data plus ``plot(ax=None)``.

Each view is computed once from a scan store by :class:`vizkit.scanning.reader.Scan` and holds
numpy arrays and metadata only (no TensorFlow, no file handles), so it pickles, caches and draws
anywhere. Maps in views are normalized per image (divided by their largest absolute value)
before averaging, so every image weighs the same whatever its map's scale.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from vizkit.results.base import Result

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes


def _class_name(names: tuple[str, ...] | None, index: int) -> str:
    if names and 0 <= index < len(names):
        return str(names[index])
    return str(int(index))


@dataclasses.dataclass(frozen=True, eq=False)
class ClassMeanMaps(Result):
    """Mean normalized map per class, and over all images (meaningful for aligned data).

    Attributes
    ----------
    method : str
        The scan's method column (``"gradcam"``).
    by : {"label", "prediction"}
        Which class groups the images.
    classes : ndarray of int, shape (K,)
    counts : ndarray of int, shape (K,)
    maps : ndarray, shape (K, h, w)
        Mean of ``map / max(abs(map))`` over the class's images (NaN when it has none).
    overall : ndarray, shape (h, w)
        The mean over every image.
    class_names : tuple of str, optional
    """

    method: str
    by: str
    classes: np.ndarray
    counts: np.ndarray
    maps: np.ndarray
    overall: np.ndarray
    class_names: tuple[str, ...] | None = None

    def class_name(self, index: int) -> str:
        return _class_name(self.class_names, index)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "class": [self.class_name(int(c)) for c in self.classes],
                "images": self.counts,
                "mean_abs": [float(np.nanmean(np.abs(m))) for m in self.maps],
            }
        )

    def plot(self, ax: Axes | None = None, *, overall: bool = True) -> Axes:
        """One tile per class (and the overall mean), on one shared colour scale."""
        from vizkit.plotting.scan import plot_class_means

        return plot_class_means(self, ax=ax, overall=overall)


@dataclasses.dataclass(frozen=True, eq=False)
class ConfusionView(Result):
    """The confusion matrix (true label x prediction) with example maps per off-diagonal cell.

    Attributes
    ----------
    method : str
    matrix : ndarray of int, shape (K, K)
        ``matrix[i, j]``: images of label ``i`` predicted as ``j``.
    cells : ndarray of int, shape (M, 2)
        The off-diagonal cells with examples, most populated first.
    ids : ndarray of int, shape (M, E)
        Example image ids per cell, most confident mistakes first (-1 pads).
    probabilities : ndarray, shape (M, E)
    maps : ndarray, shape (M, E, h, w)
        Raw stored maps of the examples (zeros where padded).
    images : ndarray of uint8, shape (M, E, h, w, C), optional
    class_names : tuple of str, optional
    """

    method: str
    matrix: np.ndarray
    cells: np.ndarray
    ids: np.ndarray
    probabilities: np.ndarray
    maps: np.ndarray
    images: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def class_name(self, index: int) -> str:
        return _class_name(self.class_names, index)

    @property
    def accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def to_frame(self) -> pd.DataFrame:
        """One row per off-diagonal cell with examples."""
        import pandas as pd

        rows = []
        for (i, j), ids in zip(self.cells, self.ids):
            rows.append(
                {
                    "label": self.class_name(int(i)),
                    "prediction": self.class_name(int(j)),
                    "images": int(self.matrix[i, j]),
                    "examples": [int(v) for v in ids if v >= 0],
                }
            )
        return pd.DataFrame(rows, columns=["label", "prediction", "images", "examples"])

    def plot(self, ax: Axes | None = None) -> Axes:
        """The matrix with counts (rows: label, columns: prediction)."""
        from vizkit.plotting.scan import plot_confusion

        return plot_confusion(self, ax=ax)

    def plot_examples(self, ax: Axes | None = None, *, overlay: bool = True) -> Axes:
        """Example maps: one row per off-diagonal cell, over the images when stored."""
        from vizkit.plotting.scan import plot_confusion_examples

        return plot_confusion_examples(self, ax=ax, overlay=overlay)


@dataclasses.dataclass(frozen=True, eq=False)
class ErrorMaps(Result):
    """Where the model looks when it is right and when it is wrong, per true class.

    Attributes
    ----------
    method : str
    classes : ndarray of int, shape (K,)
    correct, wrong : ndarray, shape (K, h, w)
        Mean normalized map of the class's correctly / wrongly predicted images (NaN if none).
    correct_counts, wrong_counts : ndarray of int, shape (K,)
    overall_correct, overall_wrong : ndarray, shape (h, w)
    class_names : tuple of str, optional
    """

    method: str
    classes: np.ndarray
    correct: np.ndarray
    wrong: np.ndarray
    correct_counts: np.ndarray
    wrong_counts: np.ndarray
    overall_correct: np.ndarray
    overall_wrong: np.ndarray
    class_names: tuple[str, ...] | None = None

    def class_name(self, index: int) -> str:
        return _class_name(self.class_names, index)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "class": [self.class_name(int(c)) for c in self.classes],
                "correct": self.correct_counts,
                "wrong": self.wrong_counts,
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Two rows of tiles: mean map when right, when wrong (all classes, then each)."""
        from vizkit.plotting.scan import plot_error_maps

        return plot_error_maps(self, ax=ax)


@dataclasses.dataclass(frozen=True, eq=False)
class RankedImages(Result):
    """The images that rank worst on one criterion, with their maps.

    Attributes
    ----------
    method : str
    criterion : str
        ``"health"``, ``"faithfulness"``, ``"outside_mask"`` or a table column.
    description : str
        What the values mean (for titles and the dashboard).
    ids : ndarray of int, shape (k,)
    values : ndarray, shape (k,)
        The ranking value (worst first).
    paths : tuple of str
    notes : tuple of str
        Per image: health status and reason, or other context.
    labels, predictions : ndarray of int, shape (k,)
    maps : ndarray, shape (k, h, w)
    images : ndarray of uint8, shape (k, h, w, C), optional
    total : int
        How many images met the criterion (before keeping the top k).
    class_names : tuple of str, optional
    """

    method: str
    criterion: str
    description: str
    ids: np.ndarray
    values: np.ndarray
    paths: tuple[str, ...]
    notes: tuple[str, ...]
    labels: np.ndarray
    predictions: np.ndarray
    maps: np.ndarray
    images: np.ndarray | None = None
    total: int = 0
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(len(self.ids))

    def class_name(self, index: int) -> str:
        return _class_name(self.class_names, index)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "id": self.ids,
                "path": list(self.paths),
                "value": self.values,
                "label": [self.class_name(int(c)) if c >= 0 else "" for c in self.labels],
                "prediction": [self.class_name(int(c)) for c in self.predictions],
                "note": list(self.notes),
            }
        )

    def plot(self, ax: Axes | None = None, *, overlay: bool = True, cols: int = 6) -> Axes:
        """The ranked maps (over their images when stored), worst first."""
        from vizkit.plotting.scan import plot_ranked

        return plot_ranked(self, ax=ax, overlay=overlay, cols=cols)


@dataclasses.dataclass(frozen=True, eq=False)
class SpatialBias(Result):
    """Share of positive attribution per image region against the region's area: a shortcut
    check.

    A model that decides from a watermark, a frame or the background puts much more of its
    attribution on the border (or corners, or outside the object) than those regions' share of
    the image. ``flagged`` says so, with reasons.

    Attributes
    ----------
    method : str
    regions : tuple of str
        ``border``, ``corners``, ``center`` and, with masks, ``object`` and ``background``.
    shares : ndarray, shape (R,)
        Mean share of positive attribution in each region (over images with any).
    areas : ndarray, shape (R,)
        Each region's mean share of the image's pixels: what a uniform map would score.
    ratios : ndarray, shape (R,)
        ``shares / areas``.
    images_over : ndarray, shape (R,)
        Share of images whose own region share exceeds ``per_image`` (0.5 by default).
    flagged : bool
    reasons : tuple of str
    thresholds : dict
        The ratios that flag: ``border`` / ``corners`` above, ``object`` below.
    images : int
        Images that entered the averages.
    """

    method: str
    regions: tuple[str, ...]
    shares: np.ndarray
    areas: np.ndarray
    ratios: np.ndarray
    images_over: np.ndarray
    flagged: bool
    reasons: tuple[str, ...]
    thresholds: dict = dataclasses.field(default_factory=dict)
    images: int = 0

    def share(self, region: str) -> float:
        return float(self.shares[self.regions.index(region)])

    def ratio(self, region: str) -> float:
        return float(self.ratios[self.regions.index(region)])

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "region": list(self.regions),
                "attribution_share": self.shares,
                "area_share": self.areas,
                "ratio": self.ratios,
                "images_over_half": self.images_over,
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Bars: attribution share and area share per region, the verdict in the title."""
        from vizkit.plotting.scan import plot_spatial_bias

        return plot_spatial_bias(self, ax=ax)
