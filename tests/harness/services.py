"""What to do when a service is missing, plus small helpers shared by the service fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def service_unavailable(reason: str) -> NoReturn:
    """The one rule for a service this machine lacks: skip locally, FAIL under ``CI=true``.

    CI must never go green by skipping every end-to-end test.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing test service is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def tail(path: Path | str, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or a note that it does not exist."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    out = text.splitlines()[-lines:]
    return "\n".join(out) if out else f"<{path} is empty>"


# Tests that use a service fixture directly get its marker, so ``-m "not kafka"`` / ``-m "not postgres"``
# deselect them even when the author forgot the decorator. (``database_url[postgresql]`` is marked
# through its parameter.)
_AUTO_MARKERS = {
    "kafka_broker": "kafka",
    "postgres_server": "postgres",
    "postgres_url": "postgres",
}


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection
def pytest_collection_modifyitems(config, items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, marker in _AUTO_MARKERS.items():
            if fixture in names and item.get_closest_marker(marker) is None:
                item.add_marker(getattr(pytest.mark, marker))
