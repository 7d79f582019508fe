"""The review app's tables (SQLAlchemy Core); migrations 0002, 0004 and c14_audit_keyed create them.

They are defined here, in the store, because the store's retention job deletes from them (review/
depends on stream/, never the reverse); ``review.tables`` re-exports them.

They live on their own ``MetaData``: alerts are referenced by id only (no foreign key), so the
retention job can still delete an alert's row; legal holds are checked by that job, not by the schema.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

ROLES = ("reviewer", "supervisor", "auditor", "admin")
DISPOSITIONS = ("true_positive", "false_positive", "benign", "duplicate")
CASE_STATUSES = ("open", "closed")
REVEAL_SCOPES = ("identity", "content")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255)),
    Column("linked_user_id", String(1024)),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Index("ix_sessions_user", "user_id"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(32)),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE")),
    Column("author", String(255), nullable=False),
    Column("kind", String(16), nullable=False, server_default="comment"),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_comments_alert", "alert_id"),
    Index("ix_comments_case", "case_id"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(1024), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("legal_hold", Boolean, nullable=False, server_default=false()),
    Column("created_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_cases_subject", "subject"),
)

case_alerts = Table(
    "case_alerts",
    metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("alert_id", String(32), primary_key=True),
    Column("added_by", String(255), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Index("ix_case_alerts_alert", "alert_id"),
)

reveals = Table(
    "reveals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(255), nullable=False),
    Column("alert_id", String(32), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending / approved / denied
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(255)),
    Column("decided_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Index("ix_reveals_alert_account", "alert_id", "account"),
    Index("ix_reveals_status", "status"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_type", String(16), nullable=False),
    Column("target_id", String(255), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("hash_version", Integer, nullable=False, server_default="1"),
    # 1: plain SHA-256 (records written before the keyed chain); 2: HMAC-SHA256 with the audit key
    Index("ix_audit_log_ts", "ts"),
    Index("ix_audit_log_actor", "actor"),
    Index("ix_audit_log_target", "target_type", "target_id"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    # Where the chain starts once retention has deleted its oldest records: the last deleted
    # record's seq and hash. Each checkpoint is attested by a "retention" record in the chain itself.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
