"""Privacy by default: evidence fields that identify people or carry what they wrote are masked until
a reviewer reveals them, for a stated reason and a limited time (optionally with a supervisor's
approval). A reveal is per account and alert, and per scope: ``identity`` (who the subject is) or
``content`` (message text and the other sensitive evidence fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from .tables import reveals

SENSITIVE_FIELDS = frozenset({
    "content", "file_name", "record_ids", "case_ref", "recipient_party", "lat", "lon", "media",
    "email_to", "user_id", "user_name", "message",
})
"""Evidence snapshot keys masked unless content is revealed."""

MASK = "[masked]"


def mask_value(value: Any) -> dict[str, Any]:
    """What a masked field shows: that something is there and how big, never the value."""
    if isinstance(value, str):
        return {"masked": True, "size": f"{len(value):,} characters"}
    if isinstance(value, list | tuple):
        return {"masked": True, "size": f"{len(value):,} items"}
    return {"masked": True, "size": ""}


def masked_evidence(evidence: list[dict[str, Any]], reveal_content: bool) -> list[dict[str, Any]]:
    """Copies of the evidence snapshots with sensitive fields replaced, oldest first."""
    out = []
    for snap in evidence:
        if not isinstance(snap, dict):
            continue
        copy = {}
        for key, value in snap.items():
            copy[key] = mask_value(value) if key in SENSITIVE_FIELDS and not reveal_content else value
        out.append(copy)
    out.sort(key=lambda s: (s.get("ts") if isinstance(s.get("ts"), int | float) else 0))
    return out


def active_scopes(conn: Connection, account: str, alert_id: str, now: datetime) -> dict[str, datetime]:
    """Scope -> expiry of this account's approved, unexpired reveals for the alert."""
    rows = conn.execute(
        select(reveals.c.scope, reveals.c.expires_at).where(
            reveals.c.account == account, reveals.c.alert_id == alert_id, reveals.c.status == "approved",
        )
    )
    out: dict[str, datetime] = {}
    for scope, expires in rows:
        if expires is None:
            continue
        expires = expires.replace(tzinfo=now.tzinfo) if expires.tzinfo is None else expires
        if expires > now and (scope not in out or expires > out[scope]):
            out[scope] = expires
    return out
