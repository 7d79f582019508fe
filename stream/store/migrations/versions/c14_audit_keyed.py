"""audit records carry their hash version (1: plain SHA-256, 2: HMAC-SHA256 with the audit key)

Existing records are version 1 and still verify; records written from now on are keyed. The next
keyed record covers the plain ones before it through its ``prev_hash``.

Revision ID: c14_audit_keyed
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "c14_audit_keyed"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("hash_version", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash_version")
