"""The store's tables (SQLAlchemy Core). Alembic migrations in stream/store/migrations create them.

Times are timezone-aware UTC. ``alerts.ts`` is the event time of the alert's latest evidence and is
what retention measures; ``created_at`` is when the sink first stored the row.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("detector", String(64), nullable=False),
    Column("detector_version", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("title", Text, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False, server_default="1"),
    Column("evidence_event_ids", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("facts", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("assignee", String(255)),
    Column("disposition", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_alerts_status_ts", "status", "ts"),
    Index("ix_alerts_subject", "subject"),
    Index("ix_alerts_detector_ts", "detector", "ts"),
    Index("ix_alerts_ts", "ts"),
)

ALERT_STATUSES = ("new", "investigating", "closed")

holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_kind", String(16), nullable=False),  # "alert" or "case"
    Column("target_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("placed_by", String(255), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("released_by", String(255)),
    Column("released_at", DateTime(timezone=True)),
    Column("release_reason", Text),
    Index("ix_holds_target", "target_kind", "target_id"),
)

retention_receipts = Table(
    "retention_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("cutoff", DateTime(timezone=True), nullable=False),
    Column("deleted", Integer, nullable=False, server_default="0"),
    Column("oldest", DateTime(timezone=True)),
    Column("newest", DateTime(timezone=True)),
    Column("kept_on_hold", Integer, nullable=False, server_default="0"),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_retention_receipts_started", "started_at"),
)
