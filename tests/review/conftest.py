"""Review app fixtures. ``database_url`` (sqlite and postgresql) comes from tests/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import update

from review.app import create_app
from review.audit import AuditTrail
from review.auth import add_user, hash_password
from review.config import ReviewConfig
from review.events import MemoryEmitter
from review.tables import users
from stream.contract.settings import Settings
from stream.store.alerts import engine_for, migrate

from .seed import NOW, PASSWORD

ACCOUNTS = {
    # name: (role, linked monitored user id)
    "rita": ("reviewer", "u-rita"),
    "rob": ("reviewer", None),
    "sam": ("supervisor", "u-sam"),
    "aud": ("auditor", None),
    "adam": ("admin", None),
}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


AUDIT_KEY = "test-audit-key-" + "k" * 32
"""The audit chain's key in these tests (the app gets it as ``Settings.audit_key``; the CLI as
CUSTODES_AUDIT_KEY)."""

PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test session


def add_accounts(url: str) -> None:
    engine = engine_for(url)
    migrate(engine)
    trail = AuditTrail(engine, lambda: NOW, key=AUDIT_KEY.encode())
    with trail.transaction() as conn:
        for name, (role, linked) in ACCOUNTS.items():
            add_user(conn, name, role, None, linked, datetime.fromtimestamp(NOW, UTC))
        conn.execute(update(users).values(password_hash=PASSWORD_HASH))
    engine.dispose()


def build(url: str, data_dir, clock: Clock, **config) -> tuple:
    settings = Settings(data_dir=data_dir, database_url=url, audit_key=SecretStr(AUDIT_KEY))
    registry = CollectorRegistry()
    emitter = MemoryEmitter()
    cfg = ReviewConfig(**{"cookie_secure": False, **config})
    app = create_app(settings, registry=registry, clock=clock, config=cfg, emitter=emitter)
    return app, registry, emitter


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def review_url(database_url: str) -> str:
    add_accounts(database_url)
    return database_url


@pytest.fixture
def app_parts(review_url, tmp_path, clock):
    app, registry, emitter = build(review_url, tmp_path, clock)
    yield app, registry, emitter
    app.state.review.engine.dispose()


@pytest.fixture
def app(app_parts):
    return app_parts[0]


@pytest.fixture
def client(app):
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def make_client(app):
    """More clients on the same app (one per account)."""
    made = []

    def make() -> TestClient:
        c = TestClient(app, follow_redirects=False)
        c.__enter__()
        made.append(c)
        return c

    yield make
    for c in made:
        c.__exit__(None, None, None)
