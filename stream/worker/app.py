"""The Faust app: topics, the detector-state table, the routing agent and the worker's web views.

The agent only routes: decoding, validation, retention and detection live in ``stream.worker.pipeline`` and
``detectors``. Input messages (one event each, or newline-delimited batches) are gathered into a
micro-batch (``batch_max_events`` / ``batch_max_wait_s``) and each is split into events: bad ones go
to the dead-letter topic with a reason, expired ones are counted, events on a partition other than
their user's are re-keyed through the rerouted topic, and each user's events in the micro-batch run
through the detectors together against that user's state in the table (one table read and write per
user per micro-batch).

Order of effects, so that a crash at any point loses nothing: alerts, dead letters and re-keyed
events are sent and acknowledged by the broker; then the changed states are written to the table's
changelog and acknowledged; only then are the messages acknowledged to Faust, whose commits never
pass an unacknowledged message. (Faust's own table writes are buffered, and its pre-commit flush can
return with writes still buffered, so the worker writes the changelog itself and waits for it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as Tally
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import faust
import orjson
from aiokafka.errors import MessageSizeTooLargeError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from detectors.base import Clock
from stream.contract.partitioning import home_partition
from stream.contract.settings import Settings
from stream.telemetry.metrics import PipelineMetrics
from stream.worker.handoff import QuickHandOff
from stream.worker.pipeline import DeadLetter, MicroBatch, Pipeline


def set_fetch_max_wait(consumer: Any, seconds: float) -> None:
    """How long the broker may hold a fetch open waiting for data. aiokafka keeps one fetch in flight
    per broker, for the partitions with nothing buffered; records arriving meanwhile for the others
    wait until it returns. Faust fixes this wait at 1.5 s, and under steady load the worker then took
    in ~1.8 s of input at a time (bench/latency.py: p99 2.2 s at 10k events/s; 0.48 s at 0.1 s)."""
    if not hasattr(consumer, "_fetch_max_wait_ms"):  # read by aiokafka when the consumer starts
        raise RuntimeError("aiokafka's consumer no longer has _fetch_max_wait_ms: update set_fetch_max_wait")
    consumer._fetch_max_wait_ms = round(seconds * 1000)


def _too_large(exc: BaseException | None) -> bool:
    """Whether a send failed because the producer or the broker refuses the record's size (permanent,
    unlike an outage, which the producer retries)."""
    while exc is not None:
        if isinstance(exc, MessageSizeTooLargeError):
            return True
        exc = exc.__cause__
    return False


def _unroutable_letter(line: bytes, origin: bytes, topic: str) -> DeadLetter:
    """The dead letter of a re-keyed event that the rerouted topic refuses, at its place in ``topic``
    (``origin``: "partition:offset:line", as the ``custodes.origin`` header)."""
    partition, offset, number = (int(x) for x in origin.decode().split(":"))
    return DeadLetter(line, "unroutable", f"the re-keyed event ({len(line)} bytes) is larger than the rerouted "
                      "topic accepts", topic, partition, offset, number)


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


class _Consumer(QuickHandOff, AIOKafkaConsumer):
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

    It also hands each message to the agents without a task per message (``QuickHandOff``)."""

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


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    registry: CollectorRegistry | None = None,
) -> faust.App:
    if not settings.broker:
        raise ValueError("the worker needs a broker (CUSTODES_BROKER or --broker)")
    from stream.detection.reference import FileReloader, detectors_for, follow_topics

    registry = registry if registry is not None else CollectorRegistry()
    metrics = PipelineMetrics(registry)
    holder, detectors = detectors_for(settings, hot_rules=True)
    reloader = FileReloader(holder, settings.reference_dir)
    from stream.detection.rules import RulesReloader

    sigma_unit = next((d for d in detectors if d.id == "sigma"), None)
    rules_reloader = RulesReloader(sigma_unit.rules, settings.rules) if sigma_unit is not None else None
    if sigma_unit is not None:
        from stream.detection.rules import rules_gauge

        rules_gauge(registry, sigma_unit.rules)
    pipeline = Pipeline(settings, detectors, clock, metrics, reference=holder)
    t = settings.topics
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{b}" for b in settings.broker.split(",")],
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_max_bytes,
        # any record the broker may hold (an event re-keyed whole, up to max_event_bytes): faust's 1,000,000
        # refused a re-keyed event of 1 MB, and the worker failed on it after every restart
        producer_max_request_size=max(4 << 20, settings.producer_batch_max_bytes),
        web_enabled=settings.worker_port != 0,
        web_bind=settings.web_bind,
        web_port=settings.worker_port or 6066,  # faust refuses port 0 even with the web server off
        web_host=settings.web_bind,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        table_standby_replicas=0,
    )
    app.transport.Consumer = _Consumer  # type: ignore[misc]  # see _Consumer
    app.custodes_fetch_max_wait_s = settings.fetch_max_wait_s  # type: ignore[attr-defined]  # _ConsumerThread

    @app.on_rebalance_complete.connect
    async def hold_fetching(sender: Any = None, **kwargs: Any) -> None:
        """Table recovery is done. Faust now resumes the source partitions, seeks them to the committed
        offsets and clears the agents' queues, in that order, with flow already active and the fetcher
        running: records fetched before the seek would reach the agent (processed, then the ones still
        queued dropped by the clear) or arrive after the clear, out of order. Stopping the consumer's
        flow here makes Faust discard any such fetch and seek back; Faust resumes flow itself after
        the seek and the clear (faust/tables/recovery.py, Recovery.on_recovery_completed)."""
        app.consumer.stop_flow()
    retention = timedelta(seconds=settings.retention_s)
    exactly_once = settings.processing_guarantee == "exactly_once"
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw",
                           "partitions": settings.partitions, "retention": retention}
    inputs = app.topic(t.events, t.rerouted, **raw)
    rerouted = app.topic(t.rerouted, **raw)
    dead_letter = app.topic(t.dead_letter, **raw)
    alerts_out = app.topic(t.alerts, **raw)
    from stream.worker import correlation

    groups = correlation.attach(app, settings, pipeline, metrics, registry, alerts_out, exactly_once)
    state = app.Table(
        "detector-state",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        # writes (also the sweep's deletes, made outside any event) go to the key's home partition
        use_partitioner=True,
        # compacted, and also bounded by the window: no state entry outlives two years
        extra_topic_configs={"cleanup.policy": "compact,delete", "retention.ms": settings.retention_s * 1000},
        help="Detector state per user (counts, sketches, running statistics; never event lists).",
    )
    positions: dict[tuple[str, int], int] = {}
    codes = {t.events: "e", t.rerouted: "r"}
    # Under exactly_once every send must happen inside its own message's transaction, so each message
    # is its own micro-batch. Otherwise messages gather up to batch_max_events / batch_max_wait_s.
    max_events = 1 if exactly_once else settings.batch_max_events
    max_wait_s = settings.batch_max_wait_s
    gathered: list[Any] = []  # Faust events, not yet acknowledged
    gathered_events = 0
    gathered_since = 0.0
    lock = asyncio.Lock()
    acker: list[faust.StreamT] = []

    def home(user: str) -> int:
        return home_partition(user, settings.partitions)

    async def produce(topic: Any, key: bytes | None, value: bytes | None, *, partition: int | None = None,
                      headers: list[tuple[str, bytes]] | None = None, timestamp: float | None = None) -> Any:
        """Send one record; returns a future resolved when the broker acknowledges it. Under
        exactly_once through faust's topic (inside the message's transaction); otherwise straight to
        the producer, skipping faust's per-record machinery (several times cheaper per record)."""
        if exactly_once:
            return await topic.send(key=key, value=value, partition=partition, headers=headers,
                                    timestamp=timestamp)
        return await app.producer.send(topic.get_topic_name(), key, value, partition, timestamp, headers)

    async def send_batched(topic_name: str, records: list[tuple[int, bytes, bytes | None]]) -> list[Any]:
        """Send (partition, key, value) records as record batches, one builder per partition: far
        cheaper per record than one producer call each. Returns the batches' delivery futures."""
        producer = app.producer._ensure_producer()  # the aiokafka producer faust drives
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

    async def write_states(writes: list[tuple[bytes, bytes | None, bytes | None]]) -> None:
        """Write (key, old, new) states to the table and wait until the changelog has them: the
        source messages are acknowledged only after this, so a committed offset implies its state
        survives a crash (faust's own buffered changelog writes give no such guarantee). A key's
        changelog partition is its home partition, as faust's partitioner would choose."""
        records: list[tuple[int, bytes, bytes | None]] = []
        futures = []
        data = state.data
        for key, old, new in writes:
            if new is None:
                if old is None:
                    continue
                data.pop(key, None)
            else:
                data[key] = new
            if exactly_once:  # inside the message's transaction
                futures.append(state.send_changelog(None, key, new))
            else:
                records.append((home_partition(key.decode(), settings.partitions), key, new))
        if records:
            futures.extend(await send_batched(state.changelog_topic.get_topic_name(), records))
        if futures:
            await asyncio.gather(*futures)

    async def send_alerts(key: bytes, alerts: list[Any], pending: list[Any]) -> None:
        for alert in alerts:
            pending.append(await produce(alerts_out, key, orjson.dumps(alert.to_dict()), timestamp=alert.ts))
            metrics.alerts.labels(alert.detector, alert.severity).inc()

    async def process(events: list[Any]) -> None:
        """One micro-batch: split every message, run each user's events together against their state,
        send alerts, dead letters and re-keyed events, wait for the broker's acks, then write state."""
        started = time.perf_counter()
        batch = MicroBatch()
        for event in events:
            message = event.message
            topic, partition, offset = message.topic, message.partition, message.offset
            source = codes[topic]
            split = pipeline.split(message.value, topic, partition, offset, home if source == "e" else None)
            origin = None
            if source == "r":
                # a re-keyed event's position is where it came from (origin partition, offset, line),
                # so a copy re-sent after a crash (the origin message redelivered) is recognised
                headers = message.headers or ()
                origin = (headers if isinstance(headers, dict) else dict(headers)).get("custodes.origin")
            if origin:
                kp, ko, kl = (int(x) for x in origin.decode().split(":"))
                batch.add(split, topic, partition, offset, f"r{kp}", kp, ko, kl)
            else:
                batch.add(split, topic, partition, offset, source)
            positions[(topic, partition)] = offset
        pending: list[Any] = []
        rerouting: list[tuple[Any, bytes, bytes]] = []  # (delivery, line, origin) of each re-keyed event
        unroutable: list[DeadLetter] = []
        for user, line, origin_value in batch.reroute:
            try:
                sent = await produce(rerouted, user.encode(), line, headers=[("custodes.origin", origin_value)])
            except Exception as exc:
                if not _too_large(exc):
                    raise
                unroutable.append(_unroutable_letter(line, origin_value, t.events))
                continue
            rerouting.append((sent, line, origin_value))
            pending.append(sent)
        kinds: Tally[str] = Tally()
        letters = batch.dead
        writes: list[tuple[bytes, bytes | None, bytes | None]] = []
        redelivered = duplicates = 0
        data = state.data
        for user, segments in batch.users.items():
            key = user.encode()
            stored = data.get(key)
            result = pipeline.apply_segments(user, segments, stored)
            if groups is not None:
                groups.take(segments)
            if result.state is not stored:
                writes.append((key, stored, result.state))
            if result.alerts:
                await send_alerts(key, result.alerts, pending)
            failed: set[int] = set()
            if result.failures:
                letters.extend(pipeline.segment_failure_letters(result.failures, segments))
                failed = {id(f.event) for f in result.failures}
            for seg in segments:
                for ev in seg.events:
                    if id(ev) not in failed:
                        kinds[ev.kind] += 1
            redelivered += result.redelivered
            duplicates += result.duplicates
        for letter in letters:
            value, headers = letter.record(settings.dead_letter_max_bytes)
            pending.append(await produce(dead_letter, None, value, headers=headers))
            metrics.dead_lettered.labels(letter.reason).inc()
        if groups is not None:
            pending.extend(await groups.send())
        if pending:
            # no state is written, and nothing acknowledged, before what this batch produced is on the
            # broker: a state that survives a crash implies its alerts were delivered
            for outcome in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(outcome, BaseException) and not _too_large(outcome):
                    raise outcome
            for sent, line, origin_value in rerouting:
                if sent.exception() is not None:  # too large (anything else was raised above)
                    unroutable.append(_unroutable_letter(line, origin_value, t.events))
        if unroutable:
            # a re-keyed event the rerouted topic refuses for its size would fail on every restart: it is
            # dead-lettered instead (the sizes of other sends are bounded: alerts, states, cut dead letters)
            sent_letters = []
            for letter in unroutable:
                value, headers = letter.record(settings.dead_letter_max_bytes)
                sent_letters.append(await produce(dead_letter, None, value, headers=headers))
                metrics.dead_lettered.labels(letter.reason).inc()
            await asyncio.gather(*sent_letters)
        await write_states(writes)
        for topic, n in batch.consumed.items():
            metrics.consumed.labels(topic).inc(n)
        for kind, n in kinds.items():
            metrics.processed.labels(kind).inc(n)
        if batch.expired:
            metrics.expired.inc(batch.expired)
        if batch.reroute:
            metrics.rerouted.inc(len(batch.reroute) - len(unroutable))
        if redelivered:
            metrics.duplicates.inc(redelivered)
        if duplicates:
            metrics.duplicate_events.inc(duplicates)
        if batch.newest_ts is not None:
            metrics.event_lag.observe(max(0.0, clock() - batch.newest_ts))
        pipeline.publish_timings()
        elapsed = time.perf_counter() - started
        metrics.batch_seconds.observe(elapsed)
        metrics.batch_messages.observe(len(events))
        metrics.processing_seconds.inc(elapsed)

    async def flush() -> None:
        """Process what has been gathered, then acknowledge those messages (so only then can their
        offsets be committed)."""
        nonlocal gathered, gathered_events
        async with lock:
            if not gathered:
                return
            events, gathered, gathered_events = gathered, [], 0
            await process(events)
            stream = acker[0]
            for event in events:
                await stream.ack(event)

    catch_up_wait_s = settings.batch_catch_up_wait_s
    read: dict[Any, int] = {}  # the offset of the last message gathered, per input partition

    def waiting() -> int:
        return unread(app.consumer, read)

    @app.agent(inputs, name="custodes-route")
    async def route(stream: faust.StreamT) -> None:
        nonlocal gathered_events, gathered_since
        manual = stream.noack()
        acker[:] = [manual]
        async for event in manual.events():
            if not gathered:
                gathered_since = time.monotonic()
            gathered.append(event)
            read[event.message.tp] = event.message.offset
            value = event.message.value
            gathered_events += value.count(b"\n") + 1 if value else 1
            if gathered_events >= max_events:
                await flush()

    if not exactly_once:
        @app.task
        async def flush_gathered() -> None:
            """Process a micro-batch that has waited batch_max_wait_s, however small, or while the worker
            is catching up, batch_catch_up_wait_s (micro_batch_due)."""
            while True:
                await asyncio.sleep(max_wait_s / 2 if max_wait_s else 0.01)
                if not gathered:
                    continue
                waited = time.monotonic() - gathered_since
                if micro_batch_due(waited, len(gathered), waiting, max_wait_s, catch_up_wait_s):
                    await flush()

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        metrics.state_keys.set(len(state))
        consumer = app.consumer
        assigned = consumer.assignment()
        for (topic, partition) in list(positions):
            if not any(tp.topic == topic and tp.partition == partition for tp in assigned):
                # revoked in a rebalance: stop reporting a lag this worker no longer owns
                positions.pop((topic, partition), None)
                with contextlib.suppress(KeyError):
                    metrics.consumer_lag.remove(topic, str(partition))
        for tp in assigned:
            if tp.topic not in codes:
                continue
            high = consumer.highwater(tp)
            if high is None:
                continue
            done = positions.get((tp.topic, tp.partition), -1)
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, high - done - 1))

    @app.timer(interval=float(settings.state_sweep_interval_s))
    async def sweep_state() -> None:
        """Delete state past the window; run the detectors on the rest with no events (time alone can
        reveal something: a leaver still in a group). As in handle(): alerts first, then state."""
        async with lock:  # no micro-batch runs meanwhile: the states read here are the latest
            now = clock()
            writes: list[tuple[bytes, bytes | None, bytes | None]] = []
            pending: list[Any] = []
            expired = 0
            for key, value in list(state.data.items()):
                if pipeline.stale(value, now):
                    writes.append((key, value, None))
                    expired += 1
                    continue
                result = pipeline.tick(key.decode(), value)
                if result.alerts:
                    await send_alerts(key, result.alerts, pending)
                if result.state is not value:
                    writes.append((key, value, result.state))
            if pending:
                await asyncio.gather(*pending)
            await write_states(writes)
        pipeline.publish_timings()
        if expired:
            metrics.state_expired.inc(expired)

    @app.timer(interval=float(settings.reference_reload_s))
    async def reload_reference_files() -> None:
        reloader.check()
        if rules_reloader is not None:
            rules_reloader.check()

    @app.task
    async def follow_reference_topics() -> None:
        await follow_topics(settings, holder, reloader, asyncio.Event())

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready = not app.rebalancing and bool(app.consumer.assignment())
        return web.json({"ready": ready}, status=200 if ready else 503)

    app.custodes_metrics = metrics  # type: ignore[attr-defined]
    app.custodes_registry = registry  # type: ignore[attr-defined]
    app.custodes_pipeline = pipeline  # type: ignore[attr-defined]
    app.custodes_reference = holder  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM (the process's main loop)."""
    from faust.worker import Worker

    from stream.contract.topics import ensure_topics
    from stream.detection.reference import ensure_reference_topics
    from stream.worker.gctune import tune_for_throughput

    ensure_topics(settings, settings.broker or "")
    ensure_reference_topics(settings, settings.broker or "")
    app = create_app(settings)
    tune_for_throughput()
    from stream.telemetry.logs import dict_config

    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False,
                    logging_config=dict_config(settings.log_level))
    worker.execute_from_commandline()
