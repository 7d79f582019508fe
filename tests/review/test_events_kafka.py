"""Watching the watchers end to end: reviewer actions emitted by the review app's Kafka emitter go
through the normal event stream, and the worker's reviewer_watch detector flags a reviewer who
reveals far more identities than allowed."""

from __future__ import annotations

import time

import orjson
import pytest

from review.events import KafkaEmitter, review_event
from stream.contract.schema import parse
from stream.store.alerts import AlertStore
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka


def test_reveals_emitted_to_kafka_raise_a_reviewer_watch_alert(kafka_broker, topic_prefix, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/c.db", {"partitions": 2})
    try:
        c.start("worker")
        c.start("sink")
        c.wait_ready("worker")
        c.wait_ready("sink")
        settings = c.settings
        emitter = KafkaEmitter(settings)
        now = time.time() - 3600
        events = [review_event(seq=i, digest=f"{i:064x}", ts=now + i * 30, user_id="rev-7", account="rev7",
                               action="reveal_identity", target_type="alert", target_id=f"a{i}", about=f"pc-{i}")
                  for i in range(1, 26)]
        for event in events:
            parse(orjson.dumps(event))  # every emitted event is a valid canonical event
            emitter.emit(event)
        emitter.close()
        assert emitter.failures == 0
        wait_until(lambda: c.total("custodes_events_processed_total") == 25, 90, message="25 review events")
        store = AlertStore(settings.db_url)
        try:
            rows = wait_until(lambda: store.list_alerts(), 60, message="a reviewer_watch alert")
        finally:
            store.dispose()
        assert [(r["detector"], r["subject"]) for r in rows] == [("reviewer_watch", "rev-7")]
    finally:
        c.stop_all()
