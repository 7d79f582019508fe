"""An alert's facts in words a reviewer understands, with units ("Window: 1 hour").

Detectors store facts under short config-like keys (``window_s``, ``max_records``, ``suppress_s``).
The alert page shows each through :data:`FACTS`: a label and how to format its value. Keys only the
fold machinery needs (``key``) are not shown; an unknown key still shows, worded from its name (and
``*_s`` as a duration), so a new detector's facts are never hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detectors.suppression import duration


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}" if isinstance(v, float) else str(v)


def _duration(v: Any) -> str:
    try:
        seconds = float(v)
    except (TypeError, ValueError):
        return str(v)
    if seconds < 120 and seconds != int(seconds):
        return f"{seconds:.1f} seconds"
    return duration(seconds)


def _unit(unit: str) -> Callable[[Any], str]:
    return lambda v: f"{_count(v)} {unit}"


def _time(v: Any) -> str:
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(v)


def _words(v: Any) -> str:
    return str(v).replace("_", " ")


def _hour_of_week(v: Any) -> str:
    try:
        b = int(v)
    except (TypeError, ValueError):
        return str(v)
    day = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[b // 24 % 7]
    return f"{day} {b % 24:02d}:00-{b % 24:02d}:59 UTC"


def _distinct(v: Any) -> str:
    return "none given by the source" if v == 0 else _count(v)


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    key: str


FACTS: dict[str, tuple[str, Callable[[Any], str]] | None] = {
    # fold machinery: not for people
    "key": None,
    # bulk export
    "sensitivity": ("Sensitivity", _words),
    "records": ("Records in the window", _count),
    "distinct_records": ("Distinct record ids in the window", _distinct),
    "max_records": ("Threshold (records)", _count),
    "max_distinct_records": ("Threshold (distinct record ids)", _count),
    "distinct_documents": ("Distinct documents in the window", _count),
    "max_documents": ("Threshold (documents)", _count),
    "dataset": ("Dataset", str),
    "channel": ("Latest via", _words),
    # windows and folding
    "window_s": ("Window", _duration),
    "suppress_s": ("One alert per", _duration),
    "interval_s": ("Time between the two places", _duration),
    "tags": ("Tags", lambda v: ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)),
    # impossible travel
    "distance_km": ("Distance", _unit("km")),
    "speed_kmh": ("Speed needed", _unit("km/h")),
    # leavers
    "leave_date": ("Leave date", str),
    "left_at": ("Left at", _time),
    "kind": ("Activity", _words),
    "action": ("Action", str),
    "group_id": ("Group", str),
    # need to know
    "reason": ("Reason", _words),
    "lookups_in_window": ("Look-ups in the window", _count),
    "max_per_window": ("Threshold (look-ups)", _count),
    # reviewer watch
    "reveals": ("Reveals in the window", _count),
    "max_reveals": ("Threshold (reveals)", _count),
    "team": ("Team", str),
    # small cells
    "min_group_size": ("Smallest group in the export", _unit("people")),
    "k": ("Smallest group allowed", _unit("people")),
    # third parties
    "destination": ("Destination", str),
    "destination_kind": ("Destination kind", _words),
    "known_parties": ("Registered parties", lambda v: ", ".join(map(str, v)) if isinstance(v, list) else str(v)),
    # messaging
    "app_id": ("Application", str),
    "policy_set": ("Policy set", str),
    # unusual volume
    "rule": ("Rule", _words),
    "count": ("Events in the hour", _count),
    "mean": ("Usual for this hour (mean)", lambda v: f"{float(v):,.2f}"),
    "z": ("Deviation from usual (z)", lambda v: f"{float(v):,.1f}"),
    "bucket": ("Hour of the week", _hour_of_week),
    "peer_group": ("Peer group", str),
    "peer_mean": ("Usual for the peer group (mean)", lambda v: f"{float(v):,.2f}"),
    "peer_z": ("Deviation from the peer group (z)", lambda v: f"{float(v):,.1f}"),
}


def _fallback(key: str, value: Any) -> tuple[str, str]:
    if key.endswith("_s"):
        return key[:-2].replace("_", " ").capitalize(), _duration(value)
    return key.replace("_", " ").capitalize(), _count(value) if isinstance(value, int | float) else str(value)


def describe(facts: Mapping[str, Any]) -> list[Fact]:
    """The facts to show, in the order of :data:`FACTS` (then any others by name). A fact whose value
    is masked (a dict ``{"masked": True, …}``) is passed through for the template to render masked."""
    order = {k: i for i, k in enumerate(FACTS)}
    out = []
    for key in sorted(facts, key=lambda k: (order.get(k, len(order)), k)):
        value = facts[key]
        spec = FACTS.get(key, ...)
        if spec is None:
            continue
        if isinstance(value, dict) and value.get("masked") is True:
            label = spec[0] if spec is not ... else _fallback(key, "")[0]
            out.append(Fact(label, value, key))  # type: ignore[arg-type]
            continue
        if value is None:
            text = "—"
            label = spec[0] if spec is not ... else _fallback(key, "")[0]
        elif spec is ...:
            label, text = _fallback(key, value)
        else:
            label, fmt = spec
            try:
                text = fmt(value)
            except (TypeError, ValueError):
                text = str(value)
        out.append(Fact(label, text, key))
    return out
