"""Audit events through a real Apache Kafka broker into detectors and out as stored alerts.

Good, bad, duplicate and expired events go in through both producer paths (``custodes ingest``
batches on the users' home partitions; single unkeyed events that the worker re-keys); the test
asserts the alerts in the store equal what ``custodes replay`` finds offline for the same input,
that every bad event is on the dead-letter topic with its reason and source, that the counts
reconcile, and that ingesting the same file again adds no alert.
"""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream.offline.replay import replay
from stream.sources.ingest import ingest
from stream.store.alerts import AlertStore
from tests.stream.events import export, iso
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka


def workload(now: float) -> tuple[list[bytes], dict[str, int]]:
    """Lines of a JSONL file, and the dead-letter reasons they must produce."""
    t = now - 1800
    docs: list[bytes] = []
    # alice: 3 high-sensitivity exports of 80 -> 240 > 200 within the hour: one alert
    docs += [orjson.dumps(export("alice", t + i * 60, 80, event_id=f"a{i}")) for i in range(3)]
    # bob: 199 + 1 = 200 is not more than 200: no alert (the threshold edge)
    docs += [orjson.dumps(export("bob", t, 199, event_id="b0")),
             orjson.dumps(export("bob", t + 60, 1, event_id="b1"))]
    # carol: 101 distinct record ids looked up (high: more than 100 distinct) -> alert
    for i in range(101):
        doc = export("carol", t + i, 1, event_id=f"c{i}", kind="record_access")
        doc["custodes"]["record"] = {"ids": [f"P{i:05d}"]}
        docs.append(orjson.dumps(doc))
    # dave: 1,200 medium records, but the whole lot is older than two years: expired, no alert
    docs.append(orjson.dumps(export("dave", now - 800 * 86400, 1200, sensitivity="medium", event_id="d0")))
    # the same event twice (a producer re-sent it): counted once
    docs.append(orjson.dumps(export("erin", t, 150, event_id="dup")))
    docs.append(orjson.dumps(export("erin", t, 150, event_id="dup")))
    bad = {
        b'{"@timestamp": "2026-03-02T09:00:00", "user": {"id": "x"}}': "timestamp_without_timezone",
        b'{"@timestamp": "' + iso(now).encode() + b'"}': "missing_user",
        b'{"truncated": tru': "invalid_json",
        b'{"@timestamp": "' + iso(now + 30 * 86400).encode() + b'", "user": {"id": "x"}}':
            "timestamp_in_future",
    }
    return docs + list(bad), dict.fromkeys(bad.values(), 1) | {}


@pytest.fixture
def custodes(kafka_broker, topic_prefix, database_url, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, database_url, {"partitions": 3})
    yield c
    c.stop_all()


def dead_letters(bootstrap: str, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, group_id=None)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < expected and time.monotonic() < deadline:
        for record in consumer:
            got.append(record)
    consumer.close()
    return got


