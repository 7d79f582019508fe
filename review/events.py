"""Reviewer actions as canonical audit events, so detectors can watch the watchers.

Each action becomes an event with ``custodes.activity = "review"``, ``user.id`` = the reviewer's linked
monitored user id (else the account name) and ``event.action`` = the action. Emission never fails a
request: a broker problem is logged and counted.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from stream.contract.settings import Settings

log = logging.getLogger("custodes.review.events")


def review_event(*, seq: int, digest: str, ts: float, user_id: str, account: str, action: str,
                 target_type: str, target_id: str, about: str | None = None) -> dict[str, Any]:
    """``about``: the monitored person the action concerns (``custodes.subject.id``), when there is one."""
    event = {
        "@timestamp": datetime.fromtimestamp(ts, UTC).isoformat(),
        "event": {"id": f"review-{seq}-{digest[:16]}", "action": action, "outcome": "success",
                  "kind": "event", "category": ["iam"] if action in ("login", "logout") else ["database"]},
        "user": {"id": user_id, "name": account},
        "custodes": {
            "schema_version": 1,
            "activity": "review",
            "application": {"id": "custodes-review"},
            "record": {"ids": [f"{target_type}:{target_id}"], "count": 1},
        },
    }
    if about is not None:
        event["custodes"]["subject"] = {"id": about}
    return event


class Emitter(Protocol):
    def emit(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class NullEmitter:
    def emit(self, event: dict[str, Any]) -> None:
        return

    def close(self) -> None:
        return


class MemoryEmitter:
    """Keeps events in a list (tests)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def close(self) -> None:
        return


class KafkaEmitter:
    """kafka-python producer to ``settings.topics.events``, keyed by user id (the user's home partition)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.broker:
            raise ValueError("KafkaEmitter needs settings.broker")
        self.bootstrap = settings.broker.split(",")
        self.topic = settings.topics.events
        self._producer = None
        self._lock = threading.Lock()
        self.failures = 0

    def _get(self):
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=50,
                                               client_id="custodes-review", retries=5)
            return self._producer

    def emit(self, event: dict[str, Any]) -> None:
        try:
            key = str(event["user"]["id"]).encode()
            fut = self._get().send(self.topic, key=key, value=orjson.dumps(event))
            fut.add_errback(self._failed)
        except Exception as exc:  # noqa: BLE001 - never fail the reviewer's request
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        log.warning("could not emit a review event: %s", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(timeout=10)
                self._producer.close(timeout=10)
                self._producer = None


def emitter_for(settings: Settings) -> Emitter:
    return KafkaEmitter(settings) if settings.broker else NullEmitter()
