"""Every detector in the Faust worker through a real Apache Kafka broker, against custodes replay of
the same input; and a reference-data update on its compacted topic taking effect without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from detectors.registry import CATALOG
from detectors.signal import Indicator
from stream.detection.reference import push
from stream.offline.replay import replay
from stream.sources.ingest import ingest
from stream.store.alerts import AlertStore
from tests.stream.events import iso
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka
CORPUS = Path(__file__).resolve().parents[1] / "detectors" / "corpus"


@pytest.fixture
def custodes(kafka_broker, topic_prefix, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
                 {"partitions": 2})
    yield c
    c.stop_all()


def corpus_events(tmp_path: Path) -> tuple[Path, set[str]]:
    lines, expected = [], set()
    for path in sorted(CORPUS.glob("*.jsonl")):
        header, *events = path.read_bytes().splitlines()
        expected |= set(orjson.loads(header)["expect"])
        lines += [line for line in events if line.strip()]
    out = tmp_path / "corpus.jsonl"
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out, expected


def stored(store: AlertStore) -> set[tuple[str, str, str]]:
    return {(r["id"], r["detector"], r["subject"]) for r in store.list_alerts(limit=1000)}


def test_every_detector_runs_in_the_worker_as_in_replay(custodes, tmp_path):
    source, named = corpus_events(tmp_path)
    settings = custodes.settings
    custodes.start("worker")
    custodes.start("sink")
    custodes.wait_ready("worker")
    custodes.wait_ready("sink")
    counts = ingest(settings, [source])
    assert counts.events > 0 and not counts.dead_lettered

    offline = replay(settings, [source])
    expected = {(a.id, a.detector, a.subject) for a in offline.alerts.values()}
    fired = {d for _, d, _ in expected}
    assert named <= fired  # the corpus names these, so replay must raise them
    # every detector except the one that needs weeks of history is exercised by the corpus; indicators
    # raise signals, never alerts: their signals reach the store through person_risk's alert
    indicators = {cls.id for cls in CATALOG if issubclass(cls, Indicator)}
    assert "person_risk" in fired and not fired & indicators
    assert {cls.id for cls in CATALOG} - fired - indicators <= {"unusual_volume"}

    store = AlertStore(settings.db_url)
    try:
        wait_until(lambda: stored(store) == expected, 120, message="the worker's alerts == replay's")
    finally:
        store.dispose()


def test_a_reference_update_on_its_topic_applies_without_a_restart(custodes, tmp_path):
    settings = custodes.settings
    custodes.start("worker")
    custodes.start("sink")
    custodes.wait_ready("worker")
    custodes.wait_ready("sink")
    now = time.time()
    event = {"@timestamp": iso(now - 60), "event": {"id": "late-logon"}, "user": {"id": "st-new-leaver"},
             "custodes": {"activity": "logon"}}
    (tmp_path / "one.jsonl").write_bytes(orjson.dumps(event) + b"\n")
    ingest(settings, [tmp_path / "one.jsonl"])
    wait_until(lambda: custodes.total("custodes_events_processed_total") >= 1, 60, message="first event")
    store = AlertStore(settings.db_url)
    try:
        assert not store.list_alerts()  # not known as a leaver yet

        staff = tmp_path / "staff.jsonl"
        staff.write_bytes(orjson.dumps({"user_id": "st-new-leaver", "team": "CID", "role": "officer",
                                        "leave_date": iso(now - 30 * 86400)[:10]}) + b"\n")
        assert push(settings, [staff]) == {"staff": 1}
        time.sleep(3)  # the worker follows the topic; no restart
        event2 = {**event, "@timestamp": iso(now - 30), "event": {"id": "late-logon-2"}}
        (tmp_path / "two.jsonl").write_bytes(orjson.dumps(event2) + b"\n")
        ingest(settings, [tmp_path / "two.jsonl"])
        rows = wait_until(lambda: store.list_alerts(), 60, message="a leaver_activity alert")
        assert [(r["detector"], r["subject"]) for r in rows] == [("leaver_activity", "st-new-leaver")]
    finally:
        store.dispose()


def test_aliases_of_one_person_meet_in_the_worker_and_follow_a_reference_update(custodes, tmp_path):
    """A person added at run time (staff topic) with two aliases; their document downloads are produced
    one per message under either alias, each to the alias's own partition: the worker resolves them at
    decode and re-keys them to the person, so 20 documents in two minutes are one person's (one
    bulk_export alert for the person), and an id nobody knows is counted, not taken for a person."""
    from kafka import KafkaProducer

    from stream.contract.partitioning import home_partition

    settings = custodes.settings
    custodes.start("worker")
    custodes.start("sink")
    custodes.wait_ready("worker")
    custodes.wait_ready("sink")
    staff = tmp_path / "staff.jsonl"
    staff.write_bytes(orjson.dumps({"user_id": "ds-9001", "team": "CID", "role": "officer",
                                    "aliases": ["e.new@force.example", "FORCE\\enew"]}) + b"\n")
    assert push(settings, [staff]) == {"staff": 1}
    time.sleep(3)  # the worker follows the topic; no restart
    n = settings.partitions
    aliases = ["e.new@force.example", "force\\ENEW", "enew@force"]
    assert len({home_partition(a, n) for a in aliases}) == n  # they start on different partitions
    now = time.time()
    producer = KafkaProducer(bootstrap_servers=settings.broker.split(","), acks="all")
    try:
        for i in range(20):
            alias = aliases[i % 3]
            event = {"@timestamp": iso(now - 120 + 5 * i), "event": {"id": f"dl-{i}", "action": "FileDownloaded"},
                     "user": {"id": alias}, "custodes": {"activity": "export", "object": {"id": f"doc-{i}"}}}
            producer.send(settings.topics.events, orjson.dumps(event), partition=home_partition(alias, n))
        stranger = {"@timestamp": iso(now - 10), "event": {"id": "st-1"}, "user": {"id": "stranger@gmail.com"},
                    "custodes": {"activity": "logon"}}
        producer.send(settings.topics.events, orjson.dumps(stranger), partition=0)
        producer.flush()
    finally:
        producer.close()
    store = AlertStore(settings.db_url)
    try:
        rows = wait_until(lambda: store.list_alerts(detector="bulk_export"), 90, message="a documents alert")
        assert [(r["subject"], r["title"]) for r in rows] == [
            ("ds-9001", "Bulk download: 20 medium-sensitivity documents in 5 min")]
        wait_until(lambda: custodes.total("custodes_identities_unknown_total") == 1, 30,
                   message="the stranger counted")
    finally:
        store.dispose()
