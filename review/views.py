"""Jinja2 filters for the pages (time, numbers, evidence values)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def when(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def short_when(value: Any) -> str:
    full = when(value)
    return full[:16] if full != "—" else full


def label(value: Any) -> str:
    return str(value or "").replace("_", " ")


def evidence_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) if not isinstance(v, dict) else orjson.dumps(v).decode() for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def is_masked(value: Any) -> bool:
    return isinstance(value, dict) and value.get("masked") is True


def pretty_json(value: Any) -> str:
    options = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, option=options, default=str).decode()


def number(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def facts(value: Any) -> list:
    from .facts import describe

    return describe(value) if isinstance(value, dict) else []


FILTERS = {
    "facts": facts, "when": when, "short_when": short_when, "label": label, "evidence_value": evidence_value,
    "is_masked": is_masked, "pretty_json": pretty_json, "number": number,
}
