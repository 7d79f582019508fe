"""Correlations grouped by something other than the person: the group stage. Pure: no Kafka, no I/O.

A Sigma correlation whose ``group-by`` does not name the person (``host.name``, ``source.ip``,
``user.domain``, a target object, or nothing at all) counts events of many people together, so it
cannot be counted in one person's state. The worker keys events by person; for such a correlation
the person pass (:class:`detectors.sigma.SigmaRules`) evaluates the detection rules as usual and, for
each event that matches a referenced rule, emits a small *record* (:func:`record`): the correlation
id, the group-by values, which referenced rule matched, the event time, the person, the event id, the
value or number the correlation counts and a bounded evidence snapshot. The runtime re-keys the
record by :func:`group_key` (correlation id and a digest of the group-by values: no personal data in
the key), as it re-keys events by person, and :class:`GroupStage` counts it in that group's state, in
arrival order, with the same code as the person's correlations (:func:`.correlate.observe`). The
worker keeps that state in a Faust table with a changelog (stream/worker/correlation.py); ``custodes
replay`` keeps it in a dict.

State of one group (JSON, bounded):

``c``  the correlation's counts (:mod:`.correlate`: buckets, at most ``count + 1`` value digests, a
       sketch, last times per rule, chains)
``n``  the newest event time of the group's records; ``k`` how long after it the state is of use
``o``  open alerts (:class:`detectors.suppression.Folding`, one per ``suppress_s``), each with the
       person whose record opened it (``u``)
``p``  the persons whose records counted, person -> newest event time, at most :data:`MAX_PERSONS`
       (the least recent dropped first)
``i``  the correlation's id
``a``  per origin of records (a person-pass partition and input), the position of the last record
       applied: a record at or before it is a redelivery after a crash and is not counted again

Batching-invariant: each record is counted and the condition checked at that record, so the same
alerts come out however the records are cut into batches; a record more than ``grace_s`` older than
the group's newest is not counted (its window may be gone), as for a person's correlations.

**Attribution.** An alert concerns a group, not one person; Custodes' alerts have a person as their
subject (the review queue, pseudonyms, reveals and the risk score are per person). A grouped
correlation's alert has as its subject the person whose record *opened the alert's window* (the event
that first met the condition: the alert id is stable as later records fold in), and carries in its
facts the group-by field names, the number of people whose events counted, and, masked until a
reviewer reveals them, the group-by values (``group``) and those people (``persons``, the
:data:`MAX_PERSONS` most recent). So the alert appears under that person, adds to that person's risk
score over open alerts (detectors/risk.py) and names the others for the reviewer to follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..alert import Alert
from ..base import snapshot
from ..event import Event
from ..masking import masked, placeholder
from ..suppression import Folding, expire_open
from . import correlate
from .explain import correlation_hit
from .ruleset import CorrelationRule, RuleSet

MAX_PERSONS = 8
"""Persons remembered per group (the most recent), named (masked) in the group's alerts."""

_EVENT_FIELDS = frozenset(Event.__dataclass_fields__)


class _Rules(Protocol):
    current: RuleSet


@dataclass(frozen=True)
class GroupConfig:
    suppress_s: int = 3600
    grace_s: int = 3600


def record(corr: CorrelationRule, pos: int, group_text: str, event: Event, subject: str,
           value: str | None, number: float | None) -> dict[str, Any]:
    """The record the person pass emits for an event matching the ``pos``-th rule of ``corr``."""
    out: dict[str, Any] = {"c": corr.key, "g": group_text, "r": pos, "t": event.ts, "u": subject,
                           "s": snapshot(event)}
    if value is not None:
        out["v"] = value
    if number is not None:
        out["x"] = number
    return out


def group_key(rec: dict[str, Any]) -> str:
    """The key records of one group share (the state's key, the repartition topic's record key)."""
    return f"{rec['c']}:{correlate.digest(rec['g'])}"


def _event(rec: dict[str, Any]) -> Event:
    """The event behind a record, as far as its snapshot tells (for the alert's evidence)."""
    snap = rec.get("s") or {}
    fields = {k: v for k, v in snap.items() if k in _EVENT_FIELDS and k not in ("id", "ts", "user_id")}
    if "record_ids" in fields:
        fields["record_ids"] = tuple(fields["record_ids"])
    if "media" in fields:
        fields["media"] = tuple(fields["media"])
    return Event(id=str(snap.get("id", "")), ts=float(rec["t"]), user_id=str(rec["u"]), **fields)


def _position_before(at: Sequence[Any], seen: Sequence[Any] | None) -> bool:
    return seen is not None and list(at) <= list(seen)


