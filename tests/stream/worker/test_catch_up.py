"""A worker behind its input (a backlog on the broker) gathers larger micro-batches, up to
batch_catch_up_wait_s, instead of cutting one every batch_max_wait_s: when a micro-batch is due, what
counts as behind, and a backlog through Apache Kafka (nothing lost)."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaProducer

from stream.contract.partitioning import home_partition
from stream.contract.topics import ensure_topics
from stream.worker.app import micro_batch_due, unread
from tests.stream.events import export
from tests.stream.processes import Custodes, wait_until

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


@pytest.mark.parametrize("waited_s, gathered, waiting, due", [
    (0.005, 100, 0, False),  # not yet batch_max_wait_s (0.05)
    (0.05, 100, 0, True),  # caught up: due at batch_max_wait_s, as before
    (0.05, 100, 100, True),  # no more waiting than gathered: steady load, messages in flight
    (0.05, 100, 101, False),  # a backlog: gather on
    (0.5, 5_000, 20_000, False),
    (1.0, 5_000, 20_000, True),  # ...but not past batch_catch_up_wait_s (1.0)
])
def test_when_a_micro_batch_is_due(waited_s, gathered, waiting, due):
    asked = []

    def count() -> int:
        asked.append(True)
        return waiting

    assert micro_batch_due(waited_s, gathered, count, 0.05, 1.0) is due
    if waited_s < 0.05 or waited_s >= 1.0:
        assert not asked  # the consumer's offsets are read only when they decide


def test_catching_up_can_be_turned_off():
    assert micro_batch_due(0.05, 1, lambda: 10**6, 0.05, 0.05)  # batch_catch_up_wait_s <= batch_max_wait_s
    assert micro_batch_due(0.05, 1, lambda: 10**6, 0.05, 0.0)


class FakeConsumer:
    """assignment() and highwater() as Faust's consumer has them (aiokafka asserts the assignment)."""

    def __init__(self, highwaters, assigned=None):
        self.highwaters = highwaters
        self.assigned = set(highwaters) if assigned is None else assigned

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, tp):
        assert tp in self.assigned, "Partition is not assigned"
        return self.highwaters[tp]


def test_unread_counts_what_the_broker_holds_after_what_was_read():
    consumer = FakeConsumer({("e", 0): 100, ("e", 1): 51, ("e", 2): None, ("e", 3): 7})
    # 99 read of 0..99 on 0 (caught up), 10 of 0..50 on 1, nothing fetched on 2, nothing read on 3
    assert unread(consumer, {("e", 0): 99, ("e", 1): 10, ("e", 2): 5, ("r", 0): 3}) == 40
    assert unread(consumer, {}) == 0
    revoked = FakeConsumer({("e", 0): 100}, assigned=set())  # a rebalance between the two calls
    assert unread(revoked, {("e", 0): 1}) == 0


@pytest.mark.kafka
def test_a_backlog_is_taken_in_large_micro_batches_and_nothing_is_lost(kafka_broker, topic_prefix, tmp_path):
    custodes = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/t.db",
                        {"partitions": PARTITIONS, "batch_max_wait_s": 0.01, "batch_catch_up_wait_s": 30.0})
    try:
        _backlog(custodes, kafka_broker.bootstrap)
        custodes.start("worker")
        custodes.wait_ready("worker", 120)
        wait_until(lambda: custodes.total("custodes_events_processed_total") >= MESSAGES, 180,
                   message="the backlog to be processed")
        metrics = custodes.metrics("worker")
        assert custodes.total("custodes_events_consumed_total") == MESSAGES
        assert custodes.total("custodes_events_processed_total") == MESSAGES
        assert custodes.total("custodes_batch_messages_sum") == MESSAGES
        batches = custodes.total("custodes_batch_messages_count")
        large = batches - metrics[("custodes_batch_messages_bucket", (("le", "1000.0"),))]
        # the first micro-batch takes about half the backlog, the next about half the rest, and so on
        # (3 here, 8 under the test suite's load)
        assert large >= 1 and batches <= 12
    finally:
        custodes.stop_all()
