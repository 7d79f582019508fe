"""The review app's Prometheus metrics, on an injectable registry. Labels are bounded (status, action,
outcome); never an account or user name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

log = logging.getLogger("custodes.review.metrics")

LOGIN_OUTCOMES = ("success", "failure", "throttled")


class QueueCollector(Collector):
    """custodes_review_queue_alerts{status} and the oldest open alert's age, queried at scrape time."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self):
        from .queries import queue_gauges

        queue = GaugeMetricFamily("custodes_review_queue_alerts", "Stored alerts by triage status.",
                                  labels=["status"])
        oldest = GaugeMetricFamily("custodes_review_oldest_open_alert_age_seconds",
                                   "Seconds since the oldest alert that is not closed was stored (0 if none).")
        try:
            with self.engine.connect() as conn:
                counts, age = queue_gauges(conn, datetime.fromtimestamp(self.clock(), UTC))
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the store is down
            log.warning("queue metrics unavailable: %s", type(exc).__name__)
            return
        for status, n in counts.items():
            queue.add_metric([status], n)
        oldest.add_metric([], age)
        yield queue
        yield oldest

    def describe(self):
        return []


class ReviewMetrics:
    def __init__(self, registry: CollectorRegistry, engine: Engine, clock: Callable[[], float]) -> None:
        self.registry = registry
        registry.register(QueueCollector(engine, clock))
        self.actions = Counter("custodes_review_actions_total", "Reviewer actions written to the audit trail.",
                               ["action"], registry=registry)
        self.logins = Counter("custodes_review_logins_total", "Login attempts by outcome.", ["outcome"],
                              registry=registry)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        self.chain_valid = Gauge("custodes_audit_chain_valid",
                                 "1 when the last verification of the audit hash chain passed, else 0.",
                                 registry=registry)
        self.chain_verified = Gauge("custodes_audit_chain_last_verified_timestamp_seconds",
                                    "When the audit hash chain was last verified (POSIX seconds).",
                                    registry=registry)
        self._head: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def note_head(self, seq: int, digest: str) -> None:
        """Remember the newest audit record this process wrote or verified (catches a removed tail)."""
        with self._lock:
            if self._head is None or seq > self._head[0]:
                self._head = (seq, digest)

    @property
    def head(self) -> tuple[int, str] | None:
        with self._lock:
            return self._head
