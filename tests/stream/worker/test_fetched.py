"""Fetched record batches into the micro-batch (stream/worker/fetched.py): what Faust did per message
(read offsets, gaps, acknowledgements, a fetch while flow is stopped, draining before a revocation)
done per batch, without a broker. The broker-level proofs are tests/resilience and test_catch_up."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, NamedTuple

from faust.types import TP

TOPIC = "events"


class Rec(NamedTuple):
    offset: int
    value: bytes = b"{}"
    topic: str = TOPIC
    partition: int = 0
    headers: tuple = ()


class Base:
    """Faust's consumer, as far as FetchedBatches uses it."""

    def __init__(self, records: dict[Any, list[Rec]] | None, flow: bool = True) -> None:
        self.records = records
        self.flow_active = flow
        self.should_stop = False
        self.app = _App()
        self.log = _Log()
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._n_acked = 0
        self._buffered_partitions: set[Any] = set()
        self.gaps: list[tuple[Any, int, int]] = []
        self.seeks = 0
        self.waited_empty = False

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        return self.records, None

    async def perform_seek(self) -> None:
        self.seeks += 1

    async def _add_gap(self, tp: Any, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    def highwater(self, tp: Any) -> int:
        return 100

    def _to_message(self, tp: Any, record: Rec) -> Any:
        return ("message", record.offset)

    async def getmany(self, timeout: float) -> Any:  # Faust's own path (no taker)
        for tp, batch in (self.records or {}).items():
            for record in batch:
                yield tp, ("faust", record.offset)

    async def wait_empty(self) -> None:
        self.waited_empty = True


class _App:
    consumer_generation_id = 1

    def __init__(self) -> None:
        self.topics = self
        self.monitor = self
        self.stream_inbound_time: dict[Any, float] = {}

    def acks_enabled_for(self, topic: str) -> bool:
        return topic == TOPIC

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        pass


class _Log:
    def warning(self, message: str) -> None:
        pass


def _consumer_class() -> type:
    from stream.worker.fetched import FetchedBatches

    class Consumer(FetchedBatches, Base):
        pass

    return Consumer


class Taker:
    topics = frozenset({TOPIC})

    def __init__(self) -> None:
        self.taken: list[tuple[Any, list[int]]] = []
        self.drained = 0

    async def take(self, tp: Any, records: list[Rec]) -> None:
        self.taken.append((tp, [r.offset for r in records]))

    async def drain(self) -> None:
        self.drained += 1


def _drain(consumer: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [item async for item in consumer.getmany(1.0)]

    return asyncio.run(run())


TP0, TP1, OTHER = TP(TOPIC, 0), TP(TOPIC, 1), TP("changelog", 0)


def test_input_records_go_to_the_taker_a_partition_at_a_time_others_to_faust():
    consumer = _consumer_class()({TP0: [Rec(0), Rec(1)], TP1: [Rec(5)], OTHER: [Rec(3, topic="changelog")]})
    consumer.taker = taker = Taker()
    assert _drain(consumer) == [(OTHER, ("message", 3))]
    assert taker.taken == [(TP0, [0, 1]), (TP1, [5])]
    assert consumer._read_offset[TP0] == 1 and consumer._read_offset[TP1] == 5
    assert set(consumer.app.stream_inbound_time) == {TP0, TP1}  # Faust's event-path check sees them busy


def test_without_a_taker_everything_takes_faust_path():
    consumer = _consumer_class()({TP0: [Rec(0)]})
    assert _drain(consumer) == [(TP0, ("faust", 0))]


def test_records_before_the_read_offset_are_dropped_and_gaps_recorded():
    consumer = _consumer_class()({TP0: [Rec(3), Rec(4), Rec(5), Rec(9)]})
    consumer._read_offset[TP0] = 4  # a seek back to 4: 3 was fetched before it
    consumer.taker = taker = Taker()
    _drain(consumer)
    assert taker.taken == [(TP0, [4, 5, 9])]
    assert consumer.gaps == [(TP0, 6, 9)]  # as Faust's _drain_messages: _add_gap(tp, read + 1, offset)
    assert consumer._read_offset[TP0] == 9


def test_a_fetch_while_flow_is_stopped_is_discarded_and_seeks_back():
    consumer = _consumer_class()({TP0: [Rec(0)]}, flow=False)
    consumer.taker = taker = Taker()
    assert _drain(consumer) == []
    assert taker.taken == [] and consumer.seeks == 1


def test_nothing_is_taken_once_the_generation_changes():
    consumer = _consumer_class()({TP0: [Rec(0)], TP1: [Rec(1)]})

    class Changing(Taker):
        async def take(self, tp: Any, records: list[Rec]) -> None:
            await super().take(tp, records)
            consumer.app.consumer_generation_id += 1  # a rebalance meanwhile

    consumer.taker = taker = Changing()
    _drain(consumer)
    assert taker.taken == [(TP0, [0])]


def test_ack_offsets_keeps_faust_bookkeeping():
    consumer = _consumer_class()(None)
    consumer._committed_offset[TP0] = 2
    consumer.ack_offsets(TP0, [1, 2, 3, 3])  # 1 is below the committed offset; 3 twice
    assert consumer._acked[TP0] == [2, 3] and consumer._acked_index[TP0] == {2, 3}
    assert consumer._n_acked == 2
    consumer.ack_offsets(TP(TOPIC + "-other", 0), [1])  # a topic without acks: nothing
    assert consumer._n_acked == 2


def test_a_revocation_waits_for_the_gathered_micro_batch():
    consumer = _consumer_class()(None)
    consumer.taker = taker = Taker()
    asyncio.run(consumer.wait_empty())
    assert taker.drained == 1 and consumer.waited_empty


def test_the_runner_acknowledges_fetched_records_only_after_their_outcome_is_delivered(tmp_path):
    import orjson
    import pytest
    from prometheus_client import CollectorRegistry

    from detectors.registry import build
    from stream.contract.settings import load
    from stream.telemetry.metrics import PipelineMetrics
    from stream.worker.pipeline import Pipeline
    from stream.worker.runner import Runner

    from ..events import T0, export

    settings = load(env={"CUSTODES_DATA_DIR": str(tmp_path), "CUSTODES_PARTITIONS": "1"})
    pipeline = Pipeline(settings, build(settings.detectors), clock=lambda: T0 + 60)
    acked: list[tuple[Any, list[int]]] = []

    class Acks:
        def ack_offsets(self, tp: Any, offsets: list[int]) -> None:
            acked.append((tp, list(offsets)))

    class Output:
        fail = True

        async def send(self, record: Any) -> Any:
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

        async def send_batch(self, records: Any) -> Any:
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

        async def write_states(self, writes: Any) -> None:
            if self.fail:
                raise RuntimeError("changelog unavailable")

    class Table(dict):
        @property
        def data(self) -> dict:
            return self

    output, table = Output(), Table()
    runner = Runner(settings, pipeline, output, table, PipelineMetrics(CollectorRegistry()), lambda: T0 + 60, Acks)
    topic = settings.topics.events
    tp = TP(topic, 0)
    records = [Rec(i, orjson.dumps(export("alice", T0 + i, 1, event_id=f"e{i}")), topic) for i in range(3)]

    async def run() -> None:
        await runner.take(tp, records[:2])
        await runner.take(tp, records[2:])
        assert acked == []  # not yet batch_max_events: gathered, not processed
        with pytest.raises(RuntimeError):
            await runner.drain()
        assert acked == []
        output.fail = False
        await runner.take(tp, records)  # redelivered after the failure (a restart)
        await runner.drain()

    asyncio.run(run())
    assert acked == [(tp, [0, 1, 2])]
