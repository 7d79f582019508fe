"""The explicit list of detectors, and building the enabled set from configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import Detector
from .bulk_export import BulkExport

CATALOG: tuple[type[Detector], ...] = (BulkExport,)
"""Every detector Custodes ships, registered explicitly (no import-time magic)."""


def index(classes: Iterable[type[Detector]] = CATALOG) -> dict[str, type[Detector]]:
    """Detector classes by id; a duplicate id is an error."""
    out: dict[str, type[Detector]] = {}
    for cls in classes:
        if cls.id in out:
            raise ValueError(f"duplicate detector id {cls.id!r}")
        out[cls.id] = cls
    return out


def build(
    config: Mapping[str, Mapping[str, Any]], classes: Iterable[type[Detector]] = CATALOG
) -> list[Detector]:
    """Configured instances of the enabled detectors. ``config`` maps detector id -> knobs."""
    known = index(classes)
    unknown = set(config) - set(known)
    if unknown:
        raise ValueError(f"configuration names unknown detector(s) {sorted(unknown)}")
    detectors = [cls.configure(config.get(det_id, {})) for det_id, cls in known.items()]
    return [d for d in detectors if d.config.enabled]
