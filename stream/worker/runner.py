"""The worker's loop around the micro-batch step: gather input messages into a micro-batch
(``batch_max_events`` / ``batch_max_wait_s``, longer while catching up), run it
(:func:`stream.worker.step.run_batch`), deliver the outcome in the crash-safe order
(:func:`stream.worker.delivery.deliver`), then acknowledge the messages to Faust, whose commits never
pass an unacknowledged message. Also the periodic state sweep and the consumer-lag gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from detectors.base import Clock
from stream.contract.partitioning import home_partition
from stream.contract.settings import Settings
from stream.telemetry.metrics import PipelineMetrics

from .consumer import micro_batch_due, unread
from .delivery import Output, deliver, publish
from .live import LiveStates
from .pipeline import Pipeline
from .step import gather, run_batch, sweep


class Runner:
    def __init__(self, settings: Settings, pipeline: Pipeline, output: Output, table: Any, metrics: PipelineMetrics,
                 clock: Clock, consumer: Callable[[], Any], groups: Any = None) -> None:
        self.settings = settings
        self.groups = groups
        """:class:`stream.worker.correlation.WorkerGroups` when Sigma rules run, else None."""
        self.pipeline = pipeline
        self.output = output
        self.table = table
        self.metrics = metrics
        self.clock = clock
        t = settings.topics
        self.codes = {t.events: "e", t.rerouted: "r"}
        """Input topic -> the source code a user's state records positions under."""
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        # Under exactly_once every send must happen inside its own message's transaction, so each message
        # is its own micro-batch. Otherwise messages gather up to batch_max_events / batch_max_wait_s.
        self.max_events = 1 if self.exactly_once else settings.batch_max_events
        self.gathered: list[Any] = []
        """Messages (Faust's, or aiokafka's records) gathered, not yet acknowledged."""
        self.acks: list[Any] = []
        """How to acknowledge them: Faust events, or (partition, records)."""
        self.gathered_events = 0
        self.gathered_since = 0.0
        self.read: dict[Any, int] = {}
        """The offset of the last message gathered, per input partition."""
        self.positions: dict[tuple[str, int], int] = {}
        """The offset of the last message processed, per input partition (the lag gauge)."""
        self.lock = asyncio.Lock()
        self.stream: Any = None
        self.consumer = consumer
        """The Faust consumer (once the app has made it)."""
        self.topics = frozenset((t.events, t.rerouted))
        """The input topics (stream.worker.fetched.Taker)."""
        self.live = LiveStates(settings.live_state_max_bytes)
        """The active people's decoded states, kept between micro-batches (stream/worker/live.py)."""

    def home(self, user: str) -> int:
        return home_partition(user, self.settings.partitions)

    async def process(self, messages: list[Any], ack: Any) -> None:
        """One micro-batch: split every message, run each user's events together against their state,
        deliver the outcome (records, then states, then ``ack``), count it."""
        started = time.perf_counter()
        pipeline = self.pipeline
        batch = gather(pipeline, messages, self.codes, self.home)
        for message in messages:
            self.positions[(message.topic, message.partition)] = message.offset
        live = self.live
        hits, misses = live.hits, live.misses
        outcome = run_batch(pipeline, self.table.data.get, batch, self.groups.hook if self.groups else None, live)
        if live.hits > hits:
            self.metrics.live_state_reads.labels("hit").inc(live.hits - hits)
        if live.misses > misses:
            self.metrics.live_state_reads.labels("miss").inc(live.misses - misses)
        refused = await deliver(outcome, self.output, ack,
                                dead_letter_max_bytes=self.settings.dead_letter_max_bytes)
        if outcome.grouped:
            self.groups.sent.inc(len(outcome.grouped))
        publish(self.metrics, outcome, refused, self.clock())
        pipeline.publish_timings()
        elapsed = time.perf_counter() - started
        metrics = self.metrics
        metrics.batch_seconds.observe(elapsed)
        metrics.batch_messages.observe(len(messages))
        metrics.processing_seconds.inc(elapsed)

    async def flush(self) -> None:
        """Process what has been gathered; its messages are acknowledged (so only then can their
        offsets be committed) once the outcome is delivered."""
        async with self.lock:
            if not self.gathered:
                return
            messages, self.gathered, self.gathered_events = self.gathered, [], 0
            acks, self.acks = self.acks, []
            await self.process(messages, self._acker(acks))

    def _acker(self, acks: list[Any]) -> Callable[[], Awaitable[None]]:
        if self.stream is not None:  # Faust's agent: events, acknowledged on its stream
            stream = self.stream

            async def ack() -> None:
                for event in acks:
                    await stream.ack(event)
        else:  # fetched batches: (partition, records), acknowledged on the consumer
            consumer = self.consumer()

            async def ack() -> None:
                for tp, records in acks:
                    consumer.ack_offsets(tp, [record.offset for record in records])

        return ack

    async def route(self, stream: Any) -> None:
        """The agent (under exactly_once, where every send belongs to its message's transaction):
        gather each message, process when ``batch_max_events`` are gathered."""
        manual = stream.noack()
        self.stream = manual
        async for event in manual.events():
            if not self.gathered:
                self.gathered_since = time.monotonic()
            message = event.message
            self.gathered.append(message)
            self.acks.append(event)
            self.read[message.tp] = message.offset
            value = message.value
            self.gathered_events += value.count(b"\n") + 1 if value else 1
            if self.gathered_events >= self.max_events:
                await self.flush()

    async def take(self, tp: Any, records: list[Any]) -> None:
        """One partition's fetched records (stream.worker.fetched): gathered at once, before any
        await; processed when ``batch_max_events`` are gathered."""
        if not self.gathered:
            self.gathered_since = time.monotonic()
        self.gathered.extend(records)
        self.acks.append((tp, records))
        self.read[tp] = records[-1].offset
        events = 0
        for record in records:
            value = record.value
            events += value.count(b"\n") + 1 if value else 1
        self.gathered_events += events
        if self.gathered_events >= self.max_events:
            await self.flush()

    async def drain(self) -> None:
        await self.flush()

    async def flush_gathered(self) -> None:
        """Process a micro-batch that has waited batch_max_wait_s, however small, or while the worker
        is catching up, batch_catch_up_wait_s (micro_batch_due)."""
        max_wait_s = self.settings.batch_max_wait_s
        catch_up_wait_s = self.settings.batch_catch_up_wait_s

        def waiting() -> int:
            return unread(self.consumer(), self.read)

        while True:
            await asyncio.sleep(max_wait_s / 2 if max_wait_s else 0.01)
            if not self.gathered:
                continue
            waited = time.monotonic() - self.gathered_since
            if micro_batch_due(waited, len(self.gathered), waiting, max_wait_s, catch_up_wait_s):
                await self.flush()

    async def sweep_state(self) -> None:
        """Delete state past the window; run the detectors on the rest with no events (time alone can
        reveal something: a leaver still in a group). Delivered like a micro-batch: alerts, then state."""
        async with self.lock:  # no micro-batch runs meanwhile: the states read here are the latest
            outcome = sweep(self.pipeline, list(self.table.data.items()), self.clock())
            self.live.discard(key for key, _old, _new in outcome.new_states)  # rewritten or deleted
            refused = await deliver(outcome, self.output, dead_letter_max_bytes=self.settings.dead_letter_max_bytes)
        self.pipeline.publish_timings()
        publish(self.metrics, outcome, refused, self.clock())

    def forget(self, tps: Any) -> None:
        """Drop the live states of these partitions (a rebalance revoked or reassigned them: the next
        micro-batch of their people decodes what the table holds, recovered from the changelog)."""
        partitions = {tp.partition for tp in tps}
        if partitions:
            self.live.drop_partitions(partitions, lambda key: home_partition(key.decode(), self.settings.partitions))

    async def report_lag(self) -> None:
        metrics = self.metrics
        metrics.state_keys.set(len(self.table))
        metrics.live_states.set(len(self.live))
        metrics.live_state_bytes.set(self.live.bytes)
        consumer = self.consumer()
        assigned = consumer.assignment()
        positions = self.positions
        for (topic, partition) in list(positions):
            if not any(tp.topic == topic and tp.partition == partition for tp in assigned):
                # revoked in a rebalance: stop reporting a lag this worker no longer owns
                positions.pop((topic, partition), None)
                with contextlib.suppress(KeyError):
                    metrics.consumer_lag.remove(topic, str(partition))
        for tp in assigned:
            if tp.topic not in self.codes:
                continue
            high = consumer.highwater(tp)
            if high is None:
                continue
            done = positions.get((tp.topic, tp.partition), -1)
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, high - done - 1))
