"""Canonical (ECS) documents: pass-through of canonical JSON, and the helpers the other normalisers
use to build one: nested field assignment, UTC timestamps and deterministic event ids.

A canonical record is passed through unchanged (nested objects or ECS dotted keys, exactly as the
producer wrote it); :func:`stream.contract.schema.validate` judges it later. The other normalisers build
documents with nested objects only.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.contract.schema import Invalid

PATH = re.compile(r"^[@A-Za-z_][A-Za-z0-9_@-]*(\.[A-Za-z_][A-Za-z0-9_@-]*)*$")
"""A canonical dotted field path, e.g. ``user.id``, ``@timestamp``, ``custodes.record.ids``."""


def from_json(value: Any) -> dict[str, Any]:
    """A decoded canonical JSON record -> the document, unchanged; not an object -> Invalid.

    One exception: a Windows Security event (winlogbeat) without ``user`` gets ``user.id``/``name``/
    ``domain`` from ``winlog.event_data`` (the Subject*, or for logon events the Target* account), as
    Elastic's pipelines do for most event codes but not all (4663 object access)."""
    if not isinstance(value, dict):
        raise Invalid("not_an_object", f"event is a JSON {type(value).__name__}, not an object")
    if "user" not in value and "user.id" not in value and "user.name" not in value:
        _windows_user(value)
    return value


_TARGET_FIRST = frozenset({"4624", "4625", "4634", "4647", "4648"})


def _windows_user(doc: dict[str, Any]) -> None:
    winlog = doc.get("winlog")
    data = winlog.get("event_data") if isinstance(winlog, dict) else None
    if not isinstance(data, dict):
        return
    code = str(winlog.get("event_id") or "")
    prefixes = ("Target", "Subject") if code in _TARGET_FIRST else ("Subject", "Target")
    for prefix in prefixes:
        name = data.get(prefix + "UserName")
        if isinstance(name, str) and name and name != "-":
            user: dict[str, Any] = {"name": name}
            sid, domain = data.get(prefix + "UserSid"), data.get(prefix + "DomainName")
            if isinstance(domain, str) and domain and domain != "-":
                user["domain"] = domain
            if isinstance(sid, str) and sid.startswith("S-1-"):
                user["id"] = sid
            doc["user"] = user
            return


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``doc[a][b][c] = value`` for ``path`` ``a.b.c``, creating the objects on the way."""
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{path}: {part} is already a value, not an object")
        node = child
    node[leaf] = value


def utc_iso(when: datetime) -> str:
    """An aware datetime -> ``2024-03-05T14:03:22Z`` (microseconds kept when present)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stable_id(doc: dict[str, Any]) -> str:
    """A deterministic ``event.id`` for a document that has none: a hash of its sorted-key JSON.

    The same record normalised again (re-ingesting a file, or an overlapping export) gets the same id,
    so the store and the detectors see it once. Same shape as the ids :func:`stream.contract.schema.validate`
    derives (``sha-`` and 24 hex digits).
    """
    try:
        basis = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        if "utf-8" in str(exc).lower():
            raise Invalid("not_utf8", "the record holds text that is not valid UTF-8") from None
        raise Invalid("bad_value", f"the record cannot be encoded as JSON ({exc})") from None
    return "sha-" + hashlib.blake2b(basis, digest_size=12).hexdigest()
