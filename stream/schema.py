"""Canonical audit event schema, version 1: validation of a decoded JSON document into an Event.

Field names follow the Elastic Common Schema wherever ECS has one, so ECS JSON shipped by Beats is
accepted as it is (nested objects or dotted keys); what ECS lacks lives under ``custodes.*``. The JSON
Schema in ``stream/schemas/audit-event-1.json`` documents the same contract. Every rejection carries
one of :data:`REASONS` (a bounded set, safe as a metric label) and a precise detail that names the
field but never echoes its value.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES, Event

SCHEMA_VERSION = 1

REASONS = (
    "not_utf8",
    "invalid_json",
    "not_an_object",
    "event_too_large",
    "too_deeply_nested",
    "missing_user",
    "missing_timestamp",
    "bad_timestamp",
    "timestamp_without_timezone",
    "timestamp_in_future",
    "wrong_type",
    "bad_value",
    "oversized_field",
    "unsupported_version",
    "detector_failed",
    "unroutable",
)
"""Why an event was dead-lettered. Used as the ``reason`` metric label and dead-letter header."""


class Invalid(Exception):
    """An event that cannot be processed. ``reason`` is one of REASONS; ``detail`` is for people."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int = 1_048_576
    max_string_chars: int = 1024
    max_content_chars: int = 65_536
    max_list_items: int = 10_000
    max_depth: int = 16


DEFAULT_LIMITS = Limits()

_MISSING = object()


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    """``user.id`` from ``{"user": {"id": …}}`` or from a dotted key ``{"user.id": …}`` (ECS allows both)."""
    value = doc.get(path, _MISSING)
    if value is not _MISSING:
        return value
    node: Any = doc
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return _MISSING
        if part in node:
            node = node[part]
            continue
        rest = ".".join(parts[i:])
        return node.get(rest, _MISSING)
    return node


def _str(doc: Mapping[str, Any], path: str, limit: int) -> str | None:
    value = lookup(doc, path)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("wrong_type", f"{path} must be a string")
    value = str(value)
    if len(value) > limit:
        raise Invalid("oversized_field", f"{path} is longer than {limit} characters")
    return value


def _int(doc: Mapping[str, Any], path: str) -> int | None:
    value = lookup(doc, path)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("wrong_type", f"{path} must be an integer")
    if value < 0 or value > 10**12:
        raise Invalid("bad_value", f"{path} must be between 0 and 10^12")
    return value


def _float(doc: Mapping[str, Any], path: str, lo: float, hi: float) -> float | None:
    value = lookup(doc, path)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("wrong_type", f"{path} must be a number")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid("bad_value", f"{path} must be between {lo} and {hi}")
    return float(value)


def _str_list(doc: Mapping[str, Any], path: str, limits: Limits) -> tuple[str, ...]:
    value = lookup(doc, path)
    if value is _MISSING or value is None:
        return ()
    if isinstance(value, str):
        value = [value]  # ECS keyword fields may hold one value or an array of them
    if not isinstance(value, list):
        raise Invalid("wrong_type", f"{path} must be a list of strings")
    if len(value) > limits.max_list_items:
        raise Invalid("oversized_field", f"{path} has more than {limits.max_list_items} items")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise Invalid("wrong_type", f"{path} must be a list of strings")
        item = str(item)
        if len(item) > limits.max_string_chars:
            raise Invalid("oversized_field", f"an item of {path} is longer than {limits.max_string_chars}")
        out.append(item)
    return tuple(out)


