"""``custodes deadletters``: read the dead-letter topic back, for people fixing a source.

Each dead letter is the bad input as it arrived (cut at ``dead_letter_max_bytes``) with headers saying
why (``custodes.reason``, ``custodes.detail``), where it was refused (``custodes.field``, the field
path) and where it came from (the input topic, partition, offset and line, or the file and line
``custodes ingest`` read). The input is personal data, so what is shown of it is *redacted*: the JSON
structure with every key, but each string replaced by its length and each number by ``#``; input that
is not JSON shows its punctuation with letters and digits masked.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

EXCERPT_CHARS = 160


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    offset: int
    reason: str
    detail: str
    field: str | None
    source: str
    excerpt: str
    at: float | None = None
    """When the dead letter was written (the record's timestamp, POSIX seconds), if known."""

    def line(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return (f"{self.partition}:{self.offset}  {self.reason}{where}  from {self.source}\n"
                f"    {self.detail}\n    {self.excerpt}")


def letter(partition: int, offset: int, value: bytes | None, headers: Iterable[tuple[str, bytes]],
           at: float | None = None) -> Letter:
    h = {k: (v or b"").decode("utf-8", "replace") for k, v in headers}
    if "custodes.source.file" in h:
        source = f"{h['custodes.source.file']}:{h.get('custodes.source.line', '?')}"
    else:
        source = (f"{h.get('custodes.source.topic', '?')} partition {h.get('custodes.source.partition', '?')} "
                  f"offset {h.get('custodes.source.offset', '?')} line {h.get('custodes.source.line', '?')}")
    if "custodes.detector" in h:
        source += f" (detector {h['custodes.detector']})"
    excerpt = redact(value or b"")
    if "custodes.truncated" in h:
        excerpt += f"  [input was {h['custodes.truncated']} bytes, cut]"
    return Letter(partition, offset, h.get("custodes.reason", "?"), h.get("custodes.detail", ""),
                  h.get("custodes.field") or None, source, excerpt, at)


def redact(raw: bytes, limit: int = EXCERPT_CHARS) -> str:
    """The shape of the input without its values (see the module docstring), at most ``limit`` chars."""
    try:
        text = orjson.dumps(_shape(orjson.loads(raw))).decode()
    except orjson.JSONDecodeError:
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(raw)} bytes, not UTF-8>"
        text = re.sub(r"[^\W_]", "x", decoded)  # letters and digits (any script) masked
    return text if len(text) <= limit else text[:limit] + "…"


def _shape(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return "…"
    if isinstance(value, dict):
        return {k: _shape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, depth + 1) for v in value[:5]] + (["…"] if len(value) > 5 else [])
    if isinstance(value, str):
        return f"<{len(value)} chars>"
    if isinstance(value, bool) or value is None:
        return value
    return "#"


def read_topic(bootstrap: str, topic: str, limit: int, reason: str | None = None,
               timeout_s: float = 3.0, scan_last: int | None = None) -> tuple[list[Letter], Counter[str]]:
    """The last ``limit`` dead letters (optionally of one reason) and the count of every reason, read
    from the start of the topic to its end (a consumer without a group: commits nothing); with
    ``scan_last``, only from each partition's last ``scan_last`` records (the counts are then of those)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=int(timeout_s * 1000), client_id="custodes-deadletters")
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return [], Counter()
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        if scan_last is not None:
            begin = consumer.beginning_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(begin[tp], end[tp] - scan_last))
        kept: deque[Letter] = deque(maxlen=max(limit, 0) or None)
        counts: Counter[str] = Counter()
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for tp, records in batch.items():
                for rec in records:
                    one = letter(rec.partition, rec.offset, rec.value, rec.headers or [],
                                 rec.timestamp / 1000 if rec.timestamp and rec.timestamp > 0 else None)
                    counts[one.reason] += 1
                    if reason is None or one.reason == reason:
                        kept.append(one)
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return list(kept) if limit > 0 else [], counts
    finally:
        consumer.close()
