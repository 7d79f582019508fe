"""The demo reviewer account of ``custodes run --demo``.

The demo organisation is made up, so a newcomer gets a ready login instead of reading how to create
the first account. The account is a plain ``reviewer`` named :data:`DEMO_ACCOUNT`; each ``run --demo``
gives it a fresh random password (only its hash is stored, as for every account) and ends its old
sessions, so the password printed by the last run is the one that works. Creating it and every
password reset are recorded in the audit chain like any other account change.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import delete, select, update

from stream.contract.settings import Settings

DEMO_ACCOUNT = "demo-reviewer"
DEMO_ROLE = "reviewer"


def ensure_demo_account(settings: Settings, clock=time.time) -> tuple[str, str, bool]:
    """Create the demo account or reset its password; returns (name, password, created)."""
    from stream.store import audit_chain
    from stream.store.alerts import engine_for, migrate

    from .audit import AuditTrail
    from .auth import add_user, hash_password
    from .tables import sessions, users

    password = secrets.token_urlsafe(12)
    now = datetime.fromtimestamp(clock(), UTC)
    engine = engine_for(settings.db_url)
    try:
        migrate(engine)
        trail = AuditTrail(engine, clock, key=audit_chain.load_key(settings))
        with trail.transaction() as conn:
            row = conn.execute(select(users.c.id).where(users.c.name == DEMO_ACCOUNT)).first()
            if row is None:
                add_user(conn, DEMO_ACCOUNT, DEMO_ROLE, password, None, now)
                action, created = "user_add", True
            else:
                conn.execute(update(users).where(users.c.id == row.id).values(
                    password_hash=hash_password(password), disabled=False, updated_at=now))
                conn.execute(delete(sessions).where(sessions.c.user_id == row.id))
                action, created = "user_password_reset", False
            trail.append(conn, actor="cli:run --demo", role="admin", action=action, target_type="account",
                         target_id=DEMO_ACCOUNT, detail={"role": DEMO_ROLE, "demo": True})
    finally:
        engine.dispose()
    return DEMO_ACCOUNT, password, created
