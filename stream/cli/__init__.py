"""The ``custodes`` command line (``stream.cli.main``; one module per command group)."""

from stream.cli.main import main

__all__ = ["main"]
