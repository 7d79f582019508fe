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
    if isinstance(doc, dict) and _has_dots(doc):
        return _get(_expand(doc), tuple(path.split(".")))
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


def _get(node: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if type(node) is not dict:
            return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def _expand(doc: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (``{"user.id": …}``, allowed by ECS) turned into nested objects, recursively."""
    out: dict[str, Any] = {}
    ordered = sorted(doc.items(), key=lambda kv: "." in kv[0] and kv[0] != "@timestamp")
    for key, value in ordered:
        if type(value) is dict:
            value = _expand(value)
        if "." in key and key != "@timestamp":
            parts = key.split(".")
            node = out
            for part in parts[:-1]:
                child = node.get(part)
                if type(child) is not dict:
                    child = node[part] = {}
                node = child
            leaf = node.get(parts[-1])
            if type(leaf) is dict and type(value) is dict:
                leaf.update(value)
            else:
                node[parts[-1]] = value
        elif type(out.get(key)) is dict:
            if type(value) is dict:
                out[key].update(value)
            # else: a dotted key already gave this an object; the dotted key wins
        else:
            out[key] = value
    return out


def _has_dots(doc: dict[str, Any]) -> bool:
    stack = [doc]
    while stack:
        node = stack.pop()
        for key, value in node.items():
            if "." in key:
                return True
            if type(value) is dict:
                stack.append(value)
    return False


def _str_value(value: Any, path: str, limit: int) -> str | None:
    if value is _MISSING or value is None:
        return None
    t = type(value)
    if t is not str:
        if t is not int:
            raise Invalid("wrong_type", f"{path} must be a string")
        if not -(2**63) <= value < 2**64:
            raise Invalid("bad_value", f"{path} is a number too large to be an identifier")
        value = str(value)
    if len(value) > limit:
        raise Invalid("oversized_field", f"{path} is longer than {limit} characters")
    return value


def _int_value(value: Any, path: str) -> int | None:
    if value is _MISSING or value is None:
        return None
    if type(value) is not int:
        raise Invalid("wrong_type", f"{path} must be an integer")
    if value < 0 or value > 10**12:
        raise Invalid("bad_value", f"{path} must be between 0 and 10^12")
    return value


def _float_value(value: Any, path: str, lo: float, hi: float) -> float | None:
    if value is _MISSING or value is None:
        return None
    if type(value) not in (int, float):
        raise Invalid("wrong_type", f"{path} must be a number")
    if not lo <= value <= hi or not math.isfinite(value):
        raise Invalid("bad_value", f"{path} must be between {lo} and {hi}")
    return float(value)


def _str_list_value(value: Any, path: str, limits: Limits) -> tuple[str, ...]:
    if value is _MISSING or value is None:
        return ()
    if type(value) is str:
        value = [value]  # ECS keyword fields may hold one value or an array of them
    if type(value) is not list:
        raise Invalid("wrong_type", f"{path} must be a list of strings")
    if len(value) > limits.max_list_items:
        raise Invalid("oversized_field", f"{path} has more than {limits.max_list_items} items")
    out = []
    for item in value:
        t = type(item)
        if t is not str:
            if t is not int:
                raise Invalid("wrong_type", f"{path} must be a list of strings")
            if not -(2**63) <= item < 2**64:
                raise Invalid("bad_value", f"an item of {path} is a number too large to be an identifier")
            item = str(item)
        if len(item) > limits.max_string_chars:
            raise Invalid("oversized_field", f"an item of {path} is longer than {limits.max_string_chars}")
        out.append(item)
    return tuple(out)


def _str(doc: Mapping[str, Any], path: str, limit: int) -> str | None:
    """One string field of a document (for normalisers and ingest; validate reads fields directly)."""
    return _str_value(lookup(doc, path), path, limit)


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
        text = str(exc).lower()
        if "utf-8" in text or "surrogates" in text:
            raise Invalid("not_utf8", "event is not valid UTF-8") from None
        if "recursion" in text:
            raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels") from None
        raise Invalid("invalid_json", f"not valid JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(doc, dict):
        raise Invalid("not_an_object", f"event is a JSON {type(doc).__name__}, not an object")
    return doc


_FIELDS: tuple[tuple[str, tuple[str, ...], str, int | None], ...] = (
    # (Event attribute, path, kind, string limit: None -> limits.max_string_chars)
    ("action", ("event", "action"), "str", None),
    ("outcome", ("event", "outcome"), "str", 32),
    ("host_id", ("host", "id"), "str", None),
    ("record_ids", ("custodes", "record", "ids"), "list", None),
    ("record_count", ("custodes", "record", "count"), "int", None),
    ("dataset", ("custodes", "dataset", "name"), "str", None),
    ("case_ref", ("custodes", "case", "ref"), "str", None),
    ("recipient_party", ("custodes", "recipient", "party"), "str", None),
    ("destination_domain", ("destination", "domain"), "str", None),
    ("email_to", ("email", "to", "address"), "list", None),
    ("url_domain", ("url", "domain"), "str", None),
    ("file_name", ("file", "name"), "str", None),
    ("channel", ("custodes", "channel"), "str", 64),
    ("app_id", ("custodes", "application", "id"), "str", None),
    ("policy_set", ("custodes", "policy_set"), "str", None),
    ("group_id", ("custodes", "group", "id"), "str", None),
    ("min_group_size", ("custodes", "aggregate", "min_group_size"), "int", None),
)
_SPEC: dict[str, Any] = {}
"""_FIELDS as a tree: {"custodes": {"record": {"count": (attr, kind, limit, path)}}}."""
for _attr, _parts, _kind, _limit in _FIELDS:
    _node = _SPEC
    for _part in _parts[:-1]:
        _node = _node.setdefault(_part, {})
    _node[_parts[-1]] = (_attr, _kind, _limit, ".".join(_parts))

def _walk(node: dict[str, Any], spec: dict[str, Any], prefix: str, values: dict[str, Any], limits: Limits) -> None:
    """Read the fields of ``spec`` that ``node`` has (only present keys are visited)."""
    for key, value in node.items():
        sub = spec.get(key)
        if sub is None or value is None:
            continue
        if type(sub) is dict:
            if type(value) is not dict:
                raise Invalid("wrong_type", f"{prefix}{key} must be an object")
            _walk(value, sub, f"{prefix}{key}.", values, limits)
            continue
        attr, kind, limit, path = sub
        if kind == "str":
            values[attr] = _str_value(value, path, limit or limits.max_string_chars)
        elif kind == "int":
            values[attr] = _int_value(value, path)
        else:
            values[attr] = _str_list_value(value, path, limits)


FIELD_PATHS: tuple[str, ...] = (
    "@timestamp", "user.id", "user.name", "event.id", "custodes.schema_version", "custodes.activity",
    "custodes.dataset.sensitivity", "source.geo.location.lat", "source.geo.location.lon", "message",
    "custodes.media", *(".".join(parts) for _, parts, _, _ in _FIELDS),
)
"""Every field validate() reads (the JSON Schema documents each of them)."""


def validate(doc: dict[str, Any], raw: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Event:
    """A decoded document -> Event, or Invalid with the first problem found.

    ECS dotted keys (``{"user.id": …}``) are expanded into nested objects first, at any level.
    """
    # a document cannot nest deeper than its count of '{' and '[': walk it only when it could
    could_be_deep = raw is None or raw.count(b"{") + raw.count(b"[") > limits.max_depth
    if could_be_deep and not _depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")
    if _has_dots(doc):
        doc = _expand(doc)
    custodes = doc.get("custodes")
    if custodes is not None and type(custodes) is not dict:
        raise Invalid("wrong_type", "custodes must be an object")
    if custodes:
        version = custodes.get("schema_version", _MISSING)
        if version is not _MISSING and (type(version) is not int or version != SCHEMA_VERSION):
            raise Invalid("unsupported_version", f"custodes.schema_version must be {SCHEMA_VERSION}")
    ts = parse_timestamp(doc.get("@timestamp", _MISSING))
    s = limits.max_string_chars
    user = doc.get("user")
    user_id = user_name = None
    if type(user) is dict:
        user_id = _str_value(user.get("id", _MISSING), "user.id", s)
        user_name = _str_value(user.get("name", _MISSING), "user.name", s)
    elif user is not None:
        raise Invalid("wrong_type", "user must be an object")
    if not user_id:
        if not user_name:
            raise Invalid("missing_user", "user.id (or user.name) is required")
        user_id = user_name
    kind = "other"
    sensitivity = None
    if custodes:
        kind = _str_value(custodes.get("activity", _MISSING), "custodes.activity", 32) or "other"
        if kind not in ACTIVITY_KINDS:
            raise Invalid("bad_value", "custodes.activity is not a known activity kind")
        sensitivity = _str_value(_get(custodes, ("dataset", "sensitivity")), "custodes.dataset.sensitivity", 16)
        if sensitivity is not None and sensitivity not in SENSITIVITIES:
            raise Invalid("bad_value",
                          f"custodes.dataset.sensitivity must be one of {', '.join(SENSITIVITIES)}")
    event = doc.get("event")
    if event is not None and type(event) is not dict:
        raise Invalid("wrong_type", "event must be an object")
    event_id = _str_value(event.get("id", _MISSING), "event.id", s) if event else None
    if not event_id:
        try:
            basis = raw if raw is not None else orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # only reachable from callers that build documents in Python
            raise Invalid("bad_value", "event holds a number outside the 64-bit range") from None
        event_id = "sha-" + hashlib.blake2b(basis, digest_size=12).hexdigest()
    values: dict[str, Any] = {}
    _walk(doc, _SPEC, "", values, limits)
    lat = lon = None
    location = _get(doc, ("source", "geo", "location"))
    if location is not _MISSING and location is not None:
        if type(location) is not dict:
            raise Invalid("wrong_type", "source.geo.location must be an object with lat and lon")
        lat = _float_value(location.get("lat", _MISSING), "source.geo.location.lat", -90, 90)
        lon = _float_value(location.get("lon", _MISSING), "source.geo.location.lon", -180, 180)
        if (lat is None) != (lon is None):
            raise Invalid("bad_value", "source.geo.location needs both lat and lon")
    content = _str_value(doc.get("message", _MISSING), "message", limits.max_content_chars)
    media: Any = custodes.get("media") if custodes else None
    if media is None:
        media = ()
    elif type(media) is not list or not all(type(m) is dict for m in media):
        raise Invalid("wrong_type", "custodes.media must be a list of objects")
    elif len(media) > 100:
        raise Invalid("oversized_field", "custodes.media has more than 100 items")
    return Event(
        id=event_id,
        ts=ts,
        user_id=user_id,
        kind=kind,
        user_name=user_name,
        sensitivity=sensitivity,
        lat=lat,
        lon=lon,
        content=content,
        media=tuple(media),
        doc=doc,
        **values,
    )


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Event:
    return validate(decode(raw, limits), raw, limits)
