"""Activity per person per day through a real Apache Kafka broker: the worker counts, sends absolute
day records to the activity-days topic, the sink upserts them; the store ends with what ``custodes
replay`` counts offline, and the same input ingested again changes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from stream.offline.replay import replay
from stream.sources.ingest import ingest
from stream.store.alerts import AlertStore
from stream.store.tables import activity_days
from tests.stream.events import export
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture
def custodes(kafka_broker, topic_prefix, database_url, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, database_url, {"partitions": 3})
    yield c
    c.stop_all()


def test_activity_days_through_kafka_equal_replay_and_are_idempotent(custodes, tmp_path, database_url):
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    midnight = today - 86400  # the midnight before yesterday: all events in the past
    docs = []
    for i in range(12):  # alice: across midnight, two kinds
        docs.append(export("alice", midnight - 1800 + i * 300, 1, event_id=f"a{i}",
                           kind="export" if i % 3 else "share"))
    docs += [export("bob", midnight - 7200 + i * 60, 1, event_id=f"b{i}", kind="record_access") for i in range(5)]
    docs.append(export("bob", midnight - 7200, 1, event_id="b0", kind="record_access"))  # a re-sent copy
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    settings = custodes.settings
    expected = {(p, d): dict(r.counts) for (p, d), r in replay(settings, [source], as_of=now).days.items()}
    assert len(expected) == 3 and sum(sum(c.values()) for c in expected.values()) == 17  # the copy not counted

    custodes.start("worker")
    custodes.start("sink")
    custodes.wait_ready("worker")
    custodes.wait_ready("sink")
    ingest(settings, [source])

    store = AlertStore(database_url)
    try:
        seen: list = []

        def stored():
            with store.engine.connect() as conn:
                got = {(r.person, r.day.isoformat()): r.counts for r in conn.execute(select(activity_days))}
            seen[:] = [got]
            return got == expected

        wait_until(stored, 90, message=f"activity days == {expected} (stored: {seen})")
        # the same file again: every event a duplicate, the counts stay as they are
        ingest(settings, [source])
        wait_until(lambda: custodes.total("custodes_events_duplicate_total") == 1 + len(docs), 90,
                   message="second ingest processed")
        time.sleep(2)
        assert stored(), seen
        assert custodes.total("custodes_sink_activity_days_total", "sink") >= 3
    finally:
        store.dispose()
    assert custodes.stop("worker") == 0
    assert custodes.stop("sink") == 0
