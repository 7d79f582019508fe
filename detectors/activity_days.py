"""A person's activity per day, by kind: the counts behind the review app's person story chart.

Not a detector (it raises no alert): pure counting in the detectors' style (no I/O, no clock of its
own: ``now`` is passed in), run by the pipeline on the same fresh, de-duplicated events the detectors
see, so a redelivered message or a re-sent event is not counted twice.

State, kept in the person's detector-state entry: the absolute counts of the person's **current day**
(the newest UTC day seen) and **the day before**, by activity kind, and the newest event time of each
day: at most two short lists of counts, never an event. Each day is stored as ``[last_seen, counts]``
(:func:`pack_day`): the counts by position in :data:`KIND_ORDER`, trailing zeros left out, a kind not
in that order (none today) in a third element ``{kind: n}``; the day is the UTC day of ``last_seen``.
States stored before (``[day, last_seen, {kind: n}]`` per day) are read as they were.

Each call returns the absolute counts of every day it touched (:class:`DayCounts`): a record that
says "on this day this person had these counts", which the store upserts. Sending the same record
again, or an older copy of it, changes nothing (the store keeps the copy with the larger total), so
records are idempotent and the worker may resend them after a crash.

An event more than a day older than the newest day seen (a source delivering days late) cannot be
counted absolutely (its day's counts are no longer kept): it is counted as ``late`` and left out of the
chart, never added to a day the store already holds. Sources are read in near time order per person,
so in practice this is a back-fill of old files after newer events; replaying those files offline
(``custodes replay``) gives their days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .event import Event

DAY_S = 86400
DAYS_KEPT = 2
"""The current day and the previous one (state per person: two short lists of counts)."""

KIND_ORDER = ("record_access", "message", "logon", "logoff", "other", "export", "share", "print",
              "removable_media", "web_upload", "membership", "review", "mail_forward")
"""Positions of the activity kinds in a stored day's counts, the most common first. Stored states depend
on it: append new kinds at the end, never reorder or remove."""

_POSITION = {kind: i for i, kind in enumerate(KIND_ORDER)}


def day_of(ts: float) -> int:
    """The UTC day number (days since 1970-01-01) of a POSIX time."""
    return int(ts // DAY_S)


def iso_day(day: int) -> str:
    return date.fromordinal(day + _EPOCH).isoformat()


_EPOCH = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One person's absolute activity counts for one UTC day (the record the store upserts)."""

    person: str
    day: str
    """ISO date (UTC)."""
    counts: Mapping[str, int]
    """Activity kind -> events that day (kinds with none are absent)."""
    last_seen: float
    """POSIX seconds of the day's newest event: what retention measures the record by."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "day": self.day, "counts": dict(sorted(self.counts.items())),
                "last_seen": self.last_seen}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DayCounts:
        """Raises ValueError/TypeError/KeyError on anything that is not a day record."""
        person, day, counts, last = d["person"], d["day"], d["counts"], d["last_seen"]
        if not isinstance(person, str) or not person or not isinstance(day, str):
            raise ValueError("person and day must be text")
        date.fromisoformat(day)  # raises ValueError
        if not isinstance(counts, dict) or not all(
                isinstance(k, str) and type(v) is int and v >= 0 for k, v in counts.items()):
            raise ValueError("counts must map kinds to non-negative integers")
        if isinstance(last, bool) or not isinstance(last, int | float):
            raise ValueError("last_seen must be a number")
        return cls(person, day, counts, float(last))

    def day_start(self) -> datetime:
        return datetime.fromisoformat(self.day).replace(tzinfo=UTC)


def pack_day(last: float, kinds: Mapping[str, int]) -> list[Any]:
    """One kept day as stored: ``[last_seen, [n by KIND_ORDER, trailing zeros left out]]``, plus
    ``{kind: n}`` for kinds not in :data:`KIND_ORDER`; a whole-second ``last_seen`` as an integer."""
    row = [kinds.get(kind, 0) for kind in KIND_ORDER]
    while row and not row[-1]:
        row.pop()
    last = _seconds(last)
    if kinds.keys() <= _POSITION.keys():
        return [last, row]
    return [last, row, {kind: n for kind, n in kinds.items() if kind not in _POSITION}]


def unpack_day(entry: Sequence[Any]) -> tuple[int, float, dict[str, int]]:
    """(day, last_seen, {kind: n}) of one stored day: :func:`pack_day`'s form, or ``[day, last_seen,
    {kind: n}]`` as stored before it."""
    if type(entry[1]) is list:
        last = float(entry[0])
        return day_of(last), last, _kinds(entry[1], entry[2] if len(entry) > 2 else None)
    day, last, counts = entry
    return int(day), float(last), dict(counts)


@dataclass(slots=True)
class Counted:
    state: list[Any] | None
    """The new state (None: nothing kept)."""
    days: list[DayCounts]
    """Absolute counts of each day the events touched, oldest first."""
    late: int = 0
    """Events of a day no longer kept (more than a day before the newest day seen): not counted."""


def count(person: str, state: list[Any] | None, events: Iterable[Event], now: float,
          retention_s: float) -> Counted:
    """Add ``events`` (in arrival order) to the person's day counts. ``state``: as returned last time
    (a list of :func:`pack_day` entries, JSON-serialisable), or None. Days whose newest event is older
    than ``now - retention_s`` are forgotten."""
    days: dict[int, list[Any]] = {}  # day -> [last_seen, [n by KIND_ORDER], {other kind: n} or None]
    for entry in state or ():
        if type(entry[1]) is list:
            last = float(entry[0])
            days[day_of(last)] = [last, entry[1][:], dict(entry[2]) if len(entry) > 2 else None]
        else:  # [day, last_seen, {kind: n}], as stored before
            day, last, kinds = unpack_day(entry)
            packed = pack_day(last, kinds)
            days[day] = [last, packed[1], packed[2] if len(packed) > 2 else None]
    newest = max(days, default=None)
    touched: set[int] = set()
    done: dict[int, list[Any]] = {}  # touched days dropped in this call (a newer day began): still sent
    late = 0
    position = _POSITION
    for ev in events:
        d = day_of(ev.ts)
        if newest is not None and d < newest - (DAYS_KEPT - 1):
            late += 1
            continue
        if newest is None or d > newest:
            newest = d
            for old in [k for k in days if k < newest - (DAYS_KEPT - 1)]:
                entry = days.pop(old)
                if old in touched:
                    done[old] = entry
        entry = days.get(d)
        if entry is None:
            entry = days[d] = [ev.ts, [], None]
        elif ev.ts > entry[0]:
            entry[0] = ev.ts
        i = position.get(ev.kind)
        if i is None:
            extra = entry[2]
            if extra is None:
                extra = entry[2] = {}
            extra[ev.kind] = extra.get(ev.kind, 0) + 1
        else:
            row = entry[1]
            if i >= len(row):
                row.extend([0] * (i + 1 - len(row)))
            row[i] += 1
        touched.add(d)
    oldest = now - retention_s
    for d in [k for k, entry in days.items() if entry[0] < oldest]:
        del days[d]
        touched.discard(d)
    sent = {**done, **{d: days[d] for d in touched if d in days}}
    out = [DayCounts(person, iso_day(d), _kinds(sent[d][1], sent[d][2]), sent[d][0]) for d in sorted(sent)
           if sent[d][0] >= oldest]
    new_state = []
    for d in sorted(days):
        last, row, extra = days[d]
        last = _seconds(last)
        new_state.append([last, row] if extra is None else [last, row, extra])
    return Counted(new_state or None, out, late)


def _seconds(ts: float) -> float | int:
    """A whole-second time as an integer (shorter in JSON; read back as the same float)."""
    if type(ts) is float and ts.is_integer() and -2**53 < ts < 2**53:
        return int(ts)
    return ts


def _kinds(row: list[int], extra: dict[str, int] | None) -> dict[str, int]:
    kinds = {kind: n for kind, n in zip(KIND_ORDER, row, strict=False) if n}
    if extra:
        kinds.update(extra)
    return kinds


def latest(records: Iterable[DayCounts]) -> dict[tuple[str, str], DayCounts]:
    """What a store holding ``records`` keeps: per (person, day) the copy with the largest total (the
    later one on a tie), as :meth:`stream.store.alerts.AlertStore.upsert_activity_days` does."""
    kept: dict[tuple[str, str], DayCounts] = {}
    for r in records:
        key = (r.person, r.day)
        old = kept.get(key)
        if old is None or r.total >= old.total:
            kept[key] = r
    return kept
