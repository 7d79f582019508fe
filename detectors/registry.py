"""The explicit list of detectors, and building the enabled set from configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import Detector
from .bulk_export import BulkExport
from .departing_user import DepartingUser
from .first_use import FirstUse
from .host_ownership import HostOwnership
from .impossible_travel import ImpossibleTravel
from .leaver_activity import LeaverActivity
from .media_volume import MediaVolume
from .need_to_know import NeedToKnow
from .off_hours import OffHours
from .person_risk import PersonRisk
from .reference import Reference, ReferenceHolder, as_holder
from .reviewer_watch import ReviewerWatch
from .risky_destination import RiskyDestination
from .small_cell_export import SmallCellExport
from .third_party_transfer import ThirdPartyTransfer
from .unsanctioned_messaging import UnsanctionedMessaging
from .unusual_volume import UnusualVolume

CATALOG: tuple[type[Detector], ...] = (
    BulkExport,
    ThirdPartyTransfer,
    UnsanctionedMessaging,
    LeaverActivity,
    NeedToKnow,
    SmallCellExport,
    ImpossibleTravel,
    UnusualVolume,
    ReviewerWatch,
    OffHours,
    FirstUse,
    RiskyDestination,
    MediaVolume,
    HostOwnership,
    DepartingUser,
    PersonRisk,
)
"""Every detector Custodes ships, registered explicitly (no import-time magic)."""

SECTIONS = ("risk",)
"""Sections of ``[detectors.*]`` that configure shared logic rather than a detector
(``[detectors.risk]``: :class:`detectors.risk.RiskConfig`)."""


def index(classes: Iterable[type[Detector]] = CATALOG) -> dict[str, type[Detector]]:
    """Detector classes by id; a duplicate id is an error."""
    out: dict[str, type[Detector]] = {}
    for cls in classes:
        if cls.id in out:
            raise ValueError(f"duplicate detector id {cls.id!r}")
        out[cls.id] = cls
    return out


def build(
    config: Mapping[str, Mapping[str, Any]],
    reference: ReferenceHolder | Reference | Iterable[type[Detector]] | None = None,
    classes: Iterable[type[Detector]] = CATALOG,
) -> list[Detector]:
    """Configured instances of the enabled detectors. ``config`` maps detector id -> knobs (and may
    hold the non-detector sections in ``SECTIONS``). All detectors share one reference holder: the
    runtime swaps ``holder.current`` on updates. ``build(config, classes)`` (the old positional
    form) still works."""
    if reference is not None and not isinstance(reference, Reference | ReferenceHolder):
        classes, reference = reference, None
    holder = as_holder(reference)
    known = index(classes)
    unknown = set(config) - set(known) - set(SECTIONS)
    if unknown:
        raise ValueError(f"configuration names unknown detector(s) {sorted(unknown)}")
    detectors = [cls.configure(config.get(det_id, {}), holder) for det_id, cls in known.items()]
    return [d for d in detectors if d.config.enabled]
