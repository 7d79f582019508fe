"""processing_guarantee = "exactly_once" (Kafka transactions) works on Apache Kafka. It is an option:
the default at-least-once path is already exact through state positions and deterministic alert ids.
(Tansu, the embedded broker, cannot run transactional producers.)"""

from __future__ import annotations

import time

import orjson
import pytest

from stream.offline.replay import replay
from stream.sources.ingest import ingest
from stream.store.alerts import AlertStore
from tests.stream.events import export
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka


def test_the_worker_runs_with_kafka_transactions(kafka_broker, topic_prefix, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/c.db",
                 {"partitions": 2, "processing_guarantee": "exactly_once"})
    try:
        now = time.time()
        source = tmp_path / "events.jsonl"
        source.write_bytes(b"\n".join(orjson.dumps(export(u, now - 600 + i, 90, event_id=f"{u}{i}"))
                                      for u in ("ann", "ben") for i in range(3)) + b"\n{bad\n")
        c.start("worker")
        c.start("sink")
        c.wait_ready("worker", 120)
        c.wait_ready("sink")
        settings = c.settings
        assert settings.processing_guarantee == "exactly_once"
        ingest(settings, [source])
        wait_until(lambda: c.total("custodes_events_processed_total") == 6, 90, message="6 events processed")
        expected = {a.id for a in replay(settings, [source]).alerts.values()}
        assert len(expected) == 2
        store = AlertStore(settings.db_url)
        try:
            wait_until(lambda: store.ids() == expected, 60, message="alerts stored")
        finally:
            store.dispose()
    finally:
        c.stop_all()
