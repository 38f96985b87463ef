"""Drawing helpers: functions that take a matplotlib Axes or Figure. No TensorFlow here."""
