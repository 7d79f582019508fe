"""The processing core shared by the Faust worker and offline replay. No Kafka here.

One Kafka message carries one event or a batch of newline-delimited events. ``split`` decodes and
validates each line, applies the retention gate and groups the good events by user; ``apply`` runs
one user's events through the detectors against that user's stored state.

Delivery is at-least-once. So that a message redelivered after a crash is not counted twice, a
user's state records the (partition, offset) of the last message applied per input topic; a message
at or below it leaves the state alone. The worker writes a user's new state only after the alerts
that message raised are acknowledged by the broker, so a state that survived a crash implies its
alerts were delivered; a crash before that replays the message against the old state and raises the
same alerts again (deterministic ids: the store keeps one row).

A producer may also send the same event twice (Beats and other shippers are at-least-once too): the
state keeps short digests of the user's last ``dedupe_events`` events, and an event seen again is
recognised as a duplicate instead of being counted twice. The digest covers the event's whole
validated document in canonical form (see :func:`content_digest`), not its id alone: sources reuse ids
for different events (Google Workspace's ``uniqueQualifier``, vendors' sample logs), and each of those
must be processed; only a copy equal to an event already seen is dropped.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from detectors.activity_days import count as count_days
from detectors.alert import Alert
from detectors.base import Clock, Detector
from detectors.engine import Engine, Failure
from detectors.event import Event
from detectors.reference import ReferenceHolder
from stream.contract.codec import Invalid, Limits, decode, validate
from stream.contract.settings import Settings
from stream.telemetry.metrics import PipelineMetrics

from .microbatch import Applied, DeadLetter, Segment, Split

DIGEST_BYTES = 4
"""Bytes per remembered event (a false match among the 64 remembered is a ~1.5e-8 chance per event)."""

_CANONICAL = orjson.OPT_SORT_KEYS
_blake2b = hashlib.blake2b


def content_digest(event: Event, doc: dict[str, Any] | None = None) -> bytes:
    """4 bytes standing for an event's content: BLAKE2b of its canonical document, the validated
    document (``doc``, else the event's own) with ECS dotted keys expanded into objects, keys sorted at
    every level and no insignificant whitespace (``orjson.dumps`` with sorted keys; strings in one
    encoding, so escapes such as ``\\u0061`` for ``a`` do not matter). So a byte-identical re-send, or the
    same document with its keys in another order, other whitespace or dotted instead of nested keys, has
    the same digest, and events that differ in any field (the timestamp, the action, a document id the
    detectors do not read) do not, even when they share ``event.id``. Numbers keep their JSON type:
    ``1`` and ``1.0`` differ. An Event built in code without a document (tests) is digested from its
    attributes instead."""
    if doc is None:
        doc = event.doc if event.doc is not None else event.document
    try:
        if doc:
            basis = orjson.dumps(doc, option=_CANONICAL)
        else:
            basis = orjson.dumps([getattr(event, name) for name in _ATTRIBUTES], option=_CANONICAL)
    except TypeError:  # an integer beyond 64 bits, only in documents built in Python
        basis = repr(doc or event).encode()
    return _blake2b(basis, digest_size=DIGEST_BYTES).digest()


_ATTRIBUTES = tuple(name for name in Event.__dataclass_fields__ if name not in ("doc", "raw"))


def _recent_digests(stored: Any) -> bytearray:
    """The remembered content digests of a user's state (``y``), oldest first, 4 bytes each, stored as
    one base64 string. States written before digests covered content kept digests of event ids under
    ``x``; those are not comparable and are dropped (see ``apply_segments``)."""
    if not stored:
        return bytearray()
    return bytearray(binascii.a2b_base64(stored))


def owned(data: bytes) -> bytes:
    """An exact-size copy of ``data``, to keep. orjson builds its output in a buffer much larger than
    the result and shrinks it in place, so each result kept for long (a user's state, in the table or
    replay's dict) pins the rest of that buffer: with orjson 3.13, 85 MB of kept states held 751 MB of
    RSS (3.8: 251 MB), copied 118 MB. ``bytes(x)`` and ``x[:]`` return ``x`` itself; this copies."""
    return memoryview(data).tobytes()


def _has_digest(digests: bytearray, digest: bytes) -> bool:
    """Whether ``digest`` is one of the 4-byte entries (a match must start on an entry)."""
    at = digests.find(digest)
    while at >= 0:
        if at % DIGEST_BYTES == 0:
            return True
        at = digests.find(digest, at + 1)
    return False


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        detectors: Sequence[Detector],
        clock: Clock = time.time,
        metrics: PipelineMetrics | None = None,
        reference: ReferenceHolder | None = None,
    ) -> None:
        self.settings = settings
        self.reference = reference
        """The reference data the detectors read: its staff directory resolves aliases at decode."""
        self.unknown_identities: dict[str, int] = {}
        """Events whose user id the loaded staff directory does not know, per source label (bounded)."""
        self.clock = clock
        self.metrics = metrics
        self.limits: Limits = settings.event_limits
        self._spent: dict[str, float] = {}
        """Seconds per detector since the last ``publish_timings`` (a dict add per call, not a metric)."""
        observe = None
        if metrics is not None:
            spent = self._spent

            def observe(det_id: str, seconds: float) -> None:
                spent[det_id] = spent.get(det_id, 0.0) + seconds

        self.engine = Engine(detectors, clock, observe)
        self.activities = None
        """The activity table (config/activities.toml): activity for events that carry none."""
        if settings.activities_file is not None:
            from stream.sources.activities import load as load_activities

            self.activities = load_activities(settings.activities_file)
        self.unclassified: dict[str, int] = {}
        """Events no rule of the activity table matched, per dataset label (bounded), since the start."""

    def publish_timings(self) -> None:
        """Add the time spent per detector to ``custodes_detector_seconds_total`` (once per micro-batch)."""
        if self.metrics is not None:
            counter = self.metrics.detector_seconds
            for det_id, seconds in self._spent.items():
                counter.labels(det_id).inc(seconds)
        self._spent.clear()

    # -- decoding, validation, retention gate ---------------------------------------------------

    def split(
        self,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        home: Callable[[str], int] | None = None,
    ) -> Split:
        """``home(user_id)`` gives the user's home partition; events elsewhere are marked for rerouting."""
        out = Split()
        lines = (value or b"").split(b"\n")
        now = self.clock()
        oldest = now - self.settings.retention_s
        latest = now + self.settings.max_future_s
        dedupe = self.settings.dedupe_events > 0
        ref = self.reference.current if self.reference is not None else None
        staff = ref.staff if ref is not None else None  # no directory loaded: ids are taken as given
        unknown: dict[str, int] | None = None  # events whose id the directory does not know, per source
        for number, line in enumerate(lines, 1):
            if not line.strip():
                if len(lines) == 1:  # an empty message is bad input, not nothing
                    out.consumed += 1
                    out.dead.append(DeadLetter(line, "invalid_json", "empty message", topic, partition,
                                               offset, number))
                continue
            out.consumed += 1
            try:
                doc = decode(line, self.limits)
                ev = validate(doc, line, self.limits, keep_doc=False)
            except Invalid as exc:
                out.dead.append(DeadLetter(line, exc.reason, exc.detail, topic, partition, offset, number,
                                           field=exc.field))
                continue
            except RecursionError:
                out.dead.append(DeadLetter(line, "too_deeply_nested", "event nests too deeply", topic,
                                           partition, offset, number))
                continue
            if ev.kind == "other" and self.activities is not None:
                self._derive_activity(ev)
            if ev.ts < oldest:
                out.expired += 1
                continue
            if ev.ts > latest:
                out.dead.append(DeadLetter(
                    line, "timestamp_in_future",
                    f"@timestamp is more than {self.settings.max_future_s} s ahead of now",
                    topic, partition, offset, number, field="@timestamp",
                ))
                continue
            known = True
            if staff and ev.user_id not in staff:
                known = self._resolve(ev, ref)  # type: ignore[arg-type]
            if home is not None and home(ev.user_id) != partition:
                out.reroute.append((ev.user_id, line, number))
                continue  # resolved (and counted if unknown) again where it is re-keyed to
            if not known:
                if unknown is None:
                    unknown = {}
                label = self._source_label(ev)
                unknown[label] = unknown.get(label, 0) + 1
            group = out.groups.get(ev.user_id)
            if group is None:
                group = out.groups[ev.user_id] = []
                if dedupe:
                    out.digests[ev.user_id] = []
            group.append(ev)
            if dedupe:  # the validated document when validate kept one (expanded), else the decoded one
                out.digests[ev.user_id].append(content_digest(ev, ev.doc if ev.doc is not None else doc))
            if out.newest_ts is None or ev.ts > out.newest_ts:
                out.newest_ts = ev.ts
        if unknown:
            self._count_unknown(unknown)
        return out

    def _resolve(self, ev: Event, ref: Any) -> bool:
        """Resolve an event's user id that is not a person id through the staff directory's aliases
        (detectors/identity.py): ``user_id`` becomes the person id and the id the source gave is kept
        in ``identity_alias`` (and in the document: ``user.id`` rewritten, ``custodes.identity.alias``).
        False when the directory does not know the id: the event goes on under the id as given."""
        alias = ev.user_id
        person = ref.identities.resolve(alias)
        if person is None:
            return False
        if person == alias:
            return True
        ev.user_id = person
        ev.identity_alias = alias
        doc = ev.doc
        if doc is None and ev.raw is not None:  # a closed document kept as text: decoded to be rewritten
            doc = ev.doc = orjson.loads(ev.raw)
            ev.raw = None
        if doc is not None:
            user = doc.get("user")
            if type(user) is not dict:
                user = doc["user"] = {}
            user["id"] = person
            custodes = doc.get("custodes")
            if type(custodes) is not dict:
                custodes = doc["custodes"] = {}
            identity = custodes.get("identity")
            if type(identity) is not dict:
                identity = custodes["identity"] = {}
            identity["alias"] = alias
        return True

    def _source_label(self, ev: Event) -> str:
        """A bounded label for an event's source: the activity table's dataset label (a document kept
        only as text, being closed, names no dataset: ``unknown``)."""
        doc = ev.doc
        return self.activities.dataset_label(doc) if self.activities is not None and doc else "unknown"

    def _count_unknown(self, unknown: dict[str, int]) -> None:
        """Ids neither a person id nor an alias of the loaded directory, per source: counted (once per
        message, not per event), never silently taken for new people."""
        total = self.unknown_identities
        for label, n in unknown.items():
            total[label] = total.get(label, 0) + n
            if self.metrics is not None:
                self.metrics.unknown_identities.labels(label).inc(n)

    def _derive_activity(self, ev: Event) -> None:
        """An event without ``custodes.activity``: its activity from the table (ECS event.category,
        event.type, event.action, dataset); none matching -> still ``other``, counted per dataset."""
        doc = ev.doc
        if doc is None:  # a closed document kept as text: only event.action/outcome could match
            if ev.raw is None or b'"activity"' in ev.raw:
                return
            doc = orjson.loads(ev.raw) if ev.action is not None else {}
        custodes = doc.get("custodes")
        if isinstance(custodes, dict) and custodes.get("activity") is not None:
            return  # the source said "other"
        assert self.activities is not None
        kind = self.activities.classify(doc)
        if kind is not None:
            ev.kind = kind
            return
        label = self.activities.dataset_label(doc)
        self.unclassified[label] = self.unclassified.get(label, 0) + 1
        if self.metrics is not None:
            self.metrics.unclassified.labels(label).inc()

    # -- detectors against state ----------------------------------------------------------------

    def apply(
        self,
        user: str,
        events: list[Event],
        stored: bytes | None,
        source: str,
        partition: int,
        offset: int,
        line: int = 0,
        digests: list[bytes] | None = None,
    ) -> Applied:
        """Run one user's events from message (source, partition, offset[, line]) against their state.

        ``line`` distinguishes events re-keyed from one message: their position is where they came from
        (origin partition, offset, line), so copies re-sent after a crash are recognised by position.
        ``digests``: the events' content digests (``Split.digests``), computed here when not given."""
        return self.apply_segments(user, [Segment(source, partition, offset, line, events, digests=digests)],
                                   stored)

    def apply_segments(self, user: str, segments: Sequence[Segment], stored: bytes | None,
                       live: dict[str, Any] | None = None) -> Applied:
        """Run one user's events from several messages (in arrival order) against their state, as one
        batch: the detectors give the same alert ids and counts however a stream is cut into batches
        (docs/worker.md, "Micro-batch cuts", says where the content still differs), so a micro-batch
        of many messages is run once per user. A segment at or below the position the
        state records for its source is a redelivery and is skipped; the state records the last
        position applied per source.

        ``live``: ``stored`` already decoded (kept from an earlier micro-batch, stream/worker/live.py),
        used instead of decoding it again, and updated in place. ``Applied.live`` is the object the
        returned state is the encoding of."""
        wrapper: dict[str, Any] = live if live is not None else orjson.loads(stored) if stored else {}
        positions: dict[str, list[int]] = dict(wrapper.get("o") or {})
        fresh: list[Event] = []
        fresh_digests: list[bytes | None] = []
        redelivered = 0
        for seg in segments:
            seen = positions.get(seg.source)
            if (seen is not None and seen[0] == seg.partition
                    and (seg.offset, seg.line) <= (seen[1], seen[2] if len(seen) > 2 else 0)):
                redelivered += 1
                continue
            positions[seg.source] = [seg.partition, seg.offset, seg.line] if seg.line else [seg.partition, seg.offset]
            fresh.extend(seg.events)
            fresh_digests.extend(seg.digests if seg.digests is not None else [None] * len(seg.events))
        if redelivered == len(segments):  # the state is unchanged (``positions`` is a copy)
            return Applied(stored, [], [], redelivered=redelivered, live=wrapper if stored else None)
        events = fresh
        keep = self.settings.dedupe_events
        duplicates = 0
        if keep:
            # "x" (digests of event ids, before content digests) cannot be compared with content
            # digests: dropped, so a copy of an event seen before the upgrade counts once more
            wrapper.pop("x", None)
            recent = _recent_digests(wrapper.get("y"))
            fresh = []
            for ev, digest in zip(events, fresh_digests, strict=True):
                if digest is None:
                    digest = content_digest(ev)
                if _has_digest(recent, digest):
                    duplicates += 1
                    continue
                recent += digest
                fresh.append(ev)
            events = fresh
            wrapper["y"] = binascii.b2a_base64(recent[-DIGEST_BYTES * keep:], newline=False).decode()
        counted = count_days(user, wrapper.get("a"), events, self.clock(), self.settings.retention_s)
        if counted.state is None:
            wrapper.pop("a", None)
        else:
            wrapper["a"] = counted.state
        det_state, alerts, failures = self._run(user, events, wrapper.get("d"), stored)
        if det_state is None:
            # detector state expired (or never began): the position and recent ids only matter
            # together with it, so the user's entry is deleted
            return Applied(None, alerts, failures, redelivered=redelivered, duplicates=duplicates,
                           days=counted.days, late_activity=counted.late)
        wrapper["o"] = positions
        wrapper["d"] = det_state
        if events:
            newest = max(ev.ts for ev in events)
            if newest > wrapper.get("t", 0.0):
                wrapper["t"] = newest
        wrapper.pop("r", None)  # recent alerts were kept by an earlier version; no longer needed
        return Applied(owned(orjson.dumps(wrapper)), alerts, failures, redelivered=redelivered, duplicates=duplicates,
                       days=counted.days, late_activity=counted.late, live=wrapper)

    def _run(self, user: str, events: list[Event], det_state: Any, stored: bytes | None
             ) -> tuple[Any, list[Alert], list[Failure]]:
        """The engine updates ``det_state`` in place; should a detector fail, it re-runs that detector
        from the state as stored (decoded again from ``stored``), so nothing is copied up front."""

        def pristine() -> Any:
            return orjson.loads(stored).get("d") if stored else None

        return self.engine.run(user, events, det_state, pristine=pristine)

    def tick(self, user: str, stored: bytes) -> Applied:
        """Run the detectors for a user with no new events, at the clock's now: what time alone
        reveals (a leaver still in a group after their leave date). The position is unchanged."""
        wrapper: dict[str, Any] = orjson.loads(stored)
        det_state, alerts, failures = self._run(user, [], wrapper.get("d"), stored)
        if det_state is None:
            return Applied(None, alerts, failures)
        if det_state == wrapper.get("d") and not alerts:
            return Applied(stored, [], failures)
        wrapper["d"] = det_state
        return Applied(owned(orjson.dumps(wrapper)), alerts, failures)

    def stale(self, stored: bytes, now: float) -> bool:
        """True when every event behind a user's state is older than the retention window: the
        worker's sweep deletes such entries, so no state derived from expired events survives."""
        newest = orjson.loads(stored).get("t")
        return newest is not None and newest < now - self.settings.retention_s

    def segment_failure_letters(self, failures: list[Failure], segments: Sequence[Segment]) -> list[DeadLetter]:
        """Dead letters for the events a detector failed on, each with the message that carried it."""
        if not failures:
            return []
        where = {id(ev): seg.message for seg in segments for ev in seg.events}
        return [letter for f in failures for letter in self.failure_letters([f], *where[id(f.event)])]

    def failure_letters(self, failures: list[Failure], topic: str, partition: int, offset: int
                        ) -> list[DeadLetter]:
        return [
            DeadLetter(f.event.raw if f.event.raw is not None else orjson.dumps(f.event.document), "detector_failed",
                       f"detector {f.detector} raised {f.error.split(':')[0]}",
                       topic, partition, offset, 0, f.detector)
            for f in failures
        ]
