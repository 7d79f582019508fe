"""The micro-batch as a pure step, shared by the worker and ``custodes replay``: no Kafka, no I/O.

:func:`gather` splits messages into a :class:`MicroBatch`; :func:`run_batch` runs it against the
users' stored states (read through ``read_state``) and returns a :class:`BatchOutcome`: the alerts, the
new states, the dead letters, the events to re-key and the counts. Nothing is written: the worker
hands the outcome to :func:`stream.worker.delivery.deliver`, which puts it on Kafka in the crash-safe
order; replay keeps it in memory. :func:`sweep` is the same step for the periodic sweep of stored
states (no events: expiry, and what time alone reveals).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from detectors.activity_days import DayCounts
from detectors.alert import Alert

from .live import LiveStates
from .microbatch import DeadLetter, MicroBatch
from .pipeline import Pipeline

StateWrite = tuple[bytes, bytes | None, bytes | None]
"""(key, state as read, new state or None to delete it)."""


class Record(NamedTuple):
    """One record an outcome sends before any state is written. ``role`` names the output topic
    (``alerts``, ``dead_letter``, ``rerouted``, ...): the adapter maps it to a topic name."""

    role: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    timestamp: float | None = None
    refused: DeadLetter | None = None
    """What to dead-letter instead should the broker refuse this record for its size (a re-keyed
    event); None: a refusal is an error like any other."""


@dataclass(slots=True)
class Counts:
    """What a micro-batch counted (consumed = processed + dead-lettered + expired, per event)."""

    consumed: dict[str, int] = field(default_factory=dict)
    """Events read, per input topic."""
    processed: Counter[str] = field(default_factory=Counter)
    """Events run through the detectors (or recognised as redelivered/duplicate), per kind."""
    expired: int = 0
    redelivered: int = 0
    """Messages whose events a user's state had already applied (a redelivery after a crash)."""
    duplicates: int = 0
    """Events equal to one the user's recent events already had."""
    state_expired: int = 0
    """States deleted by the sweep because every event behind them is past the window."""
    late_activity: int = 0
    """Events of a day more than one day before their person's newest day: not in the day counts."""
    newest_ts: float | None = None


