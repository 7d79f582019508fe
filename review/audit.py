"""The append-only audit trail of what reviewers do, as a hash chain.

Each record carries ``prev_hash`` (the previous record's ``hash``; 64 zeros for the first) and
``hash`` = SHA-256 over a canonical serialisation of all its other fields (sorted-key JSON, UTC
timestamps with microseconds). Sequence numbers are consecutive from 1, so altering a record breaks
its own hash, and removing one breaks the link (and the numbering) of the next. ``verify`` reports
the first broken record. A removed *tail* is only caught against a remembered head (``expected_head``);
publish the head elsewhere (a log shipper, the metrics) to catch that too.

Writes go through :meth:`AuditTrail.transaction`, which serialises appenders (a process lock, and a
table lock on PostgreSQL), so the action and its audit record commit together or not at all.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, func, select, text

from .tables import audit_checkpoints, audit_log

GENESIS = "0" * 64
ACTIONS = (
    "login", "logout", "view", "reveal", "reveal_request", "reveal_approve", "reveal_deny", "assign", "status",
    "disposition", "comment", "case_create", "case_update", "case_add_alert", "export", "hold",
    "user_add", "user_disable", "user_password_reset", "audit_view", "retention",
)
"""Bounded: used as the ``action`` label of custodes_review_actions_total."""


def as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def canonical(record: dict[str, Any]) -> bytes:
    body = {
        "seq": int(record["seq"]),
        "ts": as_utc(record["ts"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": record["actor"],
        "role": record["role"],
        "action": record["action"],
        "target_type": record["target_type"],
        "target_id": record["target_id"],
        "detail": record["detail"],
        "prev_hash": record["prev_hash"],
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


class AuditTrail:
    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()

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
        last = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).first() or checkpoint(conn)  # after retention deleted every record, go on from the checkpoint
        record = {
            "seq": (last.seq + 1) if last else 1,
            "ts": datetime.fromtimestamp(self.clock(), UTC),
            "actor": actor,
            "role": role,
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
            "detail": orjson.loads(orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS)),
            "prev_hash": last.hash if last else GENESIS,
        }
        record["hash"] = record_hash(record)
        conn.execute(audit_log.insert().values(**record))
        return record


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    head_seq: int = 0
    head_hash: str = GENESIS
    broken_seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.records:,} records, head #{self.head_seq} {self.head_hash[:16]}…"
        return f"audit trail BROKEN at record #{self.broken_seq}: {self.problem} ({self.records:,} checked)"


def checkpoint(conn: Connection) -> Any:
    """The latest checkpoint (``.seq``, ``.hash``), or None while no record was ever deleted."""
    return conn.execute(select(audit_checkpoints.c.seq, audit_checkpoints.c.hash)
                        .order_by(audit_checkpoints.c.seq.desc()).limit(1)).first()


def verify(engine: Engine, expected_head: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain from the first record (or the retention checkpoint); stop at the first broken link.

    When retention has deleted the oldest records, the chain starts after the latest checkpoint, and
    that checkpoint must be attested by a ``retention`` record inside the verified chain: a forged
    checkpoint (to hide deleted records) fails verification.
    """
    prev_hash, expected_seq, n = GENESIS, 1, 0
    with engine.connect() as conn:
        start = checkpoint(conn)
    if start is not None:
        prev_hash, expected_seq = start.hash, start.seq + 1
    attested = start is None
    cols = [audit_log.c[name] for name in (
        "seq", "ts", "actor", "role", "action", "target_type", "target_id", "detail", "prev_hash", "hash")]
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(select(*cols).order_by(audit_log.c.seq))
        for row in result:
            rec = dict(row._mapping)
            n += 1
            if rec["seq"] != expected_seq:
                missing = f"#{expected_seq}" if rec["seq"] == expected_seq + 1 else \
                    f"#{expected_seq}..#{rec['seq'] - 1}"
                return ChainReport(False, n, broken_seq=rec["seq"],
                                   problem=f"record(s) {missing} missing before it")
            if rec["prev_hash"] != prev_hash:
                return ChainReport(False, n, broken_seq=rec["seq"],
                                   problem="prev_hash does not match the previous record (removed or altered)")
            if record_hash(rec) != rec["hash"]:
                return ChainReport(False, n, broken_seq=rec["seq"], problem="content altered (hash mismatch)")
            if (not attested and rec["action"] == "retention"
                    and rec["detail"].get("checkpoint_seq") == start.seq
                    and rec["detail"].get("checkpoint_hash") == start.hash):
                attested = True
            prev_hash, expected_seq = rec["hash"], expected_seq + 1
    head_seq = expected_seq - 1
    if not attested:
        return ChainReport(False, n, head_seq, prev_hash, broken_seq=start.seq,
                           problem="the retention checkpoint is not attested by any record in the chain")
    if expected_head is not None:
        seq, digest = expected_head
        if seq > head_seq:
            return ChainReport(False, n, head_seq, prev_hash, broken_seq=head_seq + 1,
                               problem=f"records after #{head_seq} up to #{seq} were removed")
        if seq > 0:
            with engine.connect() as conn:
                stored = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
            if stored != digest:
                return ChainReport(False, n, head_seq, prev_hash, broken_seq=seq,
                                   problem="differs from the head remembered earlier (chain rewritten)")
    return ChainReport(True, n, head_seq, prev_hash)


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
