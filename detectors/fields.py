"""Reading fields that have no typed attribute on :class:`Event` from its validated document.

ECS allows nested objects (``{"custodes": {"record": {...}}}``) and dotted keys
(``{"custodes.record.postcode_area": ...}``) and mixtures of both; :func:`lookup` accepts all of them.
Pure, no dependency on the runtime (``stream.contract.schema`` has its own copy for validation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .event import Event

_MISSING = object()
STR_MAX = 256


def lookup(doc: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """``a.b.c`` from nested objects, dotted keys or a mixture; ``default`` when absent."""
    parts = path.split(".")
    for j in range(len(parts), 0, -1):  # the longest dotted key first: {"record.postcode_area": …}
        key = ".".join(parts[:j])
        if key in doc:
            if j == len(parts):
                return doc[key]
            node = doc[key]
            if isinstance(node, Mapping):
                found = lookup(node, ".".join(parts[j:]), _MISSING)
                if found is not _MISSING:
                    return found
    return default


def doc_str(event: Event, path: str) -> str | None:
    """A short string field of the event document (numbers accepted), else None. Never raises."""
    try:
        doc = event.document
        value = lookup(doc, path) if isinstance(doc, Mapping) else None
    except (TypeError, ValueError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    value = str(value).strip()
    return value[:STR_MAX] or None