@dataclass(slots=True)
class BatchOutcome:
    """What one micro-batch produced. To add an output (another topic), add a field and yield its
    records from :meth:`records`: the adapter sends every record, waits for all, and only then writes
    the states, so the new output gets the same crash-safety as the alerts."""

    alerts: list[tuple[bytes, Alert]] = field(default_factory=list)
    """(user key, alert) in the order raised."""
    new_states: list[StateWrite] = field(default_factory=list)
    """Only the states that changed."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    reroute: list[tuple[str, bytes, bytes, str]] = field(default_factory=list)
    """Events on a partition other than their user's: (user, line, origin header, topic)."""
    counts: Counts = field(default_factory=Counts)
    grouped: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(group key, record) of Sigma correlations grouped by other than the person, in origin order, for
    the group stage (stream/worker/correlation.py) on the ``sigma_groups`` topic."""
    days: list[tuple[bytes, DayCounts]] = field(default_factory=list)
    """(user key, a touched day's absolute activity counts by kind) for the activity-days topic: a
    record re-sent after a crash changes nothing (the store keeps the larger total of a day)."""

    def records(self, dead_letter_max_bytes: int) -> Iterator[Record]:
        """The records to send before the states are written: re-keyed events, alerts, dead letters."""
        for user, line, origin, topic in self.reroute:
            yield Record("rerouted", user.encode(), line, [("custodes.origin", origin)],
                         refused=unroutable_letter(line, origin, topic))
        for key, alert in self.alerts:
            yield Record("alerts", key, orjson.dumps(alert.to_dict()), timestamp=alert.ts)
        for letter in self.dead_letters:
            value, headers = letter.record(dead_letter_max_bytes)
            yield Record("dead_letter", None, value, headers)
        for group, rec in self.grouped:
            yield Record("sigma_groups", group.encode(), orjson.dumps(rec))
        for key, day in self.days:
            yield Record("activity_days", key, orjson.dumps(day.to_dict()), timestamp=day.last_seen)


def unroutable_letter(line: bytes, origin: bytes, topic: str) -> DeadLetter:
    """The dead letter of a re-keyed event that the rerouted topic refuses, at its place in ``topic``
    (``origin``: "partition:offset:line", as the ``custodes.origin`` header)."""
    partition, offset, number = (int(x) for x in origin.decode().split(":"))
    return DeadLetter(line, "unroutable", f"the re-keyed event ({len(line)} bytes) is larger than the rerouted "
                      "topic accepts", topic, partition, offset, number)


def gather(pipeline: Pipeline, messages: Iterable[Any], codes: dict[str, str],
           home: Callable[[str], int] | None) -> MicroBatch:
    """Split messages (anything with ``topic``, ``partition``, ``offset``, ``value``, ``headers``:
    aiokafka's records, Faust's messages) into one micro-batch. ``codes`` maps each input topic to the
    source code its positions are recorded under: ``e`` (input: events off their user's partition
    ``home(user)`` are marked for re-keying), ``r`` (re-keyed events, each at the position it came
    from, its ``custodes.origin`` header), or any other (replay)."""
    batch = MicroBatch()
    split, add = pipeline.split, batch.add
    for message in messages:
        topic, partition, offset = message.topic, message.partition, message.offset
        source = codes[topic]
        if source == "e":
            add(split(message.value, topic, partition, offset, home), topic, partition, offset, source)
            continue
        origin = None
        if source == "r":
            # a re-keyed event's position is where it came from (origin partition, offset, line),
            # so a copy re-sent after a crash (the origin message redelivered) is recognised
            headers = message.headers or ()
            origin = (headers if isinstance(headers, dict) else dict(headers)).get("custodes.origin")
        parts = split(message.value, topic, partition, offset, None)
        if origin:
            kp, ko, kl = (int(x) for x in origin.decode().split(":"))
            add(parts, topic, partition, offset, f"r{kp}", kp, ko, kl)
        else:
            add(parts, topic, partition, offset, source)
    return batch


def run_batch(pipeline: Pipeline, read_state: Callable[[bytes], bytes | None], batch: MicroBatch,
              groups: Any = None, live: LiveStates | None = None) -> BatchOutcome:
    """Run each user's events of ``batch`` together against their state (``read_state(key)``, the key
    being the user id in UTF-8): one read per user. Pure apart from the pipeline's own counters.
    ``groups`` (a :class:`stream.worker.correlation.GroupedCorrelations`, when Sigma rules run) takes
    the records of correlations grouped by other than the person as each person's events run.
    ``live``: decoded states kept between micro-batches (stream/worker/live.py): a user's entry is
    taken out before their events are applied and put back only once the new state is encoded, so an
    exception part-way leaves nothing half-updated in it; used only if the stored bytes are the ones
    it was encoded to."""
    counts = Counts(consumed=dict(batch.consumed), expired=batch.expired, newest_ts=batch.newest_ts)
    out = BatchOutcome(dead_letters=list(batch.dead), reroute=list(batch.reroute), counts=counts)
    processed = counts.processed
    if live is not None and not live.max_bytes:
        live = None  # off: nothing to take or put
    for user, segments in batch.users.items():
        key = user.encode()
        stored = read_state(key)
        if live is None:
            result = pipeline.apply_segments(user, segments, stored)
        else:
            result = pipeline.apply_segments(user, segments, stored, live.take(key, stored))
            if result.state is not None and result.live is not None:
                live.put(key, result.state, result.live)
        if groups is not None:
            groups.take(segments)
        if result.state is not stored:
            out.new_states.append((key, stored, result.state))
        for alert in result.alerts:
            out.alerts.append((key, alert))
        failed: set[int] = set()
        if result.failures:
            out.dead_letters.extend(pipeline.segment_failure_letters(result.failures, segments))
            failed = {id(f.event) for f in result.failures}
        for seg in segments:
            for ev in seg.events:
                if id(ev) not in failed:
                    processed[ev.kind] += 1
        counts.redelivered += result.redelivered
        counts.duplicates += result.duplicates
        counts.late_activity += result.late_activity
        out.days.extend((key, day) for day in result.days)
    if groups is not None:
        out.grouped = groups.ordered()
    return out


def sweep(pipeline: Pipeline, states: Iterable[tuple[bytes, bytes]], now: float) -> BatchOutcome:
    """The periodic sweep of stored states: a state past the window is deleted; the others run
    through the detectors with no events (a leaver still in a group) and are kept if unchanged."""
    out = BatchOutcome()
    for key, value in states:
        if pipeline.stale(value, now):
            out.new_states.append((key, value, None))
            out.counts.state_expired += 1
            continue
        result = pipeline.tick(key.decode(), value)
        for alert in result.alerts:
            out.alerts.append((key, alert))
        if result.state is not value:
            out.new_states.append((key, value, result.state))
    return out
