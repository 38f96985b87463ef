"""Drawing helpers: functions that take a matplotlib Axes or Figure. No TensorFlow here."""

from vizkit.plotting.channels import plot_channel
from vizkit.plotting.classification import plot_confusion_matrix
from vizkit.plotting.panels import plot_explanation_rows

__all__ = ["plot_channel", "plot_confusion_matrix", "plot_explanation_rows"]
