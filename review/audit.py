"""The review app's audit trail: every reviewer action appends a record to the keyed hash chain of
:mod:`stream.store.audit_chain` (HMAC-SHA256 with the audit key kept out of the database; see there).

Writes go through :meth:`AuditTrail.transaction`, which serialises appenders (a process lock, and a
table lock on PostgreSQL), so the action and its audit record commit together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, text
from sqlalchemy.exc import IntegrityError

from stream.store import audit_chain
from stream.store.audit_chain import (  # noqa: F401  (the chain's API, as the review app uses it)
    GENESIS,
    KEYED,
    PLAIN,
    ChainReport,
    as_utc,
    canonical,
    checkpoint,
    record_hash,
    verify,
)

from .tables import audit_log

ACTIONS = (
    "login", "logout", "view", "reveal", "reveal_request", "reveal_approve", "reveal_deny", "assign", "status",
    "disposition", "comment", "case_create", "case_update", "case_add_alert", "export", "hold",
    "user_add", "user_disable", "user_password_reset", "audit_view", "retention", "login_failed", "audit_seal",
)
"""Bounded: used as the ``action`` label of custodes_review_actions_total."""


class AuditTrail:
    def __init__(self, engine: Engine, clock: Callable[[], float], *, key: bytes) -> None:
        self.engine = engine
        self.clock = clock
        self._key = key
        self._lock = threading.Lock()

    @property
    def key(self) -> bytes:
        return self._key

    def __repr__(self) -> str:  # never show the key
        return "AuditTrail(<key hidden>)"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
            yield conn

    def append(self, conn: Connection, *, actor: str, role: str, action: str, target_type: str,
               target_id: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add a record inside ``conn``'s transaction (opened by :meth:`transaction`)."""
        assert action in ACTIONS, action
        return audit_chain.append(conn, self._key, datetime.fromtimestamp(self.clock(), UTC), actor=actor,
                                  role=role, action=action, target_type=target_type, target_id=target_id,
                                  detail=detail)

    def seal(self, actor: str) -> dict[str, Any] | None:
        """After upgrading from an unkeyed chain: append a keyed record that covers the plain ones
        (``prev_hash``). Does nothing when the chain is empty or already ends in a keyed record, or when
        another process appended at the same moment (its record is keyed)."""
        try:
            with self.transaction() as conn:
                last = audit_chain.head(conn)
                if last is None or last.hash_version == KEYED:
                    return None
                return self.append(conn, actor=actor, role="system", action="audit_seal", target_type="audit_log",
                                   target_id=str(last.seq), detail={"sealed_up_to": last.seq})
        except IntegrityError:  # two processes starting at once (SQLite): the other one's record won
            return None


def query(engine: Engine, *, actor: str | None = None, action: str | None = None,
          target: str | None = None, since: datetime | None = None, until: datetime | None = None,
          limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    conds = []
    if actor:
        conds.append(audit_log.c.actor == actor)
    if action:
        conds.append(audit_log.c.action == action)
    if target:
        conds.append(audit_log.c.target_id == target)
    if since:
        conds.append(audit_log.c.ts >= since)
    if until:
        conds.append(audit_log.c.ts < until)
    where = and_(*conds) if conds else None
    q = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit).offset(offset)
    c = select(func.count()).select_from(audit_log)
    if where is not None:
        q, c = q.where(where), c.where(where)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
        total = conn.execute(c).scalar_one()
    for r in rows:
        r["ts"] = as_utc(r["ts"])
    return rows, total
