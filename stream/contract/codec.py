"""Decoding and validating canonical audit events (version 1): a decoded JSON document -> an Event.

Field names follow the Elastic Common Schema wherever ECS has one, so ECS JSON shipped by Beats is
accepted as it is (nested objects or dotted keys); what ECS lacks lives under ``custodes.*``. The
contract is defined once, by the annotations of :class:`detectors.event.Event`; stream.contract.event
derives the msgspec models that decode a document in one call, and the JSON Schema in
``stream/contract/schemas/audit-event-1.json`` is generated from them (stream.contract.json_schema).
Every rejection carries one of :data:`REASONS` (a bounded set, safe as a metric label) and a precise
detail that names the field but never echoes its value.

Two readings of one contract: msgspec validates every valid document of the usual shape (nearly all);
a document it refuses, or that needs more than it checks (dotted keys, numbers as ids, a user given by
name), is read field by field (:func:`_checked_event`, walking the same table, :data:`FIELDS`), which
names the first problem in a fixed order with its reason, or reads the document when it is merely
unusual. The tests hold the two to the same result for every document (tests/stream/contract).
"""

from __future__ import annotations

import operator
import re
import typing
from typing import Any

import msgspec

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES, Event

from .documents import (
    _MISSING,
    _could_be_too_deep,
    _could_have_dotted_keys,
    _depth_ok,
    _expand,
    _float_value,
    _get,
    _has_dots,
    _int_value,
    _str_list_value,
    _str_value,
    check_depth,
    decode,
    lookup,
    parse_timestamp,
)
from .event import FIELD_PATHS, FIELDS, SCHEMA_VERSION, Unusual, builder, derived_id, models
from .limits import DEFAULT_LIMITS, Limits
from .reasons import REASONS, Invalid

__all__ = [
    "DEFAULT_LIMITS", "FIELD_PATHS", "REASONS", "SCHEMA_VERSION", "Invalid", "Limits", "check_depth", "decode",
    "lookup", "parse", "parse_timestamp", "validate",
]

_READ_FIRST = frozenset({"id", "ts", "user_id", "user_name", "kind", "sensitivity", "lat", "lon", "content",
                         "media"})
"""Attributes _checked_event reads itself, in a fixed order (their problems are reported first); the
others are read by _walk in the document's order."""

_SPEC: dict[str, Any] = {}
"""The other fields as a tree: {"custodes": {"record": {"count": (attr, kind, limit, path)}}}."""
for _f in FIELDS:
    if _f.attr in _READ_FIRST:
        continue
    _node = _SPEC
    for _part in _f.parts[:-1]:
        _node = _node.setdefault(_part, {})
    _kind: Any = {"first": "str1", "extension": "extension", "count": "objects"}.get(_f.read)
    if _kind is None:
        _kind = _f.choices or ("list" if _f.is_list else "int" if _f.base is int else "str")
    _node[_f.parts[-1]] = (_f.attr, _kind, _f.limit, _f.path)


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
        elif type(kind) is tuple:  # one of these strings
            choice = _str_value(value, path, limit or limits.max_string_chars)
            if choice not in kind:
                raise Invalid("bad_value", f"{path} must be one of {', '.join(kind)}")
            values[attr] = choice
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


_CLOSED_DEPTH = 4
"""How deep a document the closed model accepts can nest, counting as _depth_ok does: the document is
level 1, custodes.record.ids, email.to.address and source.geo.location are level 4."""
def _most_keys(model: Any) -> dict[str, int]:
    """How many keys the document ("") and each of its objects hold at most to fit the closed model."""
    fields = msgspec.structs.fields(model)
    out = {"": len(fields)}
    for f in fields:
        inner = typing.get_args(f.type)[0] if typing.get_args(f.type) else None
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            out[f.encode_name] = len(msgspec.structs.fields(inner))
    return out


_MOST_KEYS = _most_keys(models(DEFAULT_LIMITS, True))
_ROOT_KEYS, _EVENT_KEYS, _SOURCE_KEYS = _MOST_KEYS[""], _MOST_KEYS["event"], _MOST_KEYS["source"]
"""How many keys the document, its event and its source objects have at most when closed: more, and the
closed model is not tried (normalised vendor events carry event.dataset, event.module, source.ip …)."""
_convert = msgspec.convert
_ValidationError = msgspec.ValidationError


