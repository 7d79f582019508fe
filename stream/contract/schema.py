"""Canonical audit event schema, version 1: validation of a decoded JSON document into an Event.

Field names follow the Elastic Common Schema wherever ECS has one, so ECS JSON shipped by Beats is
accepted as it is (nested objects or dotted keys); what ECS lacks lives under ``custodes.*``. The JSON
Schema in ``stream/contract/schemas/audit-event-1.json`` documents the same contract. Every rejection carries
one of :data:`REASONS` (a bounded set, safe as a metric label) and a precise detail that names the
field but never echoes its value.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

import orjson

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES, SHARE_VISIBILITIES, Event

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
    "control_character",
)
"""Why an event was dead-lettered. Used as the ``reason`` metric label and dead-letter header."""


class Invalid(Exception):
    """An event that cannot be processed. ``reason`` is one of REASONS; ``detail`` is for people."""

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field if field is not None else _field_of(detail)
        """The field path the problem is at (``user.id``, ``Parameters[2].Value``), when known."""


_FIELD_AT_START = re.compile(r"^(?:an item of )?(@timestamp|[A-Za-z_][A-Za-z0-9_@-]*(?:\.[A-Za-z0-9_@-]+)+)\b")


def _field_of(detail: str) -> str | None:
    """The dotted field path a detail starts with (``user.id must be a string``), else None."""
    match = _FIELD_AT_START.match(detail)
    return match.group(1) if match else None


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
    """Dotted keys (``{"user.id": …}``, allowed by ECS) turned into nested objects, recursively.

    The plain keys are placed first, in order, then the dotted ones, in order: a dotted key merges into
    the object a plain key gave (``{"a": {…}, "a.b": …}``) and replaces anything else on its path.
    """
    out: dict[str, Any] = {}
    dotted = []
    for key, value in doc.items():
        if type(value) is dict:
            value = _expand(value)
        if "." in key:
            dotted.append((key, value))
        else:
            out[key] = value  # keys are unique, so nothing is there yet
    for key, value in dotted:
        parents = key.split(".")
        last = parents.pop()
        node = out
        for part in parents:
            child = node.get(part)
            if type(child) is not dict:
                child = node[part] = {}
            node = child
        leaf = node.get(last)
        if type(leaf) is dict and type(value) is dict:
            leaf.update(value)
        else:
            node[last] = value
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


def _could_be_too_deep(raw: bytes | None, limit: int) -> bool:
    """False when ``raw``, the JSON text of the document, proves it nests at most ``limit`` levels.

    Exact: each level is an object or array, opened by a ``{`` or ``[`` in the text (those inside strings
    only add to the count), so a text with at most ``limit`` of them cannot nest deeper.
    """
    return raw is None or raw.count(b"{") + raw.count(b"[") > limit


_DOTTED_KEY_END = re.compile(rb'\.[^".]*+"\s*+:')
"""In JSON text without escapes: the last ``.`` of a key, the rest of the key and the ``:`` after it."""


def _could_have_dotted_keys(raw: bytes | None) -> bool:
    """False when ``raw``, the JSON text of the document, proves that no key (at any level) holds a ``.``.

    Exact: a ``.`` in a decoded key is a ``.`` byte in the text or an escape (``\\u002e``), so a text
    without backslashes (no escapes) has a dotted key only where it has a ``.`` byte. Then the last ``.``
    of such a key is followed by the rest of the key (no ``"`` or ``.``), its closing quote, whitespace and
    ``:``, which _DOTTED_KEY_END finds. A match elsewhere (a ``.`` in a number followed by a string that
    starts with ``:``) only sends the document to _has_dots, which decides. Each attempt stops at the
    next ``.`` or ``"`` and never backtracks, so the search is linear in the length of the text.
    """
    if raw is None or 92 in raw:  # 92 is "\\": escapes, so only walking the document can tell
        return True
    return 46 in raw and _DOTTED_KEY_END.search(raw) is not None  # 46 is "."


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


def check_depth(doc: Any, raw: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
    """Invalid(``too_deeply_nested``) when ``doc`` (decoded from ``raw``, if given) nests deeper than the
    limit: for readers that pass a document on without validating it, since encoding it again fails
    (orjson refuses deep nesting) where validation would have rejected it."""
    if _could_be_too_deep(raw, limits.max_depth) and not _depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")


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
    ("action", ("event", "action"), "str1", None),  # ECS allows an array (auditd writes one): its first item
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
    ("object_id", ("custodes", "object", "id"), "str", None),
    ("share_visibility", ("custodes", "share", "visibility"), "visibility", 16),
    ("file_extension", ("file", "extension"), "extension", None),
    ("attachment_count", ("email", "attachments"), "objects", None),
    ("identity_alias", ("custodes", "identity", "alias"), "str", None),
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
        elif kind == "str1":
            items = _str_list_value(value, path, limits)
            values[attr] = items[0] if items else None
        elif kind == "int":
            values[attr] = _int_value(value, path)
        elif kind == "visibility":
            visibility = _str_value(value, path, limit or limits.max_string_chars)
            if visibility not in _SHARE_VISIBILITIES:
                raise Invalid("bad_value", f"{path} must be one of {', '.join(SHARE_VISIBILITIES)}")
            values[attr] = visibility
        elif kind == "extension":  # ECS: without the dot; lower-cased so .PDF and pdf compare equal
            values[attr] = _str_value(value, path, limit or limits.max_string_chars).lstrip(".").lower() or None
        elif kind == "objects":  # a list of objects, read as how many it holds
            if type(value) is not list or not all(type(item) is dict for item in value):
                raise Invalid("wrong_type", f"{path} must be a list of objects")
            if len(value) > limits.max_list_items:
                raise Invalid("oversized_field", f"{path} has more than {limits.max_list_items} items")
            values[attr] = len(value)
        else:
            values[attr] = _str_list_value(value, path, limits)


FIELD_PATHS: tuple[str, ...] = (
    "@timestamp", "user.id", "user.name", "event.id", "custodes.schema_version", "custodes.activity",
    "custodes.dataset.sensitivity", "source.geo.location.lat", "source.geo.location.lon", "message",
    "custodes.media", *(".".join(parts) for _, parts, _, _ in _FIELDS),
)
"""Every field validate() reads (the JSON Schema documents each of them)."""

_EVENT_ORDER = ("id", "ts", "user_id", "kind", "action", "outcome", "user_name", "host_id", "record_ids",
                "record_count", "dataset", "sensitivity", "case_ref", "recipient_party", "destination_domain",
                "email_to", "url_domain", "file_name", "channel", "app_id", "policy_set", "group_id",
                "min_group_size", "lat", "lon", "content", "media", "object_id", "share_visibility",
                "file_extension", "attachment_count", "identity_alias", "doc", "raw")
"""The arguments _new_event takes, in order (Event's own order, so they can be passed by position)."""

if tuple(f.name for f in dataclass_fields(Event)) == _EVENT_ORDER:
    _new_event = Event  # positional arguments: much cheaper than 28 keywords
else:  # Event has changed: name the arguments (slower, still right)
    def _new_event(*args: Any) -> Event:
        return Event(**dict(zip(_EVENT_ORDER, args, strict=True)))


def validate(doc: dict[str, Any], raw: bytes | None = None, limits: Limits = DEFAULT_LIMITS, *,
             keep_doc: bool = True) -> Event:
    """A decoded document -> Event, or Invalid with the first problem found.

    ``keep_doc=False`` (the pipeline's choice): when the document is closed (every field of it is one
    of Event's attributes) and ``raw`` is given, the Event keeps ``raw`` instead of the decoded dict
    (``Event.document`` decodes it again if ever asked).

    ECS dotted keys (``{"user.id": …}``) are expanded into nested objects first, at any level. ``raw``,
    the JSON text ``doc`` was decoded from, lets the depth and dotted-key checks skip walking the
    document when its text proves them needless, and is what a missing event id is derived from.

    Documents of the usual shape are read in one pass (_usual_event); when that pass shows the
    document is closed, it can neither nest too deeply nor hold dotted keys, so nothing else is
    checked. Every other document, and every invalid one, is read field by field by _checked_event,
    which decides which problem is reported.
    """
    try:
        event, closed = _usual_event(doc, raw, limits)
        if closed and limits.max_depth >= _CLOSED_DEPTH:
            if raw is None or _may_hold_control(raw):
                _reject_control_characters(event)
            if not keep_doc and raw is not None:  # every field is an attribute: keep the text only
                event.doc = None
                event.raw = raw
            return event
    except _Unusual:
        event = None
    if _could_be_too_deep(raw, limits.max_depth) and not _depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")
    expanded = False
    if _could_have_dotted_keys(raw) and _has_dots(doc):
        doc = _expand(doc)
        expanded = True
        try:
            event = _usual_event(doc, raw, limits)[0]
        except _Unusual:
            event = None
    if event is None:
        event = _checked_event(doc, raw, limits)
    if expanded and not _depth_ok(doc, limits.max_depth):
        # "a.b.c…" keys nest once expanded; checked last, so a field's own problem is reported first
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels once its "
                      "dotted keys are expanded")
    if raw is None or _may_hold_control(raw):
        _reject_control_characters(event)
    return event


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""A control character: C0 (U+0000-U+001F, NUL included), DEL (U+007F) or C1 (U+0080-U+009F)."""

_MAY_HOLD_CONTROL = re.compile(rb"\\(?:[bfnrt]|u00[0189][0-9A-Fa-f]|u007[Ff])|\x7f|\xc2[\x80-\x9f]")
"""In JSON text: where a decoded string could hold a control character. JSON forbids raw C0 bytes in
strings (orjson rejects them; raw tabs and newlines are only whitespace between tokens), so a control
character in a decoded string comes from an escape (``\\n``, ``\\u0000`` …), a raw DEL byte or the UTF-8
of a C1 character (0xC2 0x80-0x9F). Text with none of these holds none, and the fields need no check
(the usual case: one regex scan of the bytes). A match may be a false alarm (an escaped backslash
followed by ``n``); the fields are then checked one by one."""



def _may_hold_control(raw: bytes) -> bool:
    """False when the JSON text ``raw`` proves no string in it holds a control character (see
    _MAY_HOLD_CONTROL): three byte scans (memchr) rule out nearly every event before the regex runs."""
    return (92 in raw or 127 in raw or 194 in raw) and _MAY_HOLD_CONTROL.search(raw) is not None


_FREE_TEXT = frozenset({"content"})
"""Event attributes that are free text: they keep whatever a JSON string may hold (control characters
included; the store escapes NUL, which PostgreSQL cannot hold in text, see stream/store/alerts.py)."""

_IDENTIFIER_ATTRS = tuple(
    f.name for f in dataclass_fields(Event)
    if f.name not in _FREE_TEXT and f.type in ("str", "str | None", "tuple[str, ...]")
)
"""Every string attribute of Event other than free text: ids, actions, parties, domains, hosts, dataset
names, case refs, app and group ids, addresses, file names, channels … (fields added to Event later are
covered as well)."""
_identifier_values = operator.attrgetter(*_IDENTIFIER_ATTRS)
_ATTR_PATHS = {attr: ".".join(parts) for attr, parts, _, _ in _FIELDS} | {
    "id": "event.id", "user_id": "user.id", "user_name": "user.name", "kind": "custodes.activity",
    "sensitivity": "custodes.dataset.sensitivity"}


def _reject_control_characters(event: Event) -> None:
    """Invalid(``control_character``) when an identifier field of ``event`` holds a control character:
    an id with a NUL, a newline or an escape sequence in it cannot be stored everywhere (PostgreSQL text
    refuses NUL), is shown misleadingly to reviewers and can forge log lines."""
    search = _CONTROL.search
    for attr, value in zip(_IDENTIFIER_ATTRS, _identifier_values(event), strict=True):
        if value is None:
            continue
        if type(value) is str:
            bad = search(value) is not None
        else:
            bad = any(type(item) is str and search(item) is not None for item in value)
        if bad:
            path = _ATTR_PATHS.get(attr, attr)
            raise Invalid("control_character", f"{path} holds a control character (C0, DEL or C1)")


class _Unusual(Exception):
    """A document that _usual_event leaves to _checked_event."""


_USUAL_KINDS = frozenset(kind for kind in ACTIVITY_KINDS if len(kind) <= 32)
_USUAL_SENSITIVITIES = frozenset(level for level in SENSITIVITIES if len(level) <= 16)
_SHARE_VISIBILITIES = frozenset(SHARE_VISIBILITIES)
_CLOSED_DEPTH = 4
"""How deep a closed document (see _usual_event) can nest, counting as _depth_ok does: the document is
level 1, custodes.record.ids, email.to.address and source.geo.location are level 4."""
_fromisoformat = datetime.fromisoformat


def _usual_event(doc: dict[str, Any], raw: bytes | None, limits: Limits) -> tuple[Event, bool]:
    """The Event of a document of the usual shape, read in one pass, and whether the document is closed.

    The usual shape: user.id is a non-empty string, every other field _checked_event reads is absent,
    null or well-formed, and strings are JSON strings (not numbers). For such a document without dotted
    keys this builds exactly the Event _checked_event builds. Any other document raises _Unusual and is
    left to _checked_event, which finds its problem (or reads it, if it is merely unusual).

    Closed: every key of every object is one of the fields read here and holds a value other than null,
    and no other object or array is in the document (custodes.media holds objects, so a document with
    media is not closed). A closed document has no dotted key, since no field name has a dot, and nests
    at most _CLOSED_DEPTH levels: validate needs no other check. An object is closed when it has as many
    keys as fields found in it, so its keys need not be listed.

    The fields most events have are read inline, without helper calls, because this runs for every event;
    the others only when an object has more keys than those (_usual_custodes_rest, _usual_other_fields).
    """
    s = limits.max_string_chars
    get = doc.get
    user = get("user")
    if type(user) is not dict:
        raise _Unusual
    user_id = user.get("id")
    if type(user_id) is not str or not user_id or len(user_id) > s or user_id.isspace():
        raise _Unusual
    user_name = None
    closed = len(user) == 1
    if not closed:
        user_name = _usual_string(user.get("name"), s)
        closed = len(user) == 1 + (user_name is not None)

    stamp = get("@timestamp")
    if type(stamp) is not str or len(stamp) > 64:
        raise _Unusual
    try:
        when = _fromisoformat(stamp)
    except ValueError:
        raise _Unusual from None
    if when.tzinfo is None:  # else a datetime.timezone, whose utcoffset() is never None
        raise _Unusual
    ts = when.timestamp()

    kind = "other"
    record_ids: tuple[str, ...] = ()
    record_count = dataset = sensitivity = case_ref = None
    custodes_rest = _NO_CUSTODES_REST
    custodes = get("custodes")
    if custodes is not None:
        if type(custodes) is not dict:
            raise _Unusual
        cget = custodes.get
        found = 0
        value = cget("activity")
        if value is not None:
            if type(value) is not str:
                raise _Unusual
            if value:  # "" means "other"
                if value not in _USUAL_KINDS:
                    raise _Unusual
                kind = value
            found += 1
        node = cget("record")
        if node is not None:
            if type(node) is not dict:
                raise _Unusual
            value = node.get("ids")
            if value is not None:
                if type(value) is list and len(value) <= limits.max_list_items:
                    for item in value:
                        if type(item) is not str or len(item) > s:
                            raise _Unusual
                    record_ids = tuple(value)
                else:  # one string, or unusual
                    record_ids = _usual_strings(value, limits)
            record_count = node.get("count")
            if record_count is not None and (type(record_count) is not int or not 0 <= record_count <= 10**12):
                raise _Unusual
            closed = closed and len(node) == (value is not None) + (record_count is not None)
            found += 1
        node = cget("dataset")
        if node is not None:
            if type(node) is not dict:
                raise _Unusual
            sensitivity = node.get("sensitivity")
            if sensitivity is not None and (type(sensitivity) is not str or sensitivity not in _USUAL_SENSITIVITIES):
                raise _Unusual
            dataset = node.get("name")
            if dataset is not None and (type(dataset) is not str or len(dataset) > s):
                raise _Unusual
            closed = closed and len(node) == (sensitivity is not None) + (dataset is not None)
            found += 1
        node = cget("case")
        if node is not None:
            if type(node) is not dict:
                raise _Unusual
            case_ref = node.get("ref")
            if case_ref is not None and (type(case_ref) is not str or len(case_ref) > s):
                raise _Unusual
            closed = closed and len(node) == (case_ref is not None)
            found += 1
        if len(custodes) > found:
            custodes_rest, rest_closed = _usual_custodes_rest(custodes, found, limits)
            closed = closed and rest_closed

    action = outcome = event_id = None
    event = get("event")
    if event is not None:
        if type(event) is not dict:
            raise _Unusual
        event_id = event.get("id")
        if event_id is not None and (type(event_id) is not str or len(event_id) > s):
            raise _Unusual
        if len(event) > (event_id is not None):
            action = _usual_string(event.get("action"), s)
            outcome = _usual_string(event.get("outcome"), 32)
            closed = closed and len(event) == (event_id is not None) + (action is not None) + (outcome is not None)
    if not event_id:
        if raw is None:
            raise _Unusual  # _checked_event derives the id from the document
        event_id = "sha-" + hashlib.blake2b(raw, digest_size=12).hexdigest()

    other_fields = _NO_OTHER_FIELDS
    found = 2 + (custodes is not None) + (event is not None)  # with @timestamp and user
    if len(doc) > found:
        other_fields, other_closed = _usual_other_fields(doc, found, limits)
        closed = closed and other_closed

    (recipient_party, channel, app_id, policy_set, group_id, min_group_size, media, object_id, share_visibility,
     identity_alias) = custodes_rest
    (host_id, destination_domain, email_to, url_domain, file_name, lat, lon, content, file_extension,
     attachment_count) = other_fields
    event = _new_event(event_id, ts, user_id, kind, action, outcome, user_name, host_id, record_ids, record_count,
                       dataset, sensitivity, case_ref, recipient_party, destination_domain, email_to, url_domain,
                       file_name, channel, app_id, policy_set, group_id, min_group_size, lat, lon, content,
                       media, object_id, share_visibility, file_extension, attachment_count, identity_alias,
                       doc, None)
    return event, closed


_NO_CUSTODES_REST: tuple[Any, ...] = (None, None, None, None, None, None, (), None, None, None)
"""What _usual_custodes_rest reads, all absent."""


def _usual_custodes_rest(custodes: dict[str, Any], found: int, limits: Limits) -> tuple[tuple[Any, ...], bool]:
    """The fields of custodes that _usual_event does not read inline, and whether custodes is closed
    (``found``: how many keys it has read). Raises _Unusual as _usual_event does."""
    s = limits.max_string_chars
    get = custodes.get
    closed = True
    recipient_party = channel = app_id = policy_set = group_id = min_group_size = None
    object_id = share_visibility = identity_alias = None
    media: tuple[dict[str, Any], ...] = ()
    version = get("schema_version", _MISSING)
    if version is not _MISSING:
        if type(version) is not int or version != SCHEMA_VERSION:
            raise _Unusual
        found += 1
    if (node := get("recipient")) is not None:
        recipient_party, leaf_closed = _usual_leaf(node, "party", s)
        closed = closed and leaf_closed
        found += 1
    if (channel := _usual_string(get("channel"), 64)) is not None:
        found += 1
    if (node := get("application")) is not None:
        app_id, leaf_closed = _usual_leaf(node, "id", s)
        closed = closed and leaf_closed
        found += 1
    if (policy_set := _usual_string(get("policy_set"), s)) is not None:
        found += 1
    if (node := get("group")) is not None:
        group_id, leaf_closed = _usual_leaf(node, "id", s)
        closed = closed and leaf_closed
        found += 1
    if (node := get("aggregate")) is not None:
        if type(node) is not dict:
            raise _Unusual
        min_group_size = _usual_count(node.get("min_group_size"))
        closed = closed and len(node) == (min_group_size is not None)
        found += 1
    if (value := get("media")) is not None:
        if type(value) is not list or len(value) > 100 or not all(type(item) is dict for item in value):
            raise _Unusual
        media = tuple(value)
        closed = False  # the objects in it may hold anything
        found += 1
    if (node := get("object")) is not None:
        object_id, leaf_closed = _usual_leaf(node, "id", s)
        closed = closed and leaf_closed
        found += 1
    if (node := get("share")) is not None:
        share_visibility, leaf_closed = _usual_leaf(node, "visibility", 16)
        if share_visibility is not None and share_visibility not in _SHARE_VISIBILITIES:
            raise _Unusual
        closed = closed and leaf_closed
        found += 1
    if (node := get("identity")) is not None:
        identity_alias, leaf_closed = _usual_leaf(node, "alias", s)
        closed = closed and leaf_closed
        found += 1
    closed = closed and len(custodes) == found
    return (recipient_party, channel, app_id, policy_set, group_id, min_group_size, media, object_id,
            share_visibility, identity_alias), closed


_NO_OTHER_FIELDS: tuple[Any, ...] = (None, None, (), None, None, None, None, None, None, None)
"""What _usual_other_fields reads, all absent."""


def _usual_other_fields(doc: dict[str, Any], found: int, limits: Limits) -> tuple[tuple[Any, ...], bool]:
    """The top-level fields that _usual_event does not read inline, and whether they are closed and the
    document has no other key (``found``: how many keys it has read). Raises _Unusual as _usual_event does."""
    s = limits.max_string_chars
    get = doc.get
    closed = True
    host_id = destination_domain = url_domain = file_name = lat = lon = content = None
    file_extension = attachment_count = None
    email_to: tuple[str, ...] = ()
    if (node := get("host")) is not None:
        host_id, leaf_closed = _usual_leaf(node, "id", s)
        closed = closed and leaf_closed
        found += 1
    if (node := get("destination")) is not None:
        destination_domain, leaf_closed = _usual_leaf(node, "domain", s)
        closed = closed and leaf_closed
        found += 1
    if (node := get("url")) is not None:
        url_domain, leaf_closed = _usual_leaf(node, "domain", s)
        closed = closed and leaf_closed
        found += 1
    if (node := get("file")) is not None:
        if type(node) is not dict:
            raise _Unusual
        file_name = _usual_string(node.get("name"), s)
        file_extension = node.get("extension")
        if file_extension is not None and (
                type(file_extension) is not str or len(file_extension) > s or not file_extension
                or file_extension[0] == "." or file_extension.lower() != file_extension):
            raise _Unusual  # _checked_event normalises it (or finds its problem)
        closed = closed and len(node) == (file_name is not None) + (file_extension is not None)
        found += 1
    if (node := get("email")) is not None:
        if type(node) is not dict:
            raise _Unusual
        to = node.get("to")
        if to is not None:
            if type(to) is not dict:
                raise _Unusual
            value = to.get("address")
            if value is not None:
                email_to = _usual_strings(value, limits)
            closed = closed and len(to) == (value is not None)
        attachments = node.get("attachments")
        if attachments is not None:
            if (type(attachments) is not list or len(attachments) > limits.max_list_items
                    or not all(type(item) is dict for item in attachments)):
                raise _Unusual
            attachment_count = len(attachments)
            closed = False  # the objects in it may hold anything
        closed = closed and len(node) == (to is not None) + (attachments is not None)
        found += 1
    if (source := get("source")) is not None:
        # source and source.geo other than objects are ignored; source.geo.location must be an object
        if type(source) is dict:
            geo = source.get("geo")
            if type(geo) is dict:
                location = geo.get("location")
                if location is not None:
                    lat, lon = _usual_location(location)
                    closed = closed and len(location) == (lat is not None) + (lon is not None)
                closed = closed and len(geo) == (location is not None)
            else:
                closed = closed and type(geo) is not list
            closed = closed and len(source) == (geo is not None)
        else:
            closed = closed and type(source) is not list
        found += 1
    if (content := get("message")) is not None:
        if type(content) is not str or len(content) > limits.max_content_chars:
            raise _Unusual
        found += 1
    closed = closed and len(doc) == found
    return (host_id, destination_domain, email_to, url_domain, file_name, lat, lon, content, file_extension,
            attachment_count), closed


def _usual_string(value: Any, limit: int) -> str | None:
    """A string field read with ``dict.get``: None when absent or null; _Unusual unless a string within the limit."""
    if value is not None and (type(value) is not str or len(value) > limit):
        raise _Unusual
    return value


def _usual_strings(value: Any, limits: Limits) -> tuple[str, ...]:
    """A keyword list (not null): one string or a list of strings, within the limits; else _Unusual."""
    if type(value) is str:
        value = [value]
    elif type(value) is not list:
        raise _Unusual
    if len(value) > limits.max_list_items:
        raise _Unusual
    limit = limits.max_string_chars
    for item in value:
        if type(item) is not str or len(item) > limit:
            raise _Unusual
    return tuple(value)


def _usual_count(value: Any) -> int | None:
    """An integer field read with ``dict.get``: None when absent or null; _Unusual unless 0 to 10^12."""
    if value is not None and (type(value) is not int or not 0 <= value <= 10**12):
        raise _Unusual
    return value


def _usual_leaf(node: Any, key: str, limit: int) -> tuple[str | None, bool]:
    """The string ``node[key]`` of an object holding one field (``host`` for ``host.id``; not null) and
    whether the object holds nothing else; _Unusual unless both are usual."""
    if type(node) is not dict:
        raise _Unusual
    value = node.get(key)
    if value is not None and (type(value) is not str or len(value) > limit):
        raise _Unusual
    return value, len(node) == (value is not None)


def _usual_location(location: Any) -> tuple[float | None, float | None]:
    """source.geo.location (not null): both lat and lon in range, or neither; else _Unusual."""
    if type(location) is not dict:
        raise _Unusual
    lat = location.get("lat")
    lon = location.get("lon")
    if lat is None and lon is None:
        return None, None
    if (type(lat) not in (int, float) or type(lon) not in (int, float)
            or not -90 <= lat <= 90 or not -180 <= lon <= 180):  # also true for NaN
        raise _Unusual
    return float(lat), float(lon)


def _checked_event(doc: dict[str, Any], raw: bytes | None, limits: Limits) -> Event:
    """The Event of a document without dotted keys, or Invalid with the first problem in this order:
    custodes, its schema_version, @timestamp, user, custodes.activity and dataset.sensitivity, event and
    its id, the other _FIELDS in document order, source.geo.location, message, custodes.media.
    """
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
    if not user_id or user_id.isspace():  # whitespace names no one
        if not user_name or user_name.isspace():
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
