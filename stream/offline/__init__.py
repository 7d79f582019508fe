"""Offline processing: replay of files through the worker's micro-batch step."""
