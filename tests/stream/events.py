"""Builders for canonical test events (explicit timestamps; no wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
"""A Monday morning; tests count seconds from here."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def export(user: str, ts: float, count: int, *, event_id: str | None = None, sensitivity: str = "high",
           kind: str = "export", dataset: str = "firearm-certificates", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": iso(ts),
        "user": {"id": user},
        "custodes": {"activity": kind, "record": {"count": count},
                     "dataset": {"name": dataset, "sensitivity": sensitivity}},
    }
    if event_id:
        doc["event"] = {"id": event_id}
    doc.update(extra)
    return doc


def lines(*docs: dict[str, Any] | bytes) -> bytes:
    return b"\n".join(d if isinstance(d, bytes) else orjson.dumps(d) for d in docs)
