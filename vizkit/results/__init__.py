"""Result types: immutable, picklable data (numpy arrays plus metadata); no TensorFlow here."""

from vizkit.results.base import Result, frozen_array

__all__ = ["Result", "frozen_array"]