def validate(doc: dict[str, Any], raw: bytes | None = None, limits: Limits = DEFAULT_LIMITS, *,
             keep_doc: bool = True) -> Event:
    """A decoded document -> Event, or Invalid with the first problem found.

    ``keep_doc=False`` (the pipeline's choice): when the document is closed (every field of it is one
    of Event's attributes) and ``raw`` is given, the Event keeps ``raw`` instead of the decoded dict
    (``Event.document`` decodes it again if ever asked).

    ECS dotted keys (``{"user.id": …}``) are expanded into nested objects first, at any level. ``raw``,
    the JSON text ``doc`` was decoded from, lets the depth and dotted-key checks skip walking the
    document when its text proves them needless, and is what a missing event id is derived from.

    A document the closed model (stream.contract.event.models) accepts needs no other check: it can
    neither nest too deeply nor hold dotted keys. Any other is checked for depth and dotted keys, then
    read by the open model (other fields allowed) or, when that refuses it, field by field by
    _checked_event, which decides which problem is reported.
    """
    event_node = doc.get("event")
    source = doc.get("source")
    if (limits.max_depth >= _CLOSED_DEPTH and len(doc) <= _ROOT_KEYS
            and (type(event_node) is not dict or len(event_node) <= _EVENT_KEYS)
            and (type(source) is not dict or len(source) <= _SOURCE_KEYS)):
        try:
            event = _build_closed(_convert(doc, _closed_model(limits)), doc, raw)
        except (_ValidationError, Unusual):
            pass
        else:
            if raw is None or _may_hold_control(raw):
                _reject_control_characters(event)
            if not keep_doc and raw is not None:  # every field is an attribute: keep the text only
                event.doc = None
                event.raw = raw
            return event
    if _could_be_too_deep(raw, limits.max_depth) and not _depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")
    expanded = False
    if _could_have_dotted_keys(raw) and _has_dots(doc):
        doc = _expand(doc)
        expanded = True
    try:
        event = _build_open(_convert(doc, _open_model(limits)), doc, raw)
    except (_ValidationError, Unusual):
        event = _checked_event(doc, raw, limits)
    if expanded and not _depth_ok(doc, limits.max_depth):
        # "a.b.c…" keys nest once expanded; checked last, so a field's own problem is reported first
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels once its "
                      "dotted keys are expanded")
    if raw is None or _may_hold_control(raw):
        _reject_control_characters(event)
    return event


_build_closed = builder(True)
_build_open = builder(False)
_last: tuple[Any, ...] = (None, None, None)
"""The limits last asked for and their (closed, open) models: the limits of a process rarely change.
One tuple, read once, so concurrent callers with other limits never mix models."""


def _models(limits: Limits) -> tuple[Any, ...]:
    global _last
    last = _last
    if last[0] is not limits:
        last = _last = (limits, models(limits, True), models(limits, False))
    return last


def _closed_model(limits: Limits) -> type[msgspec.Struct]:
    return _models(limits)[1]


def _open_model(limits: Limits) -> type[msgspec.Struct]:
    return _models(limits)[2]


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
    f.attr for f in FIELDS if f.attr not in _FREE_TEXT and (f.base is str or f.base == tuple[str, ...] or f.choices)
)
"""Every string attribute of Event other than free text: ids, actions, parties, domains, hosts, dataset
names, case refs, app and group ids, addresses, file names, channels … (fields added to Event later are
covered as well)."""
_identifier_values = operator.attrgetter(*_IDENTIFIER_ATTRS)
_ATTR_PATHS = {f.attr: f.path for f in FIELDS}


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


def _checked_event(doc: dict[str, Any], raw: bytes | None, limits: Limits) -> Event:
    """The Event of a document without dotted keys, or Invalid with the first problem in this order:
    custodes, its schema_version, @timestamp, user, custodes.activity and dataset.sensitivity, event and
    its id, the other fields of _SPEC in document order, source.geo.location, message, custodes.media.
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
            event_id = derived_id(doc, raw)
        except Unusual:  # only reachable from callers that build documents in Python
            raise Invalid("bad_value", "event holds a number outside the 64-bit range") from None
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
