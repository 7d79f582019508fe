"""A worker behind its input (a backlog on the broker) gathers larger micro-batches, up to
batch_catch_up_wait_s, instead of cutting one every batch_max_wait_s; nothing is lost either way."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaProducer

from stream.partitioning import home_partition
from stream.topics import ensure_topics

from .events import export
from .processes import Custodes, wait_until

pytestmark = pytest.mark.kafka

MESSAGES = 6_000
PARTITIONS = 2


def _backlog(custodes: Custodes, bootstrap: str) -> None:
    """MESSAGES one-event messages on the input topic before any worker runs, each on its user's partition."""
    ensure_topics(custodes.settings, bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 18)
    now = time.time()
    for i in range(MESSAGES):
        user = f"u{i % 300:03d}"
        line = orjson.dumps(export(user, now - 600 + i * 0.05, 1, event_id=f"c{i}", kind="record_access",
                                   sensitivity="low"))
        producer.send(custodes.settings.topics.events, line, key=user.encode(),
                      partition=home_partition(user, PARTITIONS))
    producer.flush()
    producer.close()


def _run(kafka_broker, prefix: str, workdir, catch_up_s: float) -> tuple[float, float]:
    """(micro-batches, of which more than 1,000 messages) for the backlog, with batch_catch_up_wait_s set so."""
    workdir.mkdir()
    custodes = Custodes(kafka_broker.bootstrap, workdir, prefix, f"sqlite:///{workdir}/t.db",
                        {"partitions": PARTITIONS, "batch_max_wait_s": 0.01, "batch_catch_up_wait_s": catch_up_s})
    try:
        _backlog(custodes, kafka_broker.bootstrap)
        custodes.start("worker")
        custodes.wait_ready("worker", 120)
        wait_until(lambda: custodes.total("custodes_events_processed_total") >= MESSAGES, 180,
                   message="the backlog to be processed")
        metrics = custodes.metrics("worker")
        consumed = custodes.total("custodes_events_consumed_total")
        processed = custodes.total("custodes_events_processed_total")
        assert consumed == processed == MESSAGES
        assert custodes.total("custodes_batch_messages_sum") == MESSAGES
        batches = custodes.total("custodes_batch_messages_count")
        return batches, batches - metrics[("custodes_batch_messages_bucket", (("le", "1000.0"),))]
    finally:
        custodes.stop_all()


def test_a_backlog_is_taken_in_larger_micro_batches(kafka_broker, topic_prefix, tmp_path):
    off, off_large = _run(kafka_broker, f"{topic_prefix}off-", tmp_path / "off", 0.0)
    on, on_large = _run(kafka_broker, f"{topic_prefix}on-", tmp_path / "on", 30.0)
    print(f"micro-batches: {off:.0f} without catching up ({off_large:.0f} of > 1,000 messages), "
          f"{on:.0f} with ({on_large:.0f})")
    # cut every 10 ms, 6,000 messages make many small micro-batches; catching up, the first takes about
    # half of the backlog, the next half of the rest, and so on
    assert on_large >= 1
    assert on * 2 <= off
