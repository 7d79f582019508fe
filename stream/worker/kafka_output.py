"""The worker's :class:`stream.worker.delivery.Output` on Kafka: records through Faust's producer,
states into the Faust table and straight onto its changelog, waiting for the broker's acks.

Faust's own table writes are buffered, and its pre-commit flush can return with writes still
buffered, so the worker writes the changelog itself and waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from stream.contract.partitioning import home_partition

from .step import Record, StateWrite


def state_table(app: Any, settings: Any, name: str, help: str) -> Any:  # noqa: A002 - Faust's argument name
    """A Faust table of bytes per key whose changelog is compacted and also bounded by the retention
    window (no state entry outlives it); writes, the sweeps' deletes included, go to the key's home
    partition."""
    return app.Table(
        name,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        extra_topic_configs={"cleanup.policy": "compact,delete", "retention.ms": settings.retention_s * 1000},
        help=help,
    )


class KafkaOutput:
    def __init__(self, app: Any, topics: dict[str, Any], table: Any, partitions: int, exactly_once: bool) -> None:
        self.app = app
        self.topics = topics
        """Faust topic per record role (``alerts``, ``dead_letter``, ``rerouted``)."""
        self.table = table
        self.partitions = partitions
        self.exactly_once = exactly_once

    async def send(self, record: Record) -> Any:
        """Send one record; returns a future resolved when the broker acknowledges it. Under
        exactly_once through faust's topic (inside the message's transaction); otherwise straight to
        the producer, skipping faust's per-record machinery (several times cheaper per record)."""
        topic = self.topics[record.role]
        if self.exactly_once:
            return await topic.send(key=record.key, value=record.value, headers=record.headers,
                                    timestamp=record.timestamp)
        return await self.app.producer.send(topic.get_topic_name(), record.key, record.value, None,
                                            record.timestamp, record.headers)

    async def send_batched(self, topic_name: str, records: list[tuple[int, bytes, bytes | None]]) -> list[Any]:
        """Send (partition, key, value) records as record batches, one builder per partition: far
        cheaper per record than one producer call each. Returns the batches' delivery futures."""
        producer = self.app.producer._ensure_producer()  # the aiokafka producer faust drives
        builders: dict[int, Any] = {}
        futures = []
        for partition, key, value in records:
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it, start anew
                futures.append(await producer.send_batch(builder, topic_name, partition=partition))
                builder = builders[partition] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in builders.items():
            futures.append(await producer.send_batch(builder, topic_name, partition=partition))
        return futures

    async def write_states(self, writes: Sequence[StateWrite]) -> None:
        """Write (key, old, new) states to the table and wait until the changelog has them: the
        source messages are acknowledged only after this, so a committed offset implies its state
        survives a crash (faust's own buffered changelog writes give no such guarantee). A key's
        changelog partition is its home partition, as faust's partitioner would choose."""
        records: list[tuple[int, bytes, bytes | None]] = []
        futures = []
        table = self.table
        data = table.data
        for key, old, new in writes:
            if new is None:
                if old is None:
                    continue
                data.pop(key, None)
            else:
                data[key] = new
            if self.exactly_once:  # inside the message's transaction
                futures.append(table.send_changelog(None, key, new))
            else:
                records.append((home_partition(key.decode(), self.partitions), key, new))
        if records:
            futures.extend(await self.send_batched(table.changelog_topic.get_topic_name(), records))
        if futures:
            await asyncio.gather(*futures)