class GroupStage:
    """Counts records of grouped correlations per group; state per :func:`group_key`."""

    id = "sigma"
    version = 1

    def __init__(self, rules: _Rules | RuleSet, config: GroupConfig | None = None) -> None:
        self.rules = rules
        self.config = config if config is not None else GroupConfig()
        self.redelivered = 0
        """Records skipped since the start as applied before (a running count, for the runtime's metric)."""

    def _current(self) -> RuleSet:
        rules = self.rules
        return rules if isinstance(rules, RuleSet) else rules.current

    def apply(self, records: Iterable[tuple[dict[str, Any], Sequence[Any] | None]], state: dict[str, Any] | None
              ) -> tuple[dict[str, Any] | None, list[Alert]]:
        """Records of one group, in arrival order, each with its origin position (``[origin, offset,
        line, index]``, or None: not deduplicated) -> the group's new state (None: nothing left) and
        alerts. ``state`` is updated in place."""
        st: dict[str, Any] = state if state else {}
        live = {c.key: c for c in self._current().correlations if c.grouped}
        cfg = self.config
        newest: float | None = st.get("n")
        fold: Folding | None = None
        corr: CorrelationRule | None = None
        for rec, at in records:
            if at is not None:
                seen = st.setdefault("a", {})
                origin, rest = str(at[0]), list(at[1:])
                if _position_before(rest, seen.get(origin)):
                    self.redelivered += 1
                    continue  # applied before a crash: not counted twice
                seen[origin] = rest
            corr = live.get(rec.get("c"))  # type: ignore[arg-type]
            if corr is None:
                continue  # the rule was removed or is no longer grouped
            st["i"] = corr.key
            ts = float(rec["t"])
            if newest is None or ts > newest:
                newest = ts
            if ts <= newest - cfg.grace_s:
                continue  # too late: its window may be gone
            person = str(rec["u"])
            persons: dict[str, float] = st.setdefault("p", {})
            if persons.get(person, -1e300) < ts:
                persons[person] = ts
                if len(persons) > MAX_PERSONS:
                    del persons[min(persons, key=lambda k: (persons[k], k))]
            pos = int(rec.get("r", 0))
            got = correlate.observe(corr, st.setdefault("c", {}), pos, ts, rec.get("v"), rec.get("x"))
            if got is None:
                continue
            hit = correlation_hit(corr, _event(rec), correlate.digest(str(rec["g"])), corr.group_by[pos], *got)
            recent = sorted(persons, key=lambda k: (-persons[k], k))
            people = f"{len(persons)} {'person' if len(persons) == 1 else 'people'}"
            where = (f"Grouped by {', '.join(corr.group_by[pos])} = {placeholder('group')}"
                     if corr.group_by[pos] else "Across everyone")
            hit.explanation += f" {where}: events of {people} counted ({placeholder('persons')})."
            hit.facts.update({"grouped": True, "persons_count": len(persons),
                              **masked(group=str(rec["g"]).replace("\x1f", ", ") or None, persons=recent)})
            if fold is None:
                fold = Folding(self, st.setdefault("o", {}), cfg.suppress_s, cfg.suppress_s + cfg.grace_s)
            opened = fold.add(hit, newest)
            opened.setdefault("u", person)
        alerts: list[Alert] = []
        if fold is not None:
            by_subject: dict[str, dict[Any, Any]] = {}
            for k, entry in fold.touched.items():
                by_subject.setdefault(entry[0].get("u", ""), {})[k] = entry
            for subject, touched in by_subject.items():
                fold.touched = touched
                alerts.extend(fold.alerts(subject))
        if newest is None:
            return None, alerts
        st["n"] = newest
        corr = live.get(st.get("i", ""))
        span = corr.timespan_s if corr is not None else 0
        st["k"] = span + cfg.grace_s + cfg.suppress_s
        return (st if self.expire(st, newest, corr) else None), alerts

    def expire(self, st: dict[str, Any], newest: float, corr: CorrelationRule | None) -> bool:
        """Drop what no record can see any more; False when nothing is left."""
        cfg = self.config
        opened = st.get("o")
        if opened:
            expire_open(opened, newest, cfg.suppress_s + cfg.grace_s)
        counts = st.get("c")
        if counts is not None:
            horizon = newest - cfg.grace_s - (corr.timespan_s if corr is not None else 0)
            if corr is None or correlate.expire(corr.type, counts, horizon, corr.bucket_s):
                del st["c"]
            persons = st.get("p")
            if persons:
                st["p"] = {k: t for k, t in persons.items() if t > horizon}
        return bool(st.get("o") or st.get("c"))


def stale(st: dict[str, Any], watermark: float) -> bool:
    """Whether a group's state can be deleted: the newest record seen anywhere (``watermark``) is past
    everything it keeps (a group no record comes to again is not kept for ever)."""
    newest, keep = st.get("n"), st.get("k")
    return newest is None or (keep is not None and newest + keep <= watermark)
