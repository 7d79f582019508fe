"""Accounts, passwords (argon2), server-side sessions, CSRF tokens and login throttling.

The session cookie holds a random token; the store keeps only its SHA-256, so a copy of the database
does not let anyone log in. Each session has its own CSRF token: forms send it as ``csrf_token``,
API calls as the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, delete, select, update

from .tables import ROLES, sessions, users

COOKIE = "custodes_session"
LOGIN_CSRF_COOKIE = "custodes_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    linked_user_id: str | None
    csrf_token: str = ""
    session: str = ""
    """SHA-256 of the session token (empty for accounts loaded outside a session)."""

    @property
    def actor_user_id(self) -> str:
        """The identity under which this account's actions go into the event stream."""
        return self.linked_user_id or self.name


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise ValueError("passwords must have at least 12 characters")
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (a dummy hash is checked when it does not)."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(conn: Connection, name: str, role: str, password: str | None, linked_user_id: str | None,
             now: datetime) -> int:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 255:
        raise ValueError("account name must have 1..255 characters")
    existing = conn.execute(select(users.c.id).where(users.c.name == name)).first()
    if existing:
        raise ValueError(f"account {name!r} exists already")
    result = conn.execute(users.insert().values(
        name=name, role=role, password_hash=hash_password(password) if password else None,
        linked_user_id=linked_user_id or None, disabled=False, created_at=now, updated_at=now,
    ))
    return int(result.inserted_primary_key[0])


def disable_user(conn: Connection, name: str, now: datetime) -> bool:
    row = conn.execute(select(users.c.id).where(users.c.name == name)).first()
    if row is None:
        return False
    conn.execute(update(users).where(users.c.id == row.id).values(disabled=True, updated_at=now))
    conn.execute(delete(sessions).where(sessions.c.user_id == row.id))
    return True


class Sessions:
    def __init__(self, engine: Engine, clock: Callable[[], float], idle: timedelta, max_age: timedelta) -> None:
        self.engine = engine
        self.clock = clock
        self.idle = idle
        self.max_age = max_age

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def authenticate(self, name: str, password: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        ok = check_password(row.password_hash if row is not None else None, password)
        if not ok or row is None or row.disabled:
            return None
        return Account(row.id, row.name, row.role, row.linked_user_id)

    def account_role(self, name: str) -> str | None:
        """The role of the account called ``name`` (disabled or not), None when there is none."""
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.role).where(users.c.name == name)).scalar()

    def by_name(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None or row.disabled:
            return None
        return Account(row.id, row.name, row.role, row.linked_user_id)

    def create(self, account: Account) -> tuple[str, Account]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._now()
        with self.engine.begin() as conn:
            conn.execute(sessions.insert().values(
                token_hash=token_hash(token), user_id=account.id, csrf_token=csrf, created_at=now, last_seen=now,
            ))
            # housekeeping: drop this account's expired sessions
            conn.execute(delete(sessions).where(
                sessions.c.user_id == account.id, sessions.c.last_seen < now - self.idle))
        return token, Account(account.id, account.name, account.role, account.linked_user_id, csrf,
                              token_hash(token))

    def lookup(self, token: str | None) -> Account | None:
        if not token or len(token) > 128:
            return None
        th = token_hash(token)
        now = self._now()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.csrf_token, sessions.c.created_at, sessions.c.last_seen, users)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_hash == th)
            ).first()
        if row is None:
            return None
        created = _utc(row.created_at)
        last_seen = _utc(row.last_seen)
        if row.disabled or now - last_seen > self.idle or now - created > self.max_age:
            self.drop(th)
            return None
        if (now - last_seen).total_seconds() > 30:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.token_hash == th).values(last_seen=now))
        return Account(row.id, row.name, row.role, row.linked_user_id, row.csrf_token, th)

    def drop(self, token_hash_: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash_))


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class Throttle:
    """Failed logins per key in a sliding window (in memory, per process)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        horizon = self.clock() - self.window_s
        while q and q[0] <= horizon:
            q.popleft()
        return q

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key)) >= self.limit

    def fail(self, key: str) -> None:
        with self._lock:
            self._recent(key).append(self.clock())
            if len(self._failures) > 100_000:  # bounded memory under a spray of names
                for k in [k for k, q in self._failures.items() if not q][:50_000]:
                    del self._failures[k]

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and secrets.compare_digest(expected, given)
