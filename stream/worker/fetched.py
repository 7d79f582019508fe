"""Fetched record batches straight into the micro-batch, past Faust's per-message path.

Faust's consumer loop (``Consumer._drain_messages``) takes each fetched record through
``Consumer.getmany`` as a Faust message, then the conductor, the topic's queue, an event and the
agent's stream, one at a time, and each is acknowledged on its own: with one event per message that
path, not the detectors, was most of the worker's time (issue 19). :class:`FetchedBatches`, mixed into
the worker's consumer, overrides ``getmany``: the records of the input topics (``taker.topics``) of
each fetch go to ``taker.take(tp, records)`` as aiokafka returned them, a list per partition;
records of any other topic go on to Faust as before. Faust keeps the rest: fetching, flow control,
rebalances, table recovery and changelogs, commits.

What Faust did per message is done here per batch, with the same effect:
- a record below the partition's read offset (fetched before a seek back) is dropped, and a jump in
  offsets (compaction, transaction markers) is recorded as a gap, so commits can pass it;
- a fetch returned while flow is stopped (a rebalance) is discarded and the consumer seeks back to the
  committed offsets; a fetch is cut short when flow stops or the group generation changes;
- records are acknowledged by ``ack_offsets`` (the bookkeeping of ``Consumer.ack``) once processed,
  so commits never pass a record whose effects are not on the broker;
- before partitions are revoked (and at shutdown) Faust waits for unacknowledged messages
  (``wait_empty``): here the taker first processes what it has gathered (``taker.drain()``);
- the partition's inbound time is recorded for Faust's monitor, as a stream does per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from time import monotonic
from typing import Any, Protocol

from faust.types.tuples import ack_lock


class Taker(Protocol):
    topics: frozenset[str]

    async def take(self, tp: Any, records: list[Any]) -> None:
        """Gather one partition's fetched records (processing a micro-batch when one is due)."""

    async def drain(self) -> None:
        """Process and acknowledge everything gathered."""


class FetchedBatches:
    """Mixin for Faust's consumer (see the module). ``taker`` None: Faust's own path for everything."""

    taker: Taker | None = None
    app: Any
    log: Any
    flow_active: bool
    should_stop: bool
    _read_offset: Any
    _committed_offset: Any
    _acked: Any
    _acked_index: Any
    _n_acked: int
    _buffered_partitions: Any

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        taker = self.taker
        if taker is None:
            async for item in super().getmany(timeout):  # type: ignore[misc]
                yield item
            return
        records, active = await self._wait_next_records(timeout)  # type: ignore[attr-defined]
        generation = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # as Faust's getmany: a fetch that returns while flow is stopped is discarded, and the
            # consumer seeks back so those records are read again
            try:
                await self.perform_seek()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - as Faust: logged, the next fetch tries again
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        topics = taker.topics
        to_message = self._to_message  # type: ignore[attr-defined]
        for tp, batch in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation:
                break
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))  # type: ignore[attr-defined]
            if tp.topic in topics:
                fresh = await self._fresh(tp, batch)
                # checked again after the await, and take() gathers before its first await: nothing is
                # gathered once a revocation has begun (its wait_empty drains what was gathered before)
                if fresh and self.flow_active and self.app.consumer_generation_id == generation:
                    await taker.take(tp, fresh)
                    # what a stream records per event: without it Faust's event-path check would log
                    # "stream idle" for a partition the worker is busy with (faust verify_event_path)
                    self.app.monitor.stream_inbound_time[tp] = monotonic()
            else:
                for record in batch:
                    yield tp, to_message(tp, record)

    async def _fresh(self, tp: Any, batch: list[Any]) -> list[Any]:
        """The records at or after the partition's read offset (moving it to the last), recording gaps."""
        read = self._read_offset[tp]
        if read is not None and batch[0].offset < read:
            batch = [r for r in batch if r.offset >= read]
            if not batch:
                return batch
        if self.app.topics.acks_enabled_for(tp.topic):
            previous = read
            for record in batch:
                offset = record.offset
                if previous and offset - previous > 1:
                    await self._add_gap(tp, previous + 1, offset)  # type: ignore[attr-defined]
                previous = offset
        self._read_offset[tp] = batch[-1].offset
        return batch

    def ack_offsets(self, tp: Any, offsets: Iterable[int]) -> None:
        """Acknowledge processed records of one partition: ``Consumer.ack``'s bookkeeping, for many."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            acked = self._acked[tp]
            n = 0
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    n += 1
            self._n_acked += n

    async def wait_empty(self) -> None:
        taker = self.taker
        if taker is not None:
            await taker.drain()
        await super().wait_empty()  # type: ignore[misc]
