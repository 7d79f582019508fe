"""The alert sink: consumes the alerts topic and upserts into the store.

At-least-once: offsets are committed only after the batch is in the store; the upsert is idempotent
(deterministic alert ids), so a redelivered batch changes nothing. When the database is unavailable
the sink retries the same batch with exponential backoff (capped) and reports it in metrics; it never
skips a batch.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import orjson
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from detectors.alert import Alert

from .endpoints import serve
from .metrics import SinkMetrics
from .settings import Settings
from .store import AlertStore

log = logging.getLogger("custodes.sink")


def decode_alert(value: bytes) -> Alert:
    return Alert.from_dict(orjson.loads(value))


class Sink:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None,
                 store: AlertStore | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = SinkMetrics(self.registry)
        self.store = store
        self.stopping = threading.Event()
        self.assigned = False

    def _store(self) -> AlertStore:
        if self.store is None:
            self.store = AlertStore(self.settings.db_url)
        return self.store

    def write(self, batch: list[Alert], sleep: Callable[[float], None] = time.sleep) -> None:
        """Write until it succeeds (or the sink is stopping): never drop a batch."""
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                self._store().upsert_alerts(batch)
            except SQLAlchemyError as exc:
                self.metrics.db_errors.inc()
                self.metrics.db_up.set(0)
                log.warning("store unavailable (%s); retrying in %.1f s", type(exc).__name__, delay)
                if self.stopping.is_set():
                    raise
                sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.metrics.write_seconds.observe(time.perf_counter() - started)
            self.metrics.db_up.set(1)
            for a in batch:
                self.metrics.stored.labels(a.detector, a.severity).inc()
            return

    def run(self) -> None:
        from .topics import ensure_topics

        s = self.settings
        # create the topics first: subscribing to a missing topic lets the broker auto-create it
        # with its own defaults (partitions, no retention) and delays the sink by a metadata refresh
        ensure_topics(s, s.broker or "")
        consumer = KafkaConsumer(
            s.topics.alerts,
            bootstrap_servers=(s.broker or "").split(","),
            group_id=f"{s.app_id}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.sink_batch_max,
            client_id="custodes-sink",
            metadata_max_age_ms=30_000,
            # with processing_guarantee = "exactly_once" the worker writes alerts in transactions:
            # never store an alert from an aborted one. Otherwise read everything (no transactions).
            isolation_level="read_committed" if s.processing_guarantee == "exactly_once" else "read_uncommitted",
        )
        try:
            while not self.stopping.is_set():
                polled = consumer.poll(timeout_ms=500)
                self.assigned = bool(consumer.assignment())
                if not polled:
                    continue
                batch: list[Alert] = []
                for records in polled.values():
                    for record in records:
                        self.metrics.consumed.inc()
                        try:
                            batch.append(decode_alert(record.value))
                        except (orjson.JSONDecodeError, TypeError, ValueError):
                            self.metrics.rejected.inc()
                            log.error("undecodable alert at %s[%d]@%d", record.topic, record.partition,
                                      record.offset)
                if batch:
                    self.write(batch)
                consumer.commit()
        finally:
            consumer.close()
            if self.store is not None:
                self.store.dispose()


def schedule_retention(settings: Settings, registry: CollectorRegistry, stopping: threading.Event) -> None:
    """Run the retention job every ``retention_interval_s`` (first run at start) until stopping."""
    from .audit_chain import load_key
    from .retention import Retention, RetentionMetrics
    from .store import engine_for

    metrics = RetentionMetrics(registry)
    audit_key = load_key(settings)  # the job signs the audit trail's checkpoint records
    engine = engine_for(settings.db_url)

    def loop() -> None:
        while not stopping.is_set():
            try:
                receipts = Retention(engine, settings.retention_s, audit_key=audit_key, metrics=metrics).run()
                log.info("retention run: %s", ", ".join(f"{r.kind} {r.deleted}" for r in receipts))
            except Exception as exc:  # noqa: BLE001 - the job must outlive one bad run (and say so)
                log.warning("retention run failed (%s); next try in %d s", type(exc).__name__,
                            settings.retention_interval_s)
            stopping.wait(settings.retention_interval_s)

    threading.Thread(target=loop, name="custodes-retention", daemon=True).start()


def run_sink(settings: Settings) -> None:
    from .logs import configure

    configure(settings.log_level)
    sink = Sink(settings)
    server = None
    if settings.sink_port:
        server = serve(sink.registry, settings.web_bind, settings.sink_port, ready=lambda: sink.assigned)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sink.stopping.set())
    if settings.retention_interval_s:
        sink._store()  # migrate before the retention thread touches the tables
        schedule_retention(settings, sink.registry, sink.stopping)
    try:
        sink.run()
    finally:
        if server is not None:
            server.shutdown()
