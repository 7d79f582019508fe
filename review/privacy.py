"""Privacy by default: evidence fields that identify people or carry what they wrote are masked until
a reviewer reveals them, for a stated reason and a limited time (optionally with a supervisor's
approval). A reveal is per account and alert, and per scope: ``identity`` (who the subject is) or
``content`` (message text and the other sensitive evidence fields, and the values an alert's title,
explanation and facts refer to by placeholder: :mod:`detectors.masking`). Lists and exports always
show the masked form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from detectors.masking import MASKED_FIELDS, mask_value, masked_evidence, secrets_of, shown_alert, shown_text

from .tables import reveals

SENSITIVE_FIELDS = MASKED_FIELDS
"""Evidence snapshot keys masked unless content is revealed (:data:`detectors.masking.MASKED_FIELDS`)."""

MASK = "[masked]"

__all__ = ["MASK", "SENSITIVE_FIELDS", "active_scopes", "mask_value", "masked_evidence", "shown_alert",
           "shown_list_title"]


def shown_list_title(row: dict[str, Any]) -> str:
    """The title of an alert in a list (queue, related alerts, case, reveal requests, exports): always
    masked, whatever reveals the reader holds. Pops the row's ``facts`` and ``evidence`` if present."""
    facts, evidence = row.pop("facts", None), row.pop("evidence", None) or ()
    return shown_text(row.get("title") or "", facts, False, secrets_of(facts, evidence))


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
