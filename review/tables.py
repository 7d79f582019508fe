"""The review app's tables. They are defined in :mod:`stream.store.review_tables` (the store owns every table
its migrations create and its retention job deletes from); this module re-exports them."""

from stream.store.review_tables import (
    CASE_STATUSES,
    DISPOSITIONS,
    REVEAL_SCOPES,
    ROLES,
    audit_checkpoints,
    audit_log,
    case_alerts,
    cases,
    comments,
    metadata,
    reveals,
    sessions,
    users,
)

__all__ = [
    "CASE_STATUSES", "DISPOSITIONS", "REVEAL_SCOPES", "ROLES", "audit_checkpoints", "audit_log", "case_alerts",
    "cases", "comments", "metadata", "reveals", "sessions", "users",
]
