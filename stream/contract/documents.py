"""JSON documents as sources ship them: decoding bytes, ECS dotted keys (``{"user.id": …}`` means
``{"user": {"id": …}}``), nesting depth, and reading one field of a document with the rejection
reasons of stream.contract.reasons.

The checks on the bytes (_could_be_too_deep, _could_have_dotted_keys) let validation skip walking a
document when its text proves the walk needless.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from .limits import DEFAULT_LIMITS, Limits
from .reasons import Invalid

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
