"""The data of a micro-batch: one message's events split per user (``Split``), a user's events from one
message (``Segment``), several messages gathered (``MicroBatch``), the result of running one user's
events (``Applied``) and what goes to the dead-letter topic (``DeadLetter``). No Kafka, no logic beyond
gathering: ``stream.worker.pipeline`` fills them, ``stream.worker.step`` runs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.activity_days import DayCounts
from detectors.alert import Alert
from detectors.engine import Failure
from detectors.event import Event


@dataclass(slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    line: int
    detector: str | None = None
    field: str | None = None
    """The field path the problem is at, when known (header ``custodes.field``)."""

    def headers(self) -> list[tuple[str, bytes]]:
        out = [
            ("custodes.reason", self.reason.encode()),
            ("custodes.detail", self.detail.encode()),
            ("custodes.source.topic", self.topic.encode()),
            ("custodes.source.partition", str(self.partition).encode()),
            ("custodes.source.offset", str(self.offset).encode()),
            ("custodes.source.line", str(self.line).encode()),
        ]
        if self.detector:
            out.append(("custodes.detector", self.detector.encode()))
        if self.field:
            out.append(("custodes.field", self.field.encode()))
        return out

    def record(self, max_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The value and headers of its record on the dead-letter topic (the input cut to ``max_bytes``)."""
        value, cut = cut_for_dead_letter(self.raw, max_bytes)
        return value, self.headers() + cut


def cut_for_dead_letter(raw: bytes, max_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """At most ``max_bytes`` of bad input for its dead letter, and, when cut, a ``custodes.truncated``
    header with the original size: input as large as the broker accepts plus the reason headers would
    otherwise be more than the producer or the broker takes, and the worker would fail on it forever."""
    if len(raw) <= max_bytes:
        return raw, []
    return raw[:max_bytes], [("custodes.truncated", str(len(raw)).encode())]


@dataclass(slots=True)
class Split:
    groups: dict[str, list[Event]] = field(default_factory=dict)
    digests: dict[str, list[bytes]] = field(default_factory=dict)
    """Per user, the :func:`content_digest` of each event in ``groups`` (empty when dedupe is off)."""
    dead: list[DeadLetter] = field(default_factory=list)
    reroute: list[tuple[str, bytes, int]] = field(default_factory=list)
    """(user, original line, its line number in the message): re-keyed through the rerouted topic."""
    consumed: int = 0
    expired: int = 0
    newest_ts: float | None = None


@dataclass(slots=True)
class Segment:
    """One message's events of one user, and where they came from (the position recorded in state)."""

    source: str
    partition: int
    offset: int
    line: int
    events: list[Event]
    message: tuple[str, int, int] = ("", 0, 0)
    """(topic, partition, offset) of the message that carried them (for dead letters)."""
    digests: list[bytes] | None = None
    """The :func:`content_digest` of each event, when split computed them (else computed when needed)."""


@dataclass(slots=True)
class Applied:
    state: bytes | None
    alerts: list[Alert]
    failures: list[Failure]
    redelivered: int = 0
    """Segments (messages) skipped because the state had already applied them."""
    duplicates: int = 0
    days: list[DayCounts] = field(default_factory=list)
    """The user's absolute activity counts of each day these events touched (detectors/activity_days.py),
    for the activity-days topic."""
    late_activity: int = 0
    """Events of a day no longer counted (more than a day before the newest day seen)."""
    live: Any = None
    """The decoded state ``state`` is the encoding of (None when there is none): what the worker may
    keep live for the next micro-batch (stream/worker/live.py)."""


@dataclass(slots=True)
class MicroBatch:
    """Several messages, split, with their good events grouped per user in arrival order: the unit
    the worker and replay run the detectors on (each user once per micro-batch)."""

    users: dict[str, list[Segment]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    reroute: list[tuple[str, bytes, bytes, str]] = field(default_factory=list)
    """(user, original line, ``custodes.origin`` header value "partition:offset:line", its topic)."""
    consumed: dict[str, int] = field(default_factory=dict)
    """Per input topic."""
    expired: int = 0
    newest_ts: float | None = None

    def add(self, split: Split, topic: str, partition: int, offset: int,
            source: str, key_partition: int | None = None, key_offset: int | None = None,
            key_line: int = 0) -> None:
        """Add one message's split; its events' position is (source, key_partition, key_offset,
        key_line), by default the message's own (partition, offset)."""
        kp = partition if key_partition is None else key_partition
        ko = offset if key_offset is None else key_offset
        groups = split.groups
        if groups:
            digests = split.digests
            message = (topic, partition, offset)
            users = self.users
            for user, events in groups.items():
                seg = Segment(source, kp, ko, key_line, events, message, digests.get(user))
                segs = users.get(user)
                if segs is None:
                    users[user] = [seg]
                else:
                    segs.append(seg)
        if split.dead:
            self.dead.extend(split.dead)
        for user, line, number in split.reroute:
            self.reroute.append((user, line, f"{partition}:{offset}:{number}".encode(), topic))
        consumed = self.consumed
        consumed[topic] = consumed.get(topic, 0) + split.consumed
        if split.expired:
            self.expired += split.expired
        newest = split.newest_ts
        if newest is not None and (self.newest_ts is None or newest > self.newest_ts):
            self.newest_ts = newest
