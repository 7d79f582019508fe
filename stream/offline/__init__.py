"""Offline runs of the same pipeline: replay and evaluate."""
