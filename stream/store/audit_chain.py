"""The audit chain: an append-only, keyed hash chain of what reviewers (and the retention job) do.

Each record carries ``prev_hash`` (the previous record's ``hash``; 64 zeros for the first) and
``hash`` over a canonical serialisation of all its other fields (sorted-key JSON, UTC timestamps with
microseconds). ``hash_version`` says how:

- 2 (every record written now): HMAC-SHA256 with the **audit key**, which is kept out of the database
  (``CUSTODES_AUDIT_KEY``, or ``data_dir/audit.key`` mode 0600). Whoever can write the database but
  lacks the key cannot rewrite a record and recompute the hashes after it.
- 1: plain SHA-256, records written before the chain was keyed. They stay verifiable, and the first
  keyed record after them covers them through its ``prev_hash``. A plain record after a keyed one, or a
  chain that ends in plain records, fails verification (that is what a rewrite without the key looks
  like); ``seal`` appends a keyed record to an upgraded chain.

Sequence numbers are consecutive from 1, so altering a record breaks its own hash, and removing one
breaks the link (and the numbering) of the next. A removed *tail* is caught against a remembered head:
the review app writes a signed head (seq, hash, HMAC) to its log and to ``data_dir/audit-head.json``
after each verification, and ``custodes audit verify`` checks the chain still holds that head.

When retention deletes the oldest records, the chain starts after a checkpoint (the last deleted
record's seq and hash) that a keyed ``retention`` record inside the chain attests.

This module is the store's: the retention job (stream) and the review app (review) both write the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from stream.contract.settings import Settings
from stream.privacy.key_file import read_or_create
from stream.store.review_tables import audit_checkpoints, audit_log

GENESIS = "0" * 64
PLAIN, KEYED = 1, 2
KEY_FILE = "audit.key"
HEAD_FILE = "audit-head.json"


class KeyMissing(RuntimeError):
    pass


def load_key(settings: Settings, create: bool = True) -> bytes:
    """The audit key: ``settings.audit_key``, else ``data_dir/audit.key`` (created once when ``create``).

    A verifier passes ``create=False``: a fresh random key would only make every keyed record fail.
    The key is never printed or logged.
    """
    if settings.audit_key is not None:
        key = settings.audit_key.get_secret_value()
        if len(key) < 32:
            raise ValueError("the audit key must have at least 32 characters")
        return key.encode()
    path = Path(settings.data_dir) / KEY_FILE
    key = read_or_create(path, "audit key", create)
    if key is None:
        raise KeyMissing(f"no audit key: set CUSTODES_AUDIT_KEY or provide {path}")
    return key


def as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def canonical(record: dict[str, Any], version: int = PLAIN) -> bytes:
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
    if version != PLAIN:
        body["hash_version"] = version
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any], key: bytes | None) -> str:
    """The record's hash by its ``hash_version`` (default: keyed). A keyed record needs the key."""
    version = int(record.get("hash_version") or KEYED)
    if version == PLAIN:
        return hashlib.sha256(canonical(record)).hexdigest()
    if version != KEYED:
        raise ValueError(f"unknown hash version {version}")
    if not key:
        raise KeyMissing("a keyed audit record needs the audit key")
    return hmac.new(key, canonical(record, KEYED), hashlib.sha256).hexdigest()


def checkpoint(conn: Connection) -> Any:
    """The latest checkpoint (``.seq``, ``.hash``), or None while no record was ever deleted."""
    return conn.execute(
        select(audit_checkpoints.c.seq, audit_checkpoints.c.hash).order_by(audit_checkpoints.c.seq.desc()).limit(1)
    ).first()


