"""Classification results: how often each true class was predicted as each class.

Numpy and pandas only (no TensorFlow); ``plot`` draws through
:mod:`vizkit.plotting.classification`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.results.base import Result

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["ConfusionMatrix"]


@dataclasses.dataclass(frozen=True)
class ConfusionMatrix(Result):
    """Counts of (true class, predicted class) pairs.

    Attributes
    ----------
    counts : ndarray, shape (K, K), int64
        ``counts[i, j]``: images of true class ``i`` predicted as class ``j``.
    class_names : tuple of str
        One name per class (``"0"``, ``"1"``, ... when unknown).
    """

    counts: np.ndarray
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts)
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
            raise InputError(f"counts must be a square (K, K) matrix, not {counts.shape}")
        object.__setattr__(self, "counts", counts.astype(np.int64))
        names = tuple(str(n) for n in self.class_names)
        if len(names) != len(counts):
            names = tuple(str(i) for i in range(len(counts)))
        object.__setattr__(self, "class_names", names)
        super().__post_init__()

    @classmethod
    def from_predictions(
        cls,
        labels: Sequence[int] | np.ndarray,
        predictions: Sequence[int] | np.ndarray,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
    ) -> ConfusionMatrix:
        """Count true ``labels`` against ``predictions`` (both ``(N,)`` class indices).

        The number of classes is ``num_classes``, else the number of names, else the largest
        class seen plus one.
        """
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
        if labels.shape != predictions.shape:
            raise InputError(
                f"labels ({len(labels)}) and predictions ({len(predictions)}) differ in length"
            )
        seen = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
        k = num_classes or max(len(class_names or ()), seen)
        if seen > k or labels.min(initial=0) < 0 or predictions.min(initial=0) < 0:
            raise InputError(f"class indices must lie in 0..{k - 1}")
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, (labels, predictions), 1)
        return cls(counts=counts, class_names=tuple(class_names or ()))

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def accuracy(self) -> float:
        """Share of images whose prediction is their true class (NaN without images)."""
        return float(np.trace(self.counts) / self.total) if self.total else float("nan")

    def normalized(self) -> np.ndarray:
        """Rows divided by their totals: ``[i, j]`` is the share of class ``i`` predicted as ``j``."""
        rows = self.counts.sum(axis=1, keepdims=True)
        return self.counts / np.maximum(rows, 1)

    def to_frame(self) -> pd.DataFrame:
        """Per class: precision, recall, F1 (0 where undefined) and support (true images)."""
        import pandas as pd

        correct = np.diag(self.counts).astype(np.float64)
        predicted = self.counts.sum(axis=0).astype(np.float64)
        support = self.counts.sum(axis=1)
        precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
        recall = np.divide(correct, support, out=np.zeros_like(correct), where=support > 0)
        both = precision + recall
        f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(both), where=both > 0)
        return pd.DataFrame(
            {
                "class": list(self.class_names),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support.astype(np.int64),
            }
        )

    def __repr__(self) -> str:
        return f"ConfusionMatrix({len(self)} classes, {self.total} images, accuracy {self.accuracy:.3f})"

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Draw the matrix on ``ax`` (a new pyplot figure when None) and return the axes.

        Keyword arguments go to :func:`vizkit.plotting.classification.plot_confusion_matrix`:
        ``normalize`` (rows as shares), ``cmap``, ``values`` (numbers in the cells), ``colorbar``.
        """
        from vizkit.plotting.classification import plot_confusion_matrix

        return plot_confusion_matrix(self, ax, **kwargs)
