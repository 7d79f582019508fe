"""The database harness itself: ``database_url`` works on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .services import in_ci, service_unavailable


def _roundtrip(url: str) -> list[tuple[int, str]]:
    metadata = sa.MetaData()
    events = sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("actor", sa.String(64), nullable=False),
    )
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(events), [{"id": 1, "actor": "alice"}, {"id": 2, "actor": "bob"}])
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(events.c.id, events.c.actor).order_by(events.c.id))]
    finally:
        engine.dispose()


def test_database_url_roundtrip(database_url, request):
    assert request.node.callspec.id in ("sqlite", "postgresql")
    if request.node.callspec.id == "sqlite":
        assert database_url.startswith("sqlite:///") and database_url.endswith("/custodes.db")
    else:
        assert database_url.startswith("postgresql+psycopg://")
        assert request.node.get_closest_marker("postgres") is not None
    assert _roundtrip(database_url) == [(1, "alice"), (2, "bob")]


@pytest.mark.postgres
def test_postgres_url_is_a_fresh_database(postgres_url):
    url = sa.make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg" and url.database.startswith("custodes_")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            ).scalar()
            server_addr = conn.execute(sa.text("SELECT inet_server_addr()::text")).scalar()
    finally:
        engine.dispose()
    assert tables == 0
    assert server_addr in (None, "127.0.0.1/32") or url.host != "127.0.0.1"


@pytest.mark.postgres
def test_databases_are_dropped_after_the_test(postgres_server):
    name = postgres_server.create_database()
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    postgres_server.drop_database(name)
    with postgres_server.connect() as conn:
        leftovers = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'custodes\\_%%'").fetchall()
    # Only databases of tests still running (none in a serial run) may exist.
    assert leftovers == []


@pytest.mark.parametrize("ci", ["true", ""], ids=["ci", "local"])
def test_missing_service_skips_locally_and_fails_in_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    assert in_ci() is (ci == "true")
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="no frobnicator"):
        service_unavailable("no frobnicator on this machine")