def head(conn: Connection) -> Any:
    """The newest record (``.seq``, ``.hash``, ``.hash_version``), or None for an empty chain."""
    return conn.execute(
        select(audit_log.c.seq, audit_log.c.hash, audit_log.c.hash_version).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()


def append(
    conn: Connection,
    key: bytes,
    now: datetime,
    *,
    actor: str,
    role: str,
    action: str,
    target_type: str,
    target_id: str,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add a keyed record inside ``conn``'s transaction (the caller serialises appenders)."""
    last = head(conn) or checkpoint(conn)  # after retention deleted every record, go on from the checkpoint
    record = {
        "seq": (last.seq + 1) if last else 1,
        "ts": as_utc(now),
        "actor": actor,
        "role": role,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "detail": orjson.loads(orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS)),
        "prev_hash": last.hash if last else GENESIS,
        "hash_version": KEYED,
    }
    record["hash"] = record_hash(record, key)
    conn.execute(audit_log.insert().values(**record))
    return record


def set_checkpoint(conn: Connection, seq: int, digest: str, now: datetime) -> None:
    """Move the chain's start to after record ``seq`` (whose hash is ``digest``)."""
    if conn.execute(select(audit_checkpoints.c.seq)).first() is not None:
        conn.execute(update(audit_checkpoints).values(seq=seq, hash=digest, created_at=now))
    else:
        conn.execute(insert(audit_checkpoints).values(seq=seq, hash=digest, created_at=now))


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


_COLS = (
    "seq",
    "ts",
    "actor",
    "role",
    "action",
    "target_type",
    "target_id",
    "detail",
    "prev_hash",
    "hash",
    "hash_version",
)


def verify(engine: Engine, expected_head: tuple[int, str] | None = None, *, key: bytes) -> ChainReport:
    """Walk the chain from the first record (or the retention checkpoint); stop at the first broken link.

    When retention has deleted the oldest records, the chain starts after the latest checkpoint, and
    that checkpoint must be attested by a ``retention`` record inside the verified chain: a forged
    checkpoint (to hide deleted records) fails verification. ``expected_head`` (seq, hash) is a head
    remembered earlier (by this process, or the signed head file): the chain must still hold it.
    """
    prev_hash, expected_seq, n, keyed, version = GENESIS, 1, 0, False, PLAIN
    with engine.connect() as conn:
        start = checkpoint(conn)
    if start is not None:
        prev_hash, expected_seq = start.hash, start.seq + 1
    attested = start is None
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            select(*[audit_log.c[c] for c in _COLS]).order_by(audit_log.c.seq)
        )
        for row in result:
            rec = dict(row._mapping)
            n += 1
            seq = rec["seq"]
            if seq != expected_seq:
                missing = f"#{expected_seq}" if seq == expected_seq + 1 else f"#{expected_seq}..#{seq - 1}"
                return ChainReport(False, n, broken_seq=seq, problem=f"record(s) {missing} missing before it")
            if rec["prev_hash"] != prev_hash:
                return ChainReport(
                    False,
                    n,
                    broken_seq=seq,
                    problem="prev_hash does not match the previous record (removed or altered)",
                )
            version = rec["hash_version"]
            if version not in (PLAIN, KEYED):
                return ChainReport(False, n, broken_seq=seq, problem=f"unknown hash version {version}")
            if version == PLAIN and keyed:
                return ChainReport(
                    False, n, broken_seq=seq, problem="an unkeyed record after keyed ones (rewritten without the key)"
                )
            keyed = keyed or version == KEYED
            if not hmac.compare_digest(record_hash(rec, key), rec["hash"]):
                return ChainReport(False, n, broken_seq=seq, problem="content altered (hash mismatch)")
            if (
                not attested
                and rec["action"] == "retention"
                and version == KEYED
                and rec["detail"].get("checkpoint_seq") == start.seq
                and rec["detail"].get("checkpoint_hash") == start.hash
            ):
                attested = True
            prev_hash, expected_seq = rec["hash"], expected_seq + 1
    head_seq = expected_seq - 1
    if not attested:
        return ChainReport(
            False,
            n,
            head_seq,
            prev_hash,
            broken_seq=start.seq,
            problem="the retention checkpoint is not attested by any keyed record in the chain",
        )
    if n and version == PLAIN:
        return ChainReport(
            False,
            n,
            head_seq,
            prev_hash,
            broken_seq=head_seq,
            problem="the chain ends in unkeyed (version 1) records: anyone could have rewritten "
            "them; run `custodes audit seal` once after upgrading",
        )
    if expected_head is not None:
        seq, digest = expected_head
        if seq > head_seq:
            return ChainReport(
                False,
                n,
                head_seq,
                prev_hash,
                broken_seq=head_seq + 1,
                problem=f"records after #{head_seq} up to #{seq} were removed",
            )
        if seq > 0 and (start is None or seq > start.seq):
            with engine.connect() as conn:
                stored = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
            if stored != digest:
                return ChainReport(
                    False,
                    n,
                    head_seq,
                    prev_hash,
                    broken_seq=seq,
                    problem="differs from the head remembered earlier (chain rewritten)",
                )
    return ChainReport(True, n, head_seq, prev_hash)


# -- the signed head, kept outside the database ----------------------------------------------------


def _head_signature(key: bytes, seq: int, digest: str, at: str) -> str:
    return hmac.new(key, f"custodes-audit-head|{seq}|{digest}|{at}".encode(), hashlib.sha256).hexdigest()


def signed_head(key: bytes, seq: int, digest: str, now: datetime) -> dict[str, Any]:
    at = as_utc(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"seq": seq, "hash": digest, "at": at, "sig": _head_signature(key, seq, digest, at)}


def write_head(path: Path, key: bytes, seq: int, digest: str, now: datetime) -> dict[str, Any] | None:
    """Remember a verified head in ``path`` (atomically; never moves it backwards). Returns what was written."""
    current = read_head(path, key)
    if current is not None and current[0] > seq:
        return None
    head_ = signed_head(key, seq, digest, now)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(head_))
    os.replace(tmp, path)
    return head_


class HeadForged(ValueError):
    pass


def read_head(path: Path, key: bytes) -> tuple[int, str] | None:
    """The head remembered in ``path`` as (seq, hash), None when there is no file; HeadForged when its
    signature does not match (someone edited it)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        raise HeadForged(f"{path} is not a signed audit head") from None
    try:
        seq, digest, at, sig = int(data["seq"]), str(data["hash"]), str(data["at"]), str(data["sig"])
    except (KeyError, TypeError, ValueError):
        raise HeadForged(f"{path} is not a signed audit head") from None
    if not hmac.compare_digest(_head_signature(key, seq, digest, at), sig):
        raise HeadForged(f"{path}: the signature does not match (edited, or written with another key)")
    return seq, digest
