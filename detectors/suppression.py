"""Suppression, shared by every detector: one alert per (detector, subject, key, window).

A detector reports *hits* (an event that breaks a rule, with a score and a plain-words explanation)
under a *key* (what the alert is about: ``special`` for a sensitivity, ``firearms|acme.example`` for
a dataset and a destination). The first hit of a key opens a window of ``suppress_s`` seconds of
event time starting at that hit; further hits inside it are folded into the same alert: its
``count`` grows, ``first_seen``/``last_seen`` widen, its score is the highest seen. The alert id is
``alert_id(detector, subject, f"{key}:{start!r}")`` so a replayed or re-batched stream gives the same
id. A hit at or after the window's end opens a new window (a new alert).

State (JSON, bounded): per open key ``{"s": start, "n": count, "f": first, "l": last, "e": [<=10 event
ids], "p": peak score, "t": [<=16 tags]}``; at most ``max_open`` keys (the oldest is dropped first). A
window is kept while ``start + keep_s`` is after the newest event time seen (``keep_s`` defaults to
``suppress_s + grace_s``): liveness is decided per event, so splitting the same events into
different batches gives the same alerts.

The open windows are updated in place (in the detector's state) and an :class:`Alert` is built only
for a window that got hits in this call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert, alert_id
from .base import Clock, Detector, snapshot
from .event import Event
from .reference import Reference
from .signal import Signal

MAX_OPEN = 64
MAX_TAGS = 16


def severity_for(score: float) -> str:
    return "critical" if score >= 85 else "high" if score >= 65 else "medium" if score >= 40 else "low"


def clamp(score: float) -> float:
    return round(min(100.0, max(0.0, score)), 1)


_minutes: dict[float, str] = {}


def when(ts: float) -> str:
    """Event time for an explanation: ``2026-03-02 09:00 UTC`` (cached per minute)."""
    minute = ts // 60.0
    if 0.0 <= ts - minute * 60.0 < 59.999:  # not where rounding to the microsecond moves the minute
        text = _minutes.get(minute)
        if text is None:
            if len(_minutes) >= 4096:
                _minutes.clear()
            text = _minutes[minute] = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return text
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=256)
def duration(seconds: float) -> str:
    s = int(seconds)
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if s >= unit and s % unit == 0:
            n = s // unit
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{s} seconds"


def join_words(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass(slots=True)
class Hit:
    key: str
    event: Event
    score: float
    title: str
    explanation: str
    """What was observed and against which threshold or register. Never message content."""
    facts: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    """Short labels accumulated over the window (e.g. kinds of personal data seen)."""
    label: str | None = None
    """The key as the alert's ``facts["key"]`` shows it, when the key holds a masked value (which
    the label replaces by its placeholder, :mod:`detectors.masking`); None: the key itself."""
    signal: float = 0.0
    """Above 0: not an alert but a weak signal of this weight for the person's risk
    (:mod:`detectors.person_risk`); ``key`` is its reason, ``explanation`` its note."""


Describe = Callable[[dict[str, Any], Hit], tuple[str, str]]
"""(open record, best hit of the batch) -> (title, explanation) when the text depends on the window."""


class Folding:
    """Folds hits into open windows (one per ``process`` call that has hits). ``open_records`` is the
    detector state's ``o`` map and is updated in place."""

    __slots__ = ("detector", "open", "suppress_s", "keep_s", "max_open", "touched")

    def __init__(self, detector: Detector, open_records: dict[str, Any] | None, suppress_s: float,
                 keep_s: float, max_open: int = MAX_OPEN) -> None:
        self.detector = detector
        self.open: dict[str, dict[str, Any]] = open_records if open_records is not None else {}
        self.suppress_s = suppress_s
        self.keep_s = max(keep_s, suppress_s)
        self.max_open = max(1, max_open)
        self.touched: dict[tuple[str, float], tuple[dict[str, Any], list[Hit]]] = {}

    def add(self, hit: Hit, newest: float) -> dict[str, Any]:
        """Fold ``hit`` (``newest``: the newest event time seen so far, this hit included)."""
        ts = hit.event.ts
        key = hit.key
        opened = self.open
        rec = opened.get(key)
        standalone = False
        if rec is not None:
            start = rec["s"]
            if start + self.keep_s <= newest or ts >= start + self.suppress_s:
                rec = None  # closed (a hit after it opens a new window)
            else:  # far older than the open window: its own alert
                standalone = ts <= start - self.suppress_s
        if rec is None or standalone:
            rec = {"s": ts, "n": 0, "f": ts, "l": ts, "e": [], "p": 0.0, "t": []}
            if not standalone:
                opened[key] = rec
                if len(opened) > self.max_open:
                    oldest = min((k for k in opened if k != key), key=lambda k: opened[k]["s"])
                    del opened[oldest]
        rec["n"] += 1
        if ts < rec["f"]:
            rec["f"] = ts
        if ts > rec["l"]:
            rec["l"] = ts
        ids = rec["e"]
        ids.append(hit.event.id)
        if len(ids) > EVIDENCE_EVENTS_MAX:
            del ids[:-EVIDENCE_EVENTS_MAX]
        score = clamp(hit.score)
        if score > rec["p"]:
            rec["p"] = score
        if hit.tags:
            rec["t"] = sorted(set(rec["t"]) | set(hit.tags))[:MAX_TAGS]
        entry = self.touched.get((key, rec["s"]))
        if entry is None:
            self.touched[(key, rec["s"])] = (rec, [hit])
        else:
            entry[1].append(hit)
        return rec

    def expire(self, newest: float | None) -> dict[str, dict[str, Any]]:
        if newest is not None:
            expire_open(self.open, newest, self.keep_s)
        return self.open

    def alerts(self, subject: str, describe: Describe | None = None) -> list[Alert]:
        det = self.detector
        out = []
        for (key, start), (rec, hits) in self.touched.items():
            best = hits[-1]
            for h in hits:  # highest score; ties: the latest
                if h.score >= best.score:
                    best = h
            title, explanation = describe(rec, best) if describe else (best.title, best.explanation)
            n = rec["n"]
            if n > 1:
                explanation += (
                    f" {n} matching events between {when(rec['f'])} and {when(rec['l'])} are folded "
                    f"into this alert (one alert per {duration(self.suppress_s)})."
                )
            score = rec["p"]
            latest = hits[0].event.ts
            for h in hits:
                if h.event.ts > latest:
                    latest = h.event.ts
            out.append(Alert(
                id=alert_id(det.id, subject, f"{key}:{start!r}"),
                detector=det.id,
                detector_version=det.version,
                severity=severity_for(score),
                score=score,
                subject=subject,
                title=title,
                explanation=explanation,
                ts=latest,
                first_seen=rec["f"],
                last_seen=rec["l"],
                evidence_event_ids=tuple(rec["e"]),
                evidence=tuple(snapshot(h.event) for h in hits[-EVIDENCE_EVENTS_MAX:]),
                count=n,
                facts={**best.facts, "key": best.label or key, "suppress_s": self.suppress_s,
                       **({"tags": list(rec["t"])} if rec["t"] else {})},
                hits=tuple((h.event.ts, clamp(h.score), h.event.id) for h in hits),
            ))
        return out