def parse_timestamp(value: Any, path: str = "@timestamp") -> float:
    """ISO 8601 with a UTC offset (``Z`` or ``±hh:mm``) -> POSIX seconds."""
    if value is _MISSING or value is None:
        raise Invalid("missing_timestamp", f"{path} is required")
    if not isinstance(value, str):
        raise Invalid("wrong_type", f"{path} must be an ISO 8601 string with a timezone")
    if len(value) > 64:
        raise Invalid("oversized_field", f"{path} is longer than 64 characters")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("bad_timestamp", f"{path} is not an ISO 8601 date-time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise Invalid("timestamp_without_timezone", f"{path} has no timezone offset")
    return when.timestamp()


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return True


def decode(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Bytes of one JSON event -> a dict, or Invalid with the reason."""
    if len(raw) > limits.max_event_bytes:
        raise Invalid("event_too_large", f"event is {len(raw)} bytes, limit {limits.max_event_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower() or "surrogates" in str(exc).lower():
            raise Invalid("not_utf8", "event is not valid UTF-8") from None
        raise Invalid("invalid_json", f"not valid JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(doc, dict):
        raise Invalid("not_an_object", f"event is a JSON {type(doc).__name__}, not an object")
    return doc


def validate(doc: dict[str, Any], raw: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Event:
    """A decoded document -> Event, or Invalid with the first problem found."""
    if not _depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")
    version = lookup(doc, "custodes.schema_version")
    if version is not _MISSING and version != SCHEMA_VERSION:
        raise Invalid("unsupported_version", f"custodes.schema_version must be {SCHEMA_VERSION}")
    ts = parse_timestamp(lookup(doc, "@timestamp"))
    user_id = _str(doc, "user.id", limits.max_string_chars)
    user_name = _str(doc, "user.name", limits.max_string_chars)
    if not user_id:
        if not user_name:
            raise Invalid("missing_user", "user.id (or user.name) is required")
        user_id = user_name
    kind = _str(doc, "custodes.activity", 32) or "other"
    if kind not in ACTIVITY_KINDS:
        raise Invalid("bad_value", "custodes.activity is not a known activity kind")
    sensitivity = _str(doc, "custodes.dataset.sensitivity", 16)
    if sensitivity is not None and sensitivity not in SENSITIVITIES:
        raise Invalid("bad_value", f"custodes.dataset.sensitivity must be one of {', '.join(SENSITIVITIES)}")
    event_id = _str(doc, "event.id", limits.max_string_chars)
    if not event_id:
        basis = raw if raw is not None else orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        event_id = "sha-" + hashlib.blake2b(basis, digest_size=12).hexdigest()
    lat = _float(doc, "source.geo.location.lat", -90, 90)
    lon = _float(doc, "source.geo.location.lon", -180, 180)
    if (lat is None) != (lon is None):
        raise Invalid("bad_value", "source.geo.location needs both lat and lon")
    content = _str(doc, "message", limits.max_content_chars)
    media = lookup(doc, "custodes.media")
    if media is _MISSING or media is None:
        media = ()
    elif not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
        raise Invalid("wrong_type", "custodes.media must be a list of objects")
    elif len(media) > 100:
        raise Invalid("oversized_field", "custodes.media has more than 100 items")
    s = limits.max_string_chars
    return Event(
        id=event_id,
        ts=ts,
        user_id=user_id,
        kind=kind,
        action=_str(doc, "event.action", s),
        outcome=_str(doc, "event.outcome", 32),
        user_name=user_name,
        host_id=_str(doc, "host.id", s),
        record_ids=_str_list(doc, "custodes.record.ids", limits),
        record_count=_int(doc, "custodes.record.count"),
        dataset=_str(doc, "custodes.dataset.name", s),
        sensitivity=sensitivity,
        case_ref=_str(doc, "custodes.case.ref", s),
        recipient_party=_str(doc, "custodes.recipient.party", s),
        destination_domain=_str(doc, "destination.domain", s),
        email_to=_str_list(doc, "email.to.address", limits),
        url_domain=_str(doc, "url.domain", s),
        file_name=_str(doc, "file.name", s),
        channel=_str(doc, "custodes.channel", 64),
        app_id=_str(doc, "custodes.application.id", s),
        policy_set=_str(doc, "custodes.policy_set", s),
        group_id=_str(doc, "custodes.group.id", s),
        min_group_size=_int(doc, "custodes.aggregate.min_group_size"),
        lat=lat,
        lon=lon,
        content=content,
        media=tuple(media),
        doc=doc,
    )


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Event:
    return validate(decode(raw, limits), raw, limits)
