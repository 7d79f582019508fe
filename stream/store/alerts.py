"""The alert store: SQLite by default, PostgreSQL when deployed (SQLAlchemy Core, Alembic migrations).

``upsert_alerts`` is idempotent: an alert id already stored is updated only when the incoming copy
folds more hits into it (a higher ``count``), so redelivered or replayed alerts never add rows.

Free text may hold NUL (a message's content is kept as sent, in an alert's evidence), which PostgreSQL
cannot store in text (``text fields cannot contain NUL``) nor in ``jsonb``: every string an alert row
holds (columns and the strings inside its JSON) has each NUL replaced by U+2400 SYMBOL FOR NULL (``␀``)
on the way in, on SQLite as on PostgreSQL, so the stored alert reads the same on both. Identifier fields
never hold one (validation rejects control characters in them, ``control_character``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, and_, create_engine, event, func, or_, select
from sqlalchemy.engine import make_url

from detectors.alert import Alert
from stream.store.tables import alerts

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(eng, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (review app) never block the sink
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return eng
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _insert(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


NUL_STAND_IN = "\u2400"
"""What a NUL in an alert's text is stored as (``␀``, SYMBOL FOR NULL): visible, and storable anywhere."""


def without_nul(value: Any) -> Any:
    """``value`` (a string, or JSON made of dicts, lists and tuples) with every NUL in its strings (keys
    too) replaced by :data:`NUL_STAND_IN`. Returns ``value`` itself when it holds no NUL."""
    t = type(value)
    if t is str:
        return value.replace("\x00", NUL_STAND_IN) if "\x00" in value else value
    if t is dict:
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [without_nul(v) for v in value]
    return value


def alert_row(alert: Alert, now: datetime) -> dict[str, Any]:
    """The row of an alert (raises ValueError or OverflowError for a time no datetime can hold)."""
    return {
        "id": alert.id,
        "detector": alert.detector,
        "detector_version": alert.detector_version,
        "severity": alert.severity,
        "score": alert.score,
        "subject": without_nul(alert.subject),
        "title": without_nul(alert.title),
        "explanation": without_nul(alert.explanation),
        "ts": utc(alert.ts),
        "first_seen": utc(alert.first_seen),
        "last_seen": utc(alert.last_seen),
        "count": alert.count,
        "evidence_event_ids": without_nul(list(alert.evidence_event_ids)),
        "evidence": without_nul(list(alert.evidence)),
        "facts": without_nul(alert.facts),
        "created_at": now,
        "updated_at": now,
    }


_UPDATED_ON_FOLD = (
    "severity", "score", "title", "explanation", "ts", "first_seen", "last_seen", "count",
    "evidence_event_ids", "evidence", "facts", "updated_at",
)


class AlertStore:
    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self.url = url
        self.engine = engine_for(url)
        if migrate_schema:
            migrate(self.engine)

    def upsert_alerts(self, batch: Sequence[Alert], now: datetime | None = None) -> int:
        """Store alerts; returns how many rows were inserted or updated."""
        if not batch:
            return 0
        now = now or datetime.now(UTC)
        # one row per id within the batch: the copy that folds the most hits wins
        best: dict[str, Alert] = {}
        for a in batch:
            if a.id not in best or a.count > best[a.id].count:
                best[a.id] = a
        rows = [alert_row(a, now) for a in best.values()]
        insert = _insert(self.engine)
        stmt = insert(alerts)
        stmt = stmt.on_conflict_do_update(
            index_elements=[alerts.c.id],
            set_={c: stmt.excluded[c] for c in _UPDATED_ON_FOLD},
            where=stmt.excluded.count > alerts.c.count,
        ).returning(alerts.c.id)
        with self.engine.begin() as conn:
            # RETURNING lists the rows really inserted or updated (rowcount is unreliable for
            # multi-row upserts on some drivers)
            return len(conn.execute(stmt, rows).all())

    def list_alerts(self, limit: int = 50, order: str = "event", **filters: Any) -> list[dict[str, Any]]:
        """Newest first: by the time of the events (``order="event"``) or by when the sink first
        stored the alert (``"stored"``: freshly ingested alerts about older events come first)."""
        if order not in ("event", "stored"):
            raise ValueError("order must be 'event' or 'stored'")
        newest = (alerts.c.created_at.desc(), alerts.c.ts.desc()) if order == "stored" else (alerts.c.ts.desc(),)
        q = select(alerts).order_by(*newest, alerts.c.id).limit(limit)
        for name, value in filters.items():
            if value is not None:
                q = q.where(alerts.c[name] == value)
        with self.engine.connect() as conn:
            # plain str keys (SQLAlchemy's are a str subclass, which orjson refuses)
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]

    def stored_after(self, after: tuple[datetime, str] | None, limit: int = 1000) -> list[dict[str, Any]]:
        """Alerts first stored after ``after`` (a (created_at, id) pair), oldest first; with None, the
        newest stored alert only (a starting point for following new alerts)."""
        q = select(alerts)
        if after is None:
            q = q.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(1)
        else:
            at, last_id = after
            q = q.where(or_(alerts.c.created_at > at, and_(alerts.c.created_at == at, alerts.c.id > last_id)))
            q = q.order_by(alerts.c.created_at, alerts.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]

    def count_alerts(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(alerts)).scalar_one()

    def ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(alerts.c.id)).scalars())

    def dispose(self) -> None:
        self.engine.dispose()


def store_all(url: str, batch: Iterable[Alert]) -> int:
    store = AlertStore(url)
    try:
        return store.upsert_alerts(list(batch))
    finally:
        store.dispose()
