"""``custodes ingest``: normalise files and produce canonical events to Kafka (kafka-python).

Events are packed per home partition of their user (up to ``ingest_batch_events`` events and
``ingest_batch_max_bytes`` bytes per message, newline-delimited), so the worker needs no repartition
hop: the person's, when the staff directory (``reference_dir``) knows the id as an alias (the worker
resolves it again at decode; ids it does not know are counted in the summary). A record that cannot be
normalised goes straight to the dead-letter topic with its reason, like the worker's rejects: nothing is
dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaProducer

from stream.contract.partitioning import home_partition
from stream.contract.settings import Settings
from stream.contract.topics import ensure_topics
from stream.sources.summary import Summary
from stream.worker.microbatch import cut_for_dead_letter


@dataclass
class IngestCounts:
    records: int = 0
    events: int = 0
    messages: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    summary: Summary = field(default_factory=Summary)
    """Events by source and activity (as the worker's activity table will classify them), first places
    of each dead-letter reason."""


def ingest(
    settings: Settings,
    paths: Iterable[Path],
    fmt: str = "auto",
    mapping: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestCounts:
    from stream.detection.reference import load_dir
    from stream.sources.activities import load as load_activities
    from stream.sources.file_records import canonical_bytes
    from stream.sources.files import read

    table = load_activities(settings.activities_file) if settings.activities_file is not None else None
    directory = load_dir(settings.reference_dir)
    staff = directory.staff
    identities = directory.identities if staff else None

    bootstrap = settings.broker or ""
    ensure_topics(settings, bootstrap)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        linger_ms=20,
        compression_type=None,
        max_request_size=16 * 1024 * 1024,
        client_id="custodes-ingest",
    )
    topic = settings.topics.events
    partitions = len(producer.partitions_for(topic) or ()) or settings.partitions
    counts = IngestCounts()
    pending: dict[int, list[bytes]] = {}
    pending_bytes: dict[int, int] = {}
    max_bytes = settings.ingest_batch_max_bytes
    newest: dict[int, float] = {}
    futures = []

    def flush(p: int) -> None:
        lines = pending.pop(p, None)
        pending_bytes.pop(p, None)
        if lines:
            # the message's timestamp is its newest event's time, so the broker's time-based
            # retention drops it once every event in it is past the window
            stamp = newest.pop(p, None)
            futures.append(producer.send(topic, value=b"\n".join(lines), partition=p,
                                         timestamp_ms=int(stamp * 1000) if stamp else None))
            counts.messages += 1

    def dead_letter(source: Path, line: int, raw: bytes, reason: str, detail: str,
                    field_path: str | None = None) -> None:
        counts.dead_lettered[reason] += 1
        counts.summary.dead(reason, f"{source}:{line}", field_path)
        value, cut = cut_for_dead_letter(raw, settings.dead_letter_max_bytes)
        futures.append(producer.send(
            settings.topics.dead_letter,
            value=value,
            headers=[
                ("custodes.reason", reason.encode()),
                ("custodes.detail", detail.encode()),
                ("custodes.source.file", str(source).encode()),
                ("custodes.source.line", str(line).encode()),
                *([("custodes.field", field_path.encode())] if field_path else []),
                *cut,
            ],
        ))

    try:
        for path in paths:
            for record in read(path, fmt=fmt, mapping=mapping, org_domains=settings.internal_domains):
                counts.records += 1
                if progress is not None:
                    progress(len(record.raw) + 1)
                if record.error is not None:
                    dead_letter(path, record.line, record.raw, record.error.reason, record.error.detail,
                                record.error.field)
                    continue
                _count(counts.summary, table, record.doc)
                line = canonical_bytes(record.doc)
                if len(line) > max_bytes:
                    dead_letter(path, record.line, record.raw, "event_too_large",
                                f"event is {len(line)} bytes, more than ingest_batch_max_bytes ({max_bytes})")
                    continue
                user = _user_of(record.doc)
                if user and identities is not None and user not in staff:
                    person = identities.resolve(user)
                    if person is None:
                        label = table.dataset_label(record.doc) if table is not None else "unknown"
                        counts.summary.unknown_identities[label] += 1
                    else:
                        user = person  # the worker would re-key it there: send it there
                p = home_partition(user, partitions) if user else 0
                if pending_bytes.get(p, 0) + len(line) + 1 > max_bytes:
                    flush(p)  # the next line would make the message too big for the broker
                batch = pending.setdefault(p, [])
                batch.append(line)
                pending_bytes[p] = pending_bytes.get(p, 0) + len(line) + 1
                ts = _time_of(record.doc)
                if ts is not None and ts > newest.get(p, 0.0):
                    newest[p] = ts
                counts.events += 1
                if len(batch) >= settings.ingest_batch_events:
                    flush(p)
                if len(futures) > 10_000:
                    for f in futures:
                        f.get(timeout=60)
                    futures.clear()
        for p in list(pending):
            flush(p)
        producer.flush()
        for f in futures:
            f.get(timeout=60)  # raises if the broker refused anything
    finally:
        producer.close()
    return counts


def _count(summary: Summary, table, doc: dict) -> None:
    """Count an event by source and by the activity the worker will give it."""
    from stream.contract.codec import lookup

    kind = lookup(doc, "custodes.activity")
    if not isinstance(kind, str) or not kind:
        kind = table.classify(doc) if table is not None else None
        if kind is None:
            kind = "other"
            if table is not None:
                summary.unclassified[table.dataset_label(doc)] += 1
    summary.event(doc, kind)


def _time_of(doc: dict) -> float | None:
    from stream.contract.codec import Invalid, lookup, parse_timestamp

    try:
        return parse_timestamp(lookup(doc, "@timestamp"))
    except Invalid:
        return None  # the worker dead-letters it with the reason


def _user_of(doc: dict) -> str | None:
    from stream.contract.codec import lookup

    for path in ("user.id", "user.name"):
        value = lookup(doc, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None