def expire_open(opened: dict[str, dict[str, Any]], newest: float, keep_s: float) -> None:
    """Drop, in place, the open windows that started ``keep_s`` or more before ``newest``."""
    if opened:
        dead = [k for k, r in opened.items() if r["s"] + keep_s <= newest]
        for k in dead:
            del opened[k]


class RuleDetector(Detector):
    """A detector of per-event rules folded by :class:`Folding`. Subclasses implement :meth:`hits`
    and, if they keep more state than open windows, :meth:`tidy`. State keys ``n`` (newest event
    time) and ``o`` (open windows) are reserved; others belong to the subclass.

    ``n`` is the newest time of any event of the subject, including the ones the detector does not
    need (:attr:`watermark`): it decides how late an event may be and when windows close."""

    watermark = True

    def keep_s(self) -> float:
        return float(self.config.suppress_s + self.config.grace_s)  # type: ignore[attr-defined]

    def hits(self, subject: str, event: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        """The event's hits (any iterable; an empty tuple or list is cheapest when there are none)."""
        raise NotImplementedError

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        """Expire the subclass's own state (in place); True if any is left. ``fold`` is None when no
        hit was folded in this call; a subclass that adds hits here creates one (:meth:`folding`)."""
        return False

    def describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        return hit.title, hit.explanation

    def folding(self, state: dict[str, Any]) -> Folding:
        """A :class:`Folding` over ``state``'s open windows (creating the map if needed)."""
        opened = state.get("o")
        if opened is None:
            opened = state["o"] = {}
        return Folding(self, opened, self.config.suppress_s, self.keep_s())  # type: ignore[attr-defined]

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        return self.process_relevant(subject, events, state, clock)

    def scan(self, subject: str, events: Sequence[Event], marks: Sequence[float] | None,
             state: dict[str, Any], ref: Reference, newest: float | None
             ) -> tuple[float | None, list[tuple[Hit, float]] | None]:
        """Run :meth:`hits` over the events in order: (the newest event time after them, each hit with
        the newest time when it was found, or None without hits). ``marks``: see
        :meth:`Detector.process_relevant`. A subclass may fuse this loop for speed; hits must not
        depend on the open windows (``o``)."""
        found: list[tuple[Hit, float]] | None = None
        hits = self.hits
        for i, ev in enumerate(events):
            at = ev.ts if marks is None else marks[i]
            if newest is None or at > newest:
                newest = at
            got = hits(subject, ev, state, ref, newest)
            if got:
                for hit in got:
                    if found is None:
                        found = []
                    found.append((hit, newest))
        return newest, found

    def process_relevant(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock,
                         marks: Sequence[float] | None = None, top: float | None = None
                         ) -> tuple[Any | None, list[Alert]]:
        st: dict[str, Any] = state if state else {}
        newest: float | None = st.get("n")
        fold: Folding | None = None
        signals: list[Any] = []
        ref = self.holder.current
        if events:
            newest, found = self.scan(subject, events, marks, st, ref, newest)
            if found:
                for hit, at in found:
                    if hit.signal > 0:
                        signals.append(Signal(self.id, hit.key, hit.event.ts, hit.event.id, hit.signal,
                                              hit.explanation[:160]))
                        continue
                    if fold is None:
                        fold = self.folding(st)
                    fold.add(hit, at)
        if top is not None:
            if newest is not None and top <= newest and not events:
                return (st or None), []  # nothing new: expiry already ran at this watermark
            if newest is None or top > newest:
                newest = top
        opened = st.get("o")
        if opened and newest is not None:
            expire_open(opened, newest, self._keep)
        more = self.tidy(subject, st, ref, newest, clock, fold) if self._tidies else False
        alerts = fold.alerts(subject, self.describe) if fold is not None else []
        if signals:
            alerts.extend(signals)
        if not opened:
            opened = st.get("o")
            if not opened and not more:
                return None, alerts
        if opened is None:
            st["o"] = {}
        if newest is not None:
            st["n"] = newest
        return st, alerts

    @cached_property
    def _tidies(self) -> bool:
        """Whether the subclass keeps state of its own (overrides :meth:`tidy`)."""
        return type(self).tidy is not RuleDetector.tidy

    @cached_property
    def _keep(self) -> float:
        return max(self.keep_s(), self.config.suppress_s)  # type: ignore[attr-defined]
