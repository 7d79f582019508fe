"""Helpers the vendor readers (m365, google-workspace, okta) share: keys read case-insensitively,
typed field reads that fail with a field path, times, addresses and e-mail domains."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from stream.contract.schema import Invalid
from stream.sources.ecs import utc_iso

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def folded(value: Any) -> Any:
    """An object with its keys lower-cased (one vendor writes ``userId``, another ``UserId``): one level
    only, so a large record costs little; the readers fold the objects they go into (:func:`obj`,
    :func:`items`). Anything else is returned as it is."""
    if isinstance(value, dict):
        return {k.lower() if isinstance(k, str) else k: v for k, v in value.items()}
    return value


def record(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("not_an_object", f"record is a JSON {type(value).__name__}, not an object")
    return folded(value)


def items(value: Any) -> list[Any]:
    """The items of a list with their keys folded (objects) or as they are (anything else)."""
    return [folded(item) for item in value] if isinstance(value, list) else []


def text(rec: Mapping[str, Any], key: str, field: str, *, required: bool = False, limit: int = 1024) -> str | None:
    """A string (or integer, as text) field; ``field`` is its path as the source spells it."""
    value = rec.get(key)
    if value is None or value == "":
        if required:
            raise Invalid("bad_value", f"{field} is missing", field)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("wrong_type", f"{field} must be a string", field)
    value = str(value)
    if len(value) > limit:
        raise Invalid("oversized_field", f"{field} is longer than {limit} characters", field)
    return value


def obj(rec: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
    """The object at ``key``, its keys folded; absent -> {}; anything else -> Invalid at ``field``."""
    value = rec.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("wrong_type", f"{field} must be an object", field)
    return folded(value)


def timestamp(value: Any, field: str) -> str:
    """An ISO 8601 time as the vendors write it -> canonical UTC text. Without an offset it is UTC (the
    Management Activity API writes ``CreationTime`` so)."""
    if value is None or value == "":
        raise Invalid("missing_timestamp", f"{field} is required", field)
    if not isinstance(value, str):
        raise Invalid("wrong_type", f"{field} must be an ISO 8601 date-time string", field)
    if len(value) > 64:
        raise Invalid("oversized_field", f"{field} is longer than 64 characters", field)
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("bad_timestamp", f"{field} is not an ISO 8601 date-time", field) from None
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)
    try:
        return utc_iso(when)
    except (OverflowError, ValueError):
        raise Invalid("bad_timestamp", f"{field} is out of range", field) from None


def ip(value: Any) -> str | None:
    """An IP address from ``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443`` or ``2001:db8::1``;
    anything else None (an address is evidence, never a reason to refuse a record)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    candidate = value.strip()
    for attempt in (candidate, candidate.rsplit(":", 1)[0] if candidate.count(":") == 1 else None,
                    candidate[1:].split("]", 1)[0] if candidate.startswith("[") else None):
        if attempt:
            try:
                return str(ipaddress.ip_address(attempt))
            except ValueError:
                continue
    return None


def emails(values: Iterable[Any]) -> list[str]:
    """Every e-mail address in the values (``smtp:a@b.example``, ``"A" <a@b.example>; c@d.example``),
    lower-cased, in order, once each."""
    out: list[str] = []
    for value in values:
        if isinstance(value, list):
            found = emails(value)
        elif isinstance(value, str):
            found = [m.lower() for m in _EMAIL.findall(value)]
        else:
            found = []
        for address in found:
            if address not in out:
                out.append(address)
    return out


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower().rstrip(".")


def is_internal(domain: str, org_domains: Iterable[str]) -> bool:
    """The domain is one of the organisation's, or a sub-domain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in org_domains if d)


def extension(name: str | None) -> str | None:
    """ECS ``file.extension`` (lower case, no dot) from a file name, when it has a plausible one."""
    if not name or "." not in name:
        return None
    ext = name.rsplit(".", 1)[1].strip().lower()
    return ext if 0 < len(ext) <= 10 and ext.isalnum() else None
