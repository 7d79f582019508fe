"""bulk_export's knobs (``[detectors.bulk_export]``)."""


from __future__ import annotations

from dataclasses import dataclass, field

from ..base import DetectorConfig


@dataclass(frozen=True)
class BulkExportConfig(DetectorConfig):
    window_s: int = 3600
    bucket_s: int = 60
    grace_s: int = 600
    """Events up to this much older than the newest seen still count (out-of-order delivery)."""
    suppress_s: int = 3600
    """Hits within this long of an alert's first hit fold into it."""
    kinds: tuple[str, ...] = ("export", "record_access", "print", "removable_media", "web_upload", "share")
    message_attachments: bool = True
    """Also count ``message`` events that carry an attachment (``file.name``, ``custodes.media`` or
    ``email.attachments``)."""
    default_sensitivity: str = "medium"
    """Sensitivity of an event whose dataset names none (`custodes.dataset.sensitivity`)."""
    max_records: dict[str, int] = field(
        default_factory=lambda: {"low": 5000, "medium": 1000, "high": 200, "special": 50}
    )
    """Records (as events report them) tolerated per sensitivity within the window; one more raises an alert."""
    max_distinct_records: dict[str, int] = field(
        default_factory=lambda: {"low": 1000, "medium": 300, "high": 100, "special": 25}
    )
    """Distinct record ids tolerated per sensitivity within the window; one more raises an alert."""
    document_kinds: tuple[str, ...] = ("export",)
    """Activities whose documents (``custodes.object.id``, else ``file.name``) are counted."""
    document_window_s: int = 300
    """The window (seconds) distinct downloaded or exported documents are counted in."""
    min_documents: dict[str, int] = field(
        default_factory=lambda: {"low": 40, "medium": 20, "high": 10, "special": 5}
    )
    """Distinct documents within ``document_window_s`` that raise an alert (this many or more)."""
    role_max_records: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per staff role (staff directory ``role``), thresholds that replace ``max_records`` for the
    sensitivities given (``{"analyst": {"low": 20000}}``): a performance analyst's month-end reports
    are the job. The distinct-record thresholds scale by the same factor."""
    evidence_from: float = 0.25
    """An event is kept as evidence (the latest few, for the alert) when its window holds at least this
    fraction of either threshold; an in-order event whose window holds less clears it. A user far below
    every threshold holds no event ids in state. 0 keeps every counted event."""
