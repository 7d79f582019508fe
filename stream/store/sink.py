"""The alert sink: consumes the alerts topic and upserts into the store.

At-least-once: offsets are committed only after the batch is in the store; the upsert is idempotent
(deterministic alert ids), so a redelivered batch changes nothing. When the database is unavailable
(an outage: connection refused or lost, timeout, server shutting down or out of resources) the sink
retries the same batch with exponential backoff (capped) and reports it in metrics; it never skips a
batch.

A permanent error caused by the data of one alert (a value the database refuses: DataError,
IntegrityError, a number or time out of range, a value too large for an index) is not an outage:
retrying would stop all alert storage behind one bad alert. The sink then writes the batch alert by
alert, sends each alert the store refuses to the alerts' dead-letter topic (``topics.alerts_dead_letter``)
with its reason in headers, stores the others and moves on; ``custodes_sink_alerts_dead_lettered_total``
counts them by reason (:data:`SINK_REASONS`). An alert message that cannot be decoded goes there too.
The database-up gauge stays 1 for a data error: the database answered.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from detectors.activity_days import DayCounts
from detectors.alert import Alert
from stream.contract.settings import Settings
from stream.store.alerts import AlertStore
from stream.telemetry.endpoints import serve
from stream.telemetry.metrics import SinkMetrics
from stream.worker.microbatch import cut_for_dead_letter

log = logging.getLogger("custodes.sink")


def decode_alert(value: bytes) -> Alert:
    return Alert.from_dict(orjson.loads(value))


SINK_REASONS = ("undecodable", "bad_value", "data_error", "integrity_error")
"""Why an alert went to the alerts' dead-letter topic (the ``reason`` label and header):
``undecodable`` the message is not an alert; ``bad_value`` a value no row can hold, found before the
database (a time out of range, text that is not Unicode); ``data_error`` the database refused a value
(out of range, too long, too large for an index); ``integrity_error`` a constraint refused the row."""

_PERMANENT_SQLSTATE_CLASSES = {"22": "data_error", "23": "integrity_error", "54": "data_error"}
"""SQLSTATE classes that mean "this row, never this server": data exception, integrity constraint
violation, program limit exceeded (e.g. an index row too large: PostgreSQL reports it as an
OperationalError, which would otherwise look like an outage)."""


def permanent_reason(exc: BaseException) -> str | None:
    """The :data:`SINK_REASONS` reason when ``exc``, raised writing alerts, is caused by their data (it
    would fail again however often it is retried), or None when it is (or may be) an outage: connection
    refused or lost (OperationalError, InterfaceError), timeouts, anything unknown. Unknown errors are
    retried: a retry loses nothing, a wrong dead letter would take an alert out of the store."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and state[:2] in _PERMANENT_SQLSTATE_CLASSES:
        return _PERMANENT_SQLSTATE_CLASSES[state[:2]]
    if isinstance(exc, IntegrityError):
        return "integrity_error"
    if isinstance(exc, DataError):
        return "data_error"
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        exc = orig  # SQLAlchemy could not bind a value: the driver's own ValueError, OverflowError ...
    if isinstance(exc, ValueError | TypeError | OverflowError):  # UnicodeError is a ValueError
        return "bad_value"
    return None


@dataclass(slots=True)
class Origin:
    """Where an alert was read from: its dead letter carries the original bytes and this position."""

    value: bytes
    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class AlertLetter:
    """An alert (or an undecodable message) for the alerts' dead-letter topic."""

    value: bytes
    reason: str
    detail: str
    origin: Origin | None = None
    alert_id: str | None = None
    detector: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        out = [("custodes.reason", self.reason.encode()), ("custodes.detail", self.detail.encode())]
        if self.origin is not None:
            out += [("custodes.source.topic", self.origin.topic.encode()),
                    ("custodes.source.partition", str(self.origin.partition).encode()),
                    ("custodes.source.offset", str(self.origin.offset).encode())]
        if self.alert_id:
            out.append(("custodes.alert.id", self.alert_id.encode()))
        if self.detector:
            out.append(("custodes.detector", self.detector.encode()))
        return out


