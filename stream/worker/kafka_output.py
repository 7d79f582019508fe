"""The worker's :class:`stream.worker.delivery.Output` on Kafka: records through Faust's producer
(as record batches per topic and partition, or one at a time), states into the Faust table and
straight onto its changelog, waiting for the broker's acks.

Faust's own table writes are buffered, and its pre-commit flush can return with writes still
buffered, so the worker writes the changelog itself and waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from stream.contract.partitioning import home_partition, key_partition

from .step import Record, StateWrite

Row = tuple[int, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]
"""(partition, key, value, timestamp in ms or None for now, headers) of a record in a record batch."""


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
        """Faust topic per record role (``alerts``, ``dead_letter``, ``rerouted``, ``activity_days``, ...)."""
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

    async def send_batch(self, records: Sequence[Record]) -> Awaitable[Any]:
        """Send records as record batches, one per topic and partition (far cheaper per record than
        one producer call each), each record to the partition :meth:`send` would give it (the
        producer's partitioner on its key) and in order within a partition. The result resolves when
        the broker has acknowledged every batch; if any batch fails it raises (the records of the
        other batches may have been stored: their re-send after a restart is harmless, as for single
        sends). Under exactly_once, one :meth:`send` each (inside the message's transaction)."""
        if self.exactly_once:
            return asyncio.gather(*[await self.send(record) for record in records])
        producer = self.app.producer._ensure_producer()
        by_topic: dict[str, list[Record]] = {}
        for record in records:
            by_topic.setdefault(self.topics[record.role].get_topic_name(), []).append(record)
        futures: list[Any] = []
        for topic_name, batch in by_topic.items():
            partition_of = await self._partitioner(producer, topic_name)
            futures.extend(await self._send_batches(producer, topic_name, [
                (partition_of(r.key), r.key, r.value, int(r.timestamp * 1000.0) if r.timestamp else None, r.headers)
                for r in batch]))
        return asyncio.gather(*futures)

    @staticmethod
    async def _partitioner(producer: Any, topic_name: str) -> Callable[[bytes | None], int]:
        """``key -> partition`` as the producer's own ``send`` chooses it for ``topic_name`` (its
        partitioner over the topic's partitions in the producer's metadata); the default partitioner's
        choice cached per key (murmur2 in Python costs more than the rest of a record's send)."""
        await producer.client._wait_on_metadata(topic_name)
        metadata = producer._metadata
        partitions = list(metadata.partitions_for_topic(topic_name))
        available = list(metadata.available_partitions_for_topic(topic_name))
        partitioner = producer._partitioner
        if type(partitioner) is DefaultPartitioner and partitions == list(range(len(partitions))):
            n = len(partitions)
            return lambda key: partitioner(None, partitions, available) if key is None else key_partition(key, n)
        return lambda key: partitioner(key, partitions, available)

    @staticmethod
    async def _send_batches(producer: Any, topic_name: str, rows: list[Row]) -> list[Any]:
        """(partition, key, value, timestamp in ms or None, headers) rows as record batches, one
        builder per partition, a new one when full. Returns the batches' delivery futures."""
        builders: dict[int, Any] = {}
        futures = []
        for partition, key, value, timestamp_ms, headers in rows:
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:
                # full: send it, start anew (an empty builder takes any record: one larger than the
                # broker accepts fails its batch, as its own send would fail)
                futures.append(await producer.send_batch(builder, topic_name, partition=partition))
                builder = builders[partition] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=timestamp_ms, headers=headers)
        for partition, builder in builders.items():
            futures.append(await producer.send_batch(builder, topic_name, partition=partition))
        return futures

    async def write_states(self, writes: Sequence[StateWrite]) -> None:
        """Write (key, old, new) states to the table and wait until the changelog has them: the
        source messages are acknowledged only after this, so a committed offset implies its state
        survives a crash (faust's own buffered changelog writes give no such guarantee). A key's
        changelog partition is its home partition, as faust's partitioner would choose."""
        rows: list[Row] = []
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
                rows.append((home_partition(key.decode(), self.partitions), key, new, None, None))
        if rows:
            futures.extend(await self._send_batches(self.app.producer._ensure_producer(),
                                                    table.changelog_topic.get_topic_name(), rows))
        if futures:
            await asyncio.gather(*futures)
