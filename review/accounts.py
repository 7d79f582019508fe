"""Read-only facts about review accounts that other commands need (``custodes run``'s first-login hint)."""

from __future__ import annotations

from sqlalchemy import func, select

from stream.contract.settings import Settings


def count_accounts(settings: Settings) -> int:
    """Active review accounts in the store (0 when the store has no tables yet)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from stream.store.alerts import engine_for

    from .tables import users

    engine = engine_for(settings.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users).where(users.c.disabled.is_(False)))
                       .scalar_one())
    except (OperationalError, ProgrammingError):
        return 0
    finally:
        engine.dispose()
