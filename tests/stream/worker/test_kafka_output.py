"""KafkaOutput on a real broker (stream/worker/kafka_output.py): records sent as record batches land
where their own sends would (partition, order within it, key, value, timestamp, headers), whatever the
topic's partition count; a batch the broker refuses fails the micro-batch's delivery before any state
is written or any message acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import faust
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from stream.worker.delivery import deliver
from stream.worker.kafka_output import KafkaOutput
from stream.worker.step import BatchOutcome, Record, StateWrite


def _create(bootstrap: str, topics: dict[str, tuple[int, dict[str, str]]]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, n, 1, topic_configs=configs) for name, (n, configs) in topics.items()])
    finally:
        admin.close()


def _read(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes | None, bytes, int, list]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    out = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                out += [(r.partition, r.offset, r.key, r.value, r.timestamp, list(r.headers)) for r in records]
    finally:
        consumer.close()
    assert len(out) == expected
    return [(p, k, v, ts, h) for p, _, k, v, ts, h in sorted(out, key=lambda r: (r[0], r[1]))]


class _Recorded(KafkaOutput):
    """KafkaOutput whose state writes are only recorded (no table needed)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.written: list[Sequence[StateWrite]] = []

    async def write_states(self, writes: Sequence[StateWrite]) -> None:
        self.written.append(writes)


def _app(bootstrap: str, prefix: str) -> faust.App:
    return faust.App(f"{prefix}app", broker=f"kafka://{bootstrap}", store="memory://", autodiscover=False,
                     web_enabled=False, producer_acks=-1)


def test_a_record_batch_lands_where_single_sends_would(kafka_broker, topic_prefix):
    bootstrap = kafka_broker.bootstrap
    single, batched = f"{topic_prefix}single", f"{topic_prefix}batched"
    # 5 partitions, not the worker's 4: the partition count is the topic's, as the producer sees it
    _create(bootstrap, {single: (5, {}), batched: (5, {})})
    now = time.time() - 3600
    records = [Record("activity_days", f"user-{i % 40}".encode(), b"value-%d" % i, timestamp=now + i)
               for i in range(400)]
    records += [Record("alerts", b"user-7", b"an alert", [("h", b"1")], now),
                Record("alerts", "Zoë-ünïcode".encode(), b"x", None, None)]

    async def run() -> None:
        app = _app(bootstrap, topic_prefix)
        await app.producer.start()
        try:
            one = KafkaOutput(app, {role: app.topic(single) for role in ("activity_days", "alerts")}, None, 4, False)
            many = KafkaOutput(app, {role: app.topic(batched) for role in ("activity_days", "alerts")}, None, 4, False)
            await asyncio.gather(*[await one.send(record) for record in records])
            await (await many.send_batch(records))
        finally:
            await app.producer.stop()

    asyncio.run(run())
    by_single = _read(bootstrap, single, len(records))
    by_batch = _read(bootstrap, batched, len(records))
    # the one record without a timestamp is stamped at its send: compare the others' exactly
    assert [r[:3] + r[4:] for r in by_batch] == [r[:3] + r[4:] for r in by_single]
    assert [r[3] for r in by_batch if r[1] != "Zoë-ünïcode".encode()] == \
           [r[3] for r in by_single if r[1] != "Zoë-ünïcode".encode()]
    assert len({p for p, *_ in by_batch}) == 5


def test_a_refused_record_batch_means_no_state_written_and_no_ack(kafka_broker, topic_prefix):
    bootstrap = kafka_broker.bootstrap
    topic = f"{topic_prefix}days"
    _create(bootstrap, {topic: (2, {"max.message.bytes": "2048"})})
    # one small record and one the topic refuses, for one key: one batch, refused as a whole
    outcome = BatchOutcome(new_states=[(b"alice", None, b"{}")],
                           grouped=[("g", {"n": 1}), ("g", {"text": "y" * 4096})])
    acked: list[bool] = []

    async def ack() -> None:
        acked.append(True)

    async def run() -> _Recorded:
        app = _app(bootstrap, topic_prefix)
        await app.producer.start()
        try:
            output = _Recorded(app, {"sigma_groups": app.topic(topic)}, None, 2, False)
            with pytest.raises(MessageSizeTooLargeError):
                await deliver(outcome, output, ack, dead_letter_max_bytes=1000)
            return output
        finally:
            await app.producer.stop()

    output = asyncio.run(run())
    assert output.written == [] and acked == []
