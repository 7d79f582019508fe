"""Shared builders for detector tests: Events without the runtime, the example reference data, and a
runner that carries state between batches through JSON exactly like the runtime does."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.alert import Alert
from detectors.base import Detector
from detectors.event import Event
from detectors.reference import Reference, load
from detectors.signal import Signal

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "config" / "reference"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
"""Monday 2 March 2026, 09:00 UTC."""
_ids = itertools.count()


def example_reference() -> Reference:
    return load({p.name: p.read_text() for p in sorted(REFERENCE_DIR.iterdir())
                 if p.suffix in (".jsonl", ".csv")})


def ev(user: str = "pc-1001", ts: float = T0, kind: str = "other", *, id: str | None = None,
       doc: dict[str, Any] | None = None, **fields: Any) -> Event:
    for name in ("record_ids", "email_to", "media"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return Event(id=id or f"e{next(_ids)}", ts=ts, user_id=user, kind=kind, doc=doc or {}, **fields)


def roundtrip(state: Any) -> Any:
    """State as the runtime stores it: through orjson and back (fails on non-JSON state)."""
    return None if state is None else orjson.loads(orjson.dumps(state))


def run(det: Detector, batches: Iterable[Sequence[Event]], state: Any = None, now: float | None = None,
        subject: str | None = None) -> tuple[Any, dict[str, Alert]]:
    """Process batches in order; returns the final state and the latest version of each alert
    (signals, :class:`detectors.signal.Signal`, are left out: see :func:`run_all`)."""
    state, alerts, _ = run_all(det, batches, state, now, subject)
    return state, alerts


def run_all(det: Detector, batches: Iterable[Sequence[Event]], state: Any = None, now: float | None = None,
            subject: str | None = None) -> tuple[Any, dict[str, Alert], list[Signal]]:
    """Like :func:`run`, also returning every signal in the order given."""
    alerts: dict[str, Alert] = {}
    signals: list[Signal] = []
    state = roundtrip(state)  # never the caller's object
    for batch in batches:
        who = subject or (batch[0].user_id if batch else "nobody")
        clock_now = now if now is not None else max((e.ts for e in batch), default=T0)
        state, got = det.process(who, list(batch), state, lambda t=clock_now: t)
        state = roundtrip(state)
        for a in got:
            if isinstance(a, Signal):
                signals.append(a)
            elif a.id not in alerts or a.count >= alerts[a.id].count:
                alerts[a.id] = a
    return state, alerts, signals


def one_by_one(events: Sequence[Event]) -> list[list[Event]]:
    return [[e] for e in events]


def cut(events: Sequence[Event], sizes: Iterable[int]) -> list[list[Event]]:
    """``events`` in batches of the given sizes, in order; what is left over is the last batch."""
    batches, rest = [], list(events)
    for n in sizes:
        if rest:
            batches.append(rest[:n])
            rest = rest[n:]
    if rest:
        batches.append(rest)
    return batches


def counts(alerts: dict[str, Alert]) -> list[tuple[str, int]]:
    """(alert key, count) sorted: the key is facts['key'] (what the alert is about)."""
    return sorted((str(a.facts.get("key", a.facts.get("sensitivity"))), a.count) for a in alerts.values())
