"""The Faust app: topics, the detector-state table, the routing agent and the worker's web views.

The agent only routes: decoding, validation, retention and detection live in ``stream.pipeline`` and
``detectors``. Each input message (one event, or a newline-delimited batch) is split into events;
bad ones go to the dead-letter topic with a reason, expired ones are counted, events on a partition
other than their user's are re-keyed through the rerouted topic, and each user's events run through
the detectors against that user's state in the table (one table write per user per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as Tally
from datetime import timedelta
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from detectors.base import Clock

from .metrics import PipelineMetrics
from .partitioning import home_partition
from .pipeline import Pipeline
from .settings import Settings

SOURCE_CODES = {"events": "e", "rerouted": "r"}


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    registry: CollectorRegistry | None = None,
) -> faust.App:
    if not settings.broker:
        raise ValueError("the worker needs a broker (CUSTODES_BROKER or --broker)")
    from .reference import FileReloader, detectors_for, follow_topics

    registry = registry if registry is not None else CollectorRegistry()
    metrics = PipelineMetrics(registry)
    holder, detectors = detectors_for(settings)
    reloader = FileReloader(holder, settings.reference_dir)
    pipeline = Pipeline(settings, detectors, clock, metrics)
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
        web_enabled=settings.worker_port != 0,
        web_bind=settings.web_bind,
        web_port=settings.worker_port,
        web_host=settings.web_bind,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        table_standby_replicas=0,
    )
    retention = timedelta(seconds=settings.retention_s)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw",
                           "partitions": settings.partitions, "retention": retention}
    inputs = app.topic(t.events, t.rerouted, **raw)
    rerouted = app.topic(t.rerouted, **raw)
    dead_letter = app.topic(t.dead_letter, **raw)
    alerts_out = app.topic(t.alerts, **raw)
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

    async def handle(message: Any) -> None:
        started = time.perf_counter()
        topic, partition, offset = message.topic, message.partition, message.offset
        source = codes[topic]
        home = None
        if source == "e":
            home = lambda user: home_partition(user, settings.partitions)  # noqa: E731
        split = pipeline.split(message.value, topic, partition, offset, home)
        # A re-keyed event's position is where it came from (origin partition, offset, line), so a copy
        # re-sent after a crash (the origin message redelivered) is recognised by position.
        key_source, key_partition, key_offset, key_line = source, partition, offset, 0
        if source == "r":
            headers = message.headers or ()
            origin = (headers if isinstance(headers, dict) else dict(headers)).get("custodes.origin")
            if origin:
                key_partition, key_offset, key_line = (int(x) for x in origin.decode().split(":"))
                key_source = f"r{key_partition}"
        pending: list[Any] = []
        for user, line, number in split.reroute:
            origin_header = ("custodes.origin", f"{partition}:{offset}:{number}".encode())
            pending.append(await rerouted.send(key=user.encode(), value=line, headers=[origin_header]))
        kinds: Tally[str] = Tally()
        letters = split.dead
        writes: list[tuple[bytes, bytes | None, bytes | None]] = []
        for user, events in split.groups.items():
            key = user.encode()
            stored = state.get(key)
            result = pipeline.apply(user, events, stored, key_source, key_partition, key_offset, key_line)
            if result.state is not stored:
                writes.append((key, stored, result.state))
            for alert in result.alerts:
                pending.append(await alerts_out.send(key=key, value=orjson.dumps(alert.to_dict()),
                                                    timestamp=alert.ts))
                metrics.alerts.labels(alert.detector, alert.severity).inc()
            failed = {id(f.event) for f in result.failures}
            if result.failures:
                letters = letters + pipeline.failure_letters(result.failures, topic, partition, offset)
            for ev in events:
                if id(ev) not in failed:
                    kinds[ev.kind] += 1
            if result.redelivered:
                metrics.duplicates.inc()
            if result.duplicates:
                metrics.duplicate_events.inc(result.duplicates)
        for letter in letters:
            pending.append(await dead_letter.send(value=letter.raw, headers=letter.headers()))
            metrics.dead_lettered.labels(letter.reason).inc()
        if pending:
            # nothing is acknowledged, and no state is written, before what this message produced is
            # on the broker: a state that survives a crash implies its alerts were delivered
            await asyncio.gather(*pending)
        for key, stored, new in writes:
            if new is None:
                if stored is not None:
                    del state[key]
            else:
                state[key] = new
        metrics.consumed.labels(topic).inc(split.consumed)
        for kind, n in kinds.items():
            metrics.processed.labels(kind).inc(n)
        if split.expired:
            metrics.expired.inc(split.expired)
        if split.reroute:
            metrics.rerouted.inc(len(split.reroute))
        if split.newest_ts is not None:
            metrics.event_lag.observe(max(0.0, clock() - split.newest_ts))
        positions[(topic, partition)] = offset
        elapsed = time.perf_counter() - started
        metrics.message_seconds.observe(elapsed)
        metrics.processing_seconds.inc(elapsed)

    @app.agent(inputs, name="custodes-route")
    async def route(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await handle(event.message)

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
        now = clock()
        writes: list[tuple[bytes, bytes | None, bytes]] = []
        pending: list[Any] = []
        expired = 0
        for key, value in list(state.items()):
            if pipeline.stale(value, now):
                writes.append((key, None, value))
                expired += 1
                continue
            result = pipeline.tick(key.decode(), value)
            for alert in result.alerts:
                pending.append(await alerts_out.send(key=key, value=orjson.dumps(alert.to_dict()),
                                                    timestamp=alert.ts))
                metrics.alerts.labels(alert.detector, alert.severity).inc()
            if result.state is not value:
                writes.append((key, result.state, value))
        if pending:
            await asyncio.gather(*pending)
        for key, new, old in writes:
            if state.get(key) is not old:
                continue  # the agent wrote a newer state meanwhile: keep it (the tick recurs next sweep)
            if new is None:
                del state[key]
            else:
                state[key] = new
        if expired:
            metrics.state_expired.inc(expired)

    @app.timer(interval=float(settings.reference_reload_s))
    async def reload_reference_files() -> None:
        reloader.check()

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

    from .gctune import tune_for_throughput
    from .reference import ensure_reference_topics
    from .topics import ensure_topics

    ensure_topics(settings, settings.broker or "")
    ensure_reference_topics(settings, settings.broker or "")
    app = create_app(settings)
    tune_for_throughput()
    from .logs import dict_config

    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False,
                    logging_config=dict_config(settings.log_level))
    worker.execute_from_commandline()
