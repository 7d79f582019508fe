"""The worker's Kafka consumer: Faust's aiokafka consumer with a fetch wait we choose, a rewind of
every partition we commit, a hand-off without a task per message, and when a micro-batch is due."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

from .fetched import FetchedBatches
from .handoff import QuickHandOff


def set_fetch_max_wait(consumer: Any, seconds: float) -> None:
    """How long the broker may hold a fetch open waiting for data. aiokafka keeps one fetch in flight
    per broker, for the partitions with nothing buffered; records arriving meanwhile for the others
    wait until it returns. Faust fixes this wait at 1.5 s, and under steady load the worker then took
    in ~1.8 s of input at a time (bench/latency.py: p99 2.2 s at 10k events/s; 0.48 s at 0.1 s)."""
    if not hasattr(consumer, "_fetch_max_wait_ms"):  # read by aiokafka when the consumer starts
        raise RuntimeError("aiokafka's consumer no longer has _fetch_max_wait_ms: update set_fetch_max_wait")
    consumer._fetch_max_wait_ms = round(seconds * 1000)


def micro_batch_due(waited_s: float, gathered: int, waiting: Callable[[], int], max_wait_s: float,
                    catch_up_wait_s: float) -> bool:
    """Whether a micro-batch of ``gathered`` messages, the first gathered ``waited_s`` ago, is to be
    processed now (``batch_max_events`` aside). After ``max_wait_s``, yes, unless the worker is behind:
    the broker holds more messages after those gathered than have been gathered (``waiting()``: a
    backlog after an outage, a restart or a burst, not the few in flight under steady load). Then it
    gathers on, up to ``catch_up_wait_s``: larger micro-batches cost less per event (each user's state
    is read and written once per micro-batch), so a backlog drains faster (one event per message:
    6,378 -> 8,649 events/s, bench/README.md)."""
    if waited_s < max_wait_s:
        return False
    return waited_s >= catch_up_wait_s or waiting() <= gathered


def unread(consumer: Any, read: dict[Any, int]) -> int:
    """Messages on the broker after the last one read (``read``: its offset per partition) on the
    consumer's assigned partitions, as of the last fetch (the highwater it reported)."""
    count = 0
    try:
        for tp in consumer.assignment():
            offset = read.get(tp)
            if offset is not None:
                high = consumer.highwater(tp)
                if high is not None:
                    count += max(0, high - offset - 1)
    except AssertionError:  # aiokafka: "Partition is not assigned" (a rebalance meanwhile)
        return 0
    return count


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        set_fetch_max_wait(consumer, self.app.custodes_fetch_max_wait_s)
        return consumer


class _Consumer(FetchedBatches, QuickHandOff, AIOKafkaConsumer):
    """Faust's aiokafka consumer, with a ``seek_to_committed`` that rewinds every partition we commit.

    Faust drops records it has fetched but not yet processed (it clears the agents' queues when flow
    resumes after a rebalance, and discards a fetch that returns while flow is stopped) and relies on
    ``perform_seek`` -> ``seek_to_committed`` to read them again. aiokafka's ``seek_to_committed``
    only seeks a partition whose committed offset is > 0 (``if offset and offset > 0``), so on a
    partition with no committed offset (or offset 0) the position stays after the dropped records and
    they are never processed; later messages are, so each user's state records a position past them
    and a restarted worker skips them as redelivered. Here such a partition is rewound to where an
    uncommitted partition starts (the beginning: ``consumer_auto_offset_reset="earliest"``), in the
    same consumer-thread call so no fetch runs in between.

    It also hands each message to the agents without a task per message (``QuickHandOff``), and the
    input topics' fetched records to the micro-batch a partition's batch at a time
    (``FetchedBatches``, when the app sets ``taker``)."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Any:
        thread = self._thread
        consumer = thread._ensure_consumer()  # type: ignore[attr-defined]
        acking = self.app.topics.acks_enabled_for

        async def seek() -> Any:
            committed = await consumer.seek_to_committed()
            for tp, offset in committed.items():
                if not offset and acking(tp.topic):
                    if offset is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, 0)
            return committed

        return await thread.call_thread(seek)