def _error_detail(exc: BaseException) -> str:
    """What went wrong, for people, without any value: the exception's class and SQLSTATE."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    name = type(orig).__name__ if orig is not None else type(exc).__name__
    return f"the store refused the alert: {name}" + (f" (SQLSTATE {state})" if state else "")


class Sink:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None,
                 store: AlertStore | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = SinkMetrics(self.registry)
        for reason in SINK_REASONS:  # every reason at 0 from the start: a dashboard shows 0, not no data
            self.metrics.dead_lettered.labels(reason)
        for outcome in ("stored", "rejected"):
            self.metrics.activity_days.labels(outcome)
        self.store = store
        self.stopping = threading.Event()
        self.assigned = False
        self.letters: list[AlertLetter] = []
        """Dead letters not yet sent: ``run`` sends them before it commits the offsets."""
        self.cut_headers: dict[int, list[tuple[str, bytes]]] = {}

    def _store(self) -> AlertStore:
        if self.store is None:
            self.store = AlertStore(self.settings.db_url)
        return self.store

    def decode(self, messages: list[Origin]) -> tuple[list[Alert], list[Origin]]:
        """The alerts of ``messages`` and where each came from; a message that is not an alert is
        dead-lettered (``undecodable``)."""
        batch: list[Alert] = []
        origins: list[Origin] = []
        for origin in messages:
            self.metrics.consumed.inc()
            try:
                batch.append(decode_alert(origin.value))
                origins.append(origin)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                self.metrics.rejected.inc()
                self._dead_letter(None, origin, "undecodable", f"not an alert: {type(exc).__name__}")
        return batch, origins

    def write(self, batch: list[Alert], sleep: Callable[[float], None] = time.sleep,
              origins: list[Origin] | None = None) -> None:
        """Store ``batch`` (``origins[i]``: where ``batch[i]`` was read). An outage is retried until it
        ends (or the sink is stopping): never drop a batch. A permanent error isolates the alert at
        fault (writing alert by alert until one is refused) and dead-letters it (:attr:`letters`), then
        the rest is tried as one batch again: a batch of n alerts with b bad ones takes at most n + b
        writes."""

        def refused(i: int, reason: str, exc: BaseException) -> None:
            self._dead_letter(batch[i], origins[i] if origins else None, reason, _error_detail(exc))

        def stored(chunk: list[int], seconds: float) -> None:
            self.metrics.write_seconds.observe(seconds)
            for i in chunk:
                self.metrics.stored.labels(batch[i].detector, batch[i].severity).inc()

        self._write_isolating(len(batch), lambda chunk: self._store().upsert_alerts([batch[i] for i in chunk]),
                              refused, stored, "alerts", sleep)

    def write_days(self, messages: list[Origin], sleep: Callable[[float], None] = time.sleep) -> None:
        """Store activity-day records (detectors/activity_days.py: one person's absolute counts of one
        day) read from the activity-days topic. Like alerts: an outage is retried until it ends, a record
        that is not a day record or that the store refuses is dead-lettered with its reason (the
        alerts' dead-letter topic, its source topic in the headers) and the others are stored."""
        days: list[DayCounts] = []
        origins: list[Origin] = []
        for origin in messages:
            try:
                days.append(DayCounts.from_dict(orjson.loads(origin.value)))
                origins.append(origin)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
                self.metrics.activity_days.labels("rejected").inc()
                self._dead_letter(None, origin, "undecodable", f"not an activity-day record: {type(exc).__name__}")

        def refused(i: int, reason: str, exc: BaseException) -> None:
            self.metrics.activity_days.labels("rejected").inc()
            self._dead_letter(None, origins[i], reason, _error_detail(exc).replace("alert", "record"))

        def stored(chunk: list[int], seconds: float) -> None:
            self.metrics.activity_days.labels("stored").inc(len(chunk))

        self._write_isolating(len(days), lambda chunk: self._store().upsert_activity_days([days[i] for i in chunk]),
                              refused, stored, "activity-day records", sleep)

    def _write_isolating(self, n: int, write: Callable[[list[int]], None],
                         refused: Callable[[int, str, BaseException], None],
                         stored: Callable[[list[int], float], None], what: str,
                         sleep: Callable[[float], None]) -> None:
        """Write items 0..n-1 with ``write(indices)``: an outage is retried with backoff until it ends
        (or the sink is stopping); a permanent error (the data at fault, :func:`permanent_reason`) makes
        the rest go one by one until the item at fault is found and handed to ``refused``, then the rest
        is tried as one batch again. ``stored(indices, seconds)`` after each successful write."""
        delay = 0.5
        pending = list(range(n))
        one_by_one = False
        while pending:
            chunk = pending[:1] if one_by_one else pending
            started = time.perf_counter()
            try:
                write(chunk)
            except (SQLAlchemyError, ValueError, TypeError, OverflowError) as exc:
                reason = permanent_reason(exc)
                if reason is not None:
                    self.metrics.db_up.set(1)  # the database answered: the data is at fault
                    if not one_by_one and len(chunk) > 1:
                        log.warning("store refused a batch of %d %s (%s); writing them one by one",
                                    len(chunk), what, type(exc).__name__)
                        one_by_one = True
                        continue
                    refused(chunk[0], reason, exc)
                    pending = pending[1:]
                    one_by_one = False  # the rest as one batch again: each bad item costs one more try
                    continue
                if not isinstance(exc, SQLAlchemyError):
                    raise
                self.metrics.db_errors.inc()
                self.metrics.db_up.set(0)
                log.warning("store unavailable (%s); retrying in %.1f s", type(exc).__name__, delay)
                if self.stopping.is_set():
                    raise
                sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.metrics.db_up.set(1)
            delay = 0.5
            stored(chunk, time.perf_counter() - started)
            pending = pending[len(chunk):]

    def _dead_letter(self, alert: Alert | None, origin: Origin | None, reason: str, detail: str) -> None:
        value = origin.value if origin is not None else orjson.dumps(alert.to_dict()) if alert else b""
        value, cut = cut_for_dead_letter(value, self.settings.dead_letter_max_bytes)
        letter = AlertLetter(value, reason, detail, origin, alert.id if alert else None,
                             alert.detector if alert else None)
        self.letters.append(letter)
        self.cut_headers[id(letter)] = cut
        self.metrics.dead_lettered.labels(reason).inc()
        where = f" at {origin.topic}[{origin.partition}]@{origin.offset}" if origin else ""
        log.error("alert dead-lettered (%s)%s: %s", reason, where, detail)

    def send_letters(self, producer: KafkaProducer) -> None:
        """Send the pending dead letters and wait until the broker has them (before offsets move on)."""
        if not self.letters:
            return
        topic = self.settings.topics.alerts_dead_letter
        futures = [producer.send(topic, value=letter.value,
                                 headers=letter.headers() + self.cut_headers.pop(id(letter), []))
                   for letter in self.letters]
        producer.flush()
        for future in futures:
            future.get(timeout=60)  # raises if the broker refused it: the offsets are not committed
        self.letters.clear()

    def run(self) -> None:
        from stream.contract.topics import ensure_topics

        s = self.settings
        # create the topics first: subscribing to a missing topic lets the broker auto-create it
        # with its own defaults (partitions, no retention) and delays the sink by a metadata refresh
        ensure_topics(s, s.broker or "")
        consumer = KafkaConsumer(
            s.topics.alerts,
            s.topics.activity_days,
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
        producer = KafkaProducer(bootstrap_servers=(s.broker or "").split(","), acks="all",
                                 client_id="custodes-sink", max_request_size=1_048_576)
        try:
            while not self.stopping.is_set():
                polled = consumer.poll(timeout_ms=500)
                self.assigned = bool(consumer.assignment())
                if not polled:
                    continue
                read = [Origin(record.value or b"", record.topic, record.partition, record.offset)
                        for records in polled.values() for record in records]
                batch, origins = self.decode([o for o in read if o.topic != s.topics.activity_days])
                if batch:
                    self.write(batch, origins=origins)
                days = [o for o in read if o.topic == s.topics.activity_days]
                if days:
                    self.write_days(days)
                self.send_letters(producer)
                consumer.commit()
        finally:
            producer.close(timeout=10)
            consumer.close()
            if self.store is not None:
                self.store.dispose()


def schedule_retention(settings: Settings, registry: CollectorRegistry, stopping: threading.Event) -> None:
    """Run the retention job every ``retention_interval_s`` (first run at start) until stopping."""
    from stream.store.alerts import engine_for
    from stream.store.audit_chain import load_key
    from stream.store.retention import Retention, RetentionMetrics

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
    from stream.telemetry.logs import configure

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
