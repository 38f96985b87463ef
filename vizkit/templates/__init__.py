"""HTML templates for reports, kept as Python strings so packaging needs no data files."""
