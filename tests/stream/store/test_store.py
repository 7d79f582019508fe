import dataclasses

import pytest
from sqlalchemy import inspect

from detectors.alert import Alert, alert_id
from stream.store.alerts import AlertStore


def make_alert(n: int = 1, *, count: int = 1, subject: str = "alice") -> Alert:
    return Alert(
        id=alert_id("bulk_export", subject, f"high:{n}"), detector="bulk_export", detector_version=1,
        severity="high", score=70.0, subject=subject, title="Bulk export", explanation="why",
        ts=1_770_000_000.0 + n, first_seen=1_770_000_000.0, last_seen=1_770_000_000.0 + n,
        evidence_event_ids=("e1", "e2"), evidence=({"id": "e1", "content": "<b>x</b>"},), count=count,
        facts={"records": 250},
    )


@pytest.fixture
def store(database_url):
    s = AlertStore(database_url)
    yield s
    s.dispose()


def test_migrations_create_the_schema(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"alerts", "alembic_version"} <= names


def test_same_alert_twice_is_one_row(store):
    a = make_alert()
    assert store.upsert_alerts([a]) == 1
    assert store.upsert_alerts([a, a]) == 0
    assert store.count_alerts() == 1
    row = store.list_alerts()[0]
    assert row["evidence"] == [{"id": "e1", "content": "<b>x</b>"}]
    assert row["evidence_event_ids"] == ["e1", "e2"]
    assert row["status"] == "new"


def test_a_copy_that_folds_more_hits_updates_the_row_and_an_older_one_does_not(store):
    a = make_alert()
    store.upsert_alerts([a])
    store.upsert_alerts([dataclasses.replace(a, count=3, severity="critical")])
    store.upsert_alerts([dataclasses.replace(a, count=2, severity="medium")])  # late, stale copy
    row = store.list_alerts()[0]
    assert (row["count"], row["severity"]) == (3, "critical")


def test_batch_with_duplicate_ids_keeps_the_highest_count(store):
    a = make_alert()
    store.upsert_alerts([dataclasses.replace(a, count=2), a, make_alert(2)])
    assert {r["id"]: r["count"] for r in store.list_alerts()} == {a.id: 2, make_alert(2).id: 1}


def test_triage_fields_survive_a_redelivered_alert(store):
    from sqlalchemy import update

    from stream.store.tables import alerts

    a = make_alert()
    store.upsert_alerts([a])
    with store.engine.begin() as conn:
        conn.execute(update(alerts).values(status="investigating", assignee="rev1"))
    store.upsert_alerts([dataclasses.replace(a, count=5)])
    row = store.list_alerts()[0]
    assert (row["status"], row["assignee"], row["count"]) == ("investigating", "rev1", 5)


def test_migrating_twice_is_harmless(database_url):
    AlertStore(database_url).dispose()
    s = AlertStore(database_url)
    assert s.count_alerts() == 0
    s.dispose()