def test_events_through_kafka_become_stored_alerts(custodes, tmp_path, database_url):
    now = time.time()
    lines, reasons = workload(now)
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    settings = custodes.settings

    custodes.start("worker")
    custodes.start("sink")
    custodes.wait_ready("worker")
    custodes.wait_ready("sink")

    counts = ingest(settings, [source])
    # the line that is not JSON at all is dead-lettered by ingest itself (source: file and line);
    # every other line goes to the worker, which judges it
    assert counts.records == len(lines)
    assert counts.dead_lettered == {"invalid_json": 1}
    assert counts.events == len(lines) - 1
    # single events without a key, on a partition that is not frank's home: the worker re-keys them
    # to their user. (All on one partition so they keep their order, as replay of the file does.)
    from stream.contract.partitioning import home_partition

    away = (home_partition("frank", settings.partitions) + 1) % settings.partitions
    producer = KafkaProducer(bootstrap_servers=custodes.bootstrap)
    singles = [export("frank", now - 100 + i, 70, event_id=f"f{i}") for i in range(3)]
    singles.append(b"\xff\xfenot utf-8")
    for doc in singles:
        producer.send(settings.topics.events, value=doc if isinstance(doc, bytes) else orjson.dumps(doc),
                      partition=away)
    producer.flush()
    producer.close()
    reasons["not_utf8"] = 1
    produced = len(lines) - 1 + len(singles)  # what reached the worker
    worker_reasons = {r: n for r, n in reasons.items() if r != "invalid_json"}

    def settled():
        consumed = custodes.total("custodes_events_consumed_total")
        rerouted = custodes.total("custodes_events_rerouted_total")
        done = (custodes.total("custodes_events_processed_total")
                + custodes.total("custodes_events_dead_lettered_total")
                + custodes.total("custodes_events_expired_total"))
        return consumed - rerouted == produced and done == produced

    wait_until(settled, 90, message="every event accounted for")
    assert custodes.total("custodes_events_expired_total") == 1
    assert custodes.total("custodes_events_duplicate_total") == 1
    assert custodes.total("custodes_events_rerouted_total") == 3
    m = custodes.metrics()
    for reason, n in worker_reasons.items():
        assert m[("custodes_events_dead_lettered_total", (("reason", reason),))] == n
    assert custodes.total("custodes_events_dead_lettered_total") == sum(worker_reasons.values())

    # what replay finds offline for the same input is what the streaming path stored
    offline_source = tmp_path / "all.jsonl"
    offline_source.write_bytes(b"\n".join(
        lines + [orjson.dumps(d) for d in singles if not isinstance(d, bytes)]) + b"\n")
    offline = replay(settings, [offline_source], as_of=now)
    expected = {a.id: (a.detector, a.subject, a.count) for a in offline.alerts.values()}
    assert {(d, s) for d, s, _ in expected.values()} >= {
        ("bulk_export", "alice"), ("bulk_export", "carol"), ("bulk_export", "frank")}
    assert "bob" not in {s for _, s, _ in expected.values()}

    store = AlertStore(database_url)
    try:
        seen: list = []

        def stored():
            rows = store.list_alerts(limit=100)
            got = {r["id"]: (r["detector"], r["subject"], r["count"]) for r in rows}
            seen[:] = [got]
            return got == expected

        wait_until(stored, 60, message=f"stored alerts == {expected} (stored: {seen})")

        # dead letters carry the original bytes, the reason and where they came from
        letters = dead_letters(custodes.bootstrap, settings.topics.dead_letter, sum(reasons.values()))
        got_reasons: dict[str, int] = {}
        for rec in letters:
            headers = dict(rec.headers)
            reason = headers["custodes.reason"].decode()
            got_reasons[reason] = got_reasons.get(reason, 0) + 1
            assert headers["custodes.detail"]
            if reason == "invalid_json":  # from ingest: the file and line it came from
                assert headers["custodes.source.file"].decode() == str(source)
                assert rec.value == b'{"truncated": tru'
                continue
            assert headers["custodes.source.topic"].decode() in (settings.topics.events,
                                                                 settings.topics.rerouted)
            assert int(headers["custodes.source.offset"]) >= 0
        assert got_reasons == reasons
        assert any(rec.value == b"\xff\xfenot utf-8" for rec in letters)

        # the same input again: nothing new in the store
        before = store.count_alerts()
        ingest(settings, [source])
        wait_until(lambda: custodes.total("custodes_events_consumed_total")
                   - custodes.total("custodes_events_rerouted_total") == produced + len(lines) - 1,
                   90, message="second ingest consumed")
        time.sleep(2)  # give the sink a moment for anything (wrongly) new
        assert store.count_alerts() == before
        assert {r["id"] for r in store.list_alerts(limit=100)} == set(expected)
    finally:
        store.dispose()

    assert custodes.stop("worker") == 0
    assert custodes.stop("sink") == 0
