"""A corpus of hostile model and image files, generated at test time (see corpus.py)."""
