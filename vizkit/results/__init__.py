"""Result types: immutable, picklable data (numpy arrays plus metadata); no TensorFlow here."""

from vizkit.results.base import Result, frozen_array
from vizkit.results.classification import ConfusionMatrix

__all__ = ["ConfusionMatrix", "Result", "frozen_array"]
