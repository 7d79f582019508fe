"""activity_days: one person's activity counts per UTC day, by kind (the person story chart)

Revision ID: c20_activity_days
Revises: c14_audit_keyed
"""

import sqlalchemy as sa
from alembic import op

revision = "c20_activity_days"
down_revision = "c14_audit_keyed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_days",
        sa.Column("person", sa.String(1024), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_activity_days_last_seen", "activity_days", ["last_seen"])
    op.create_index("ix_activity_days_day", "activity_days", ["day"])


def downgrade() -> None:
    op.drop_table("activity_days")
