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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert, alert_id
from .base import Clock, Detector, snapshot
from .event import Event
from .reference import Reference

MAX_OPEN = 64
MAX_TAGS = 16


def severity_for(score: float) -> str:
    return "critical" if score >= 85 else "high" if score >= 65 else "medium" if score >= 40 else "low"


def clamp(score: float) -> float:
    return round(min(100.0, max(0.0, score)), 1)


def when(ts: float) -> str:
    """Event time for an explanation: ``2026-03-02 09:00 UTC``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


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


Describe = Callable[[dict[str, Any], Hit], tuple[str, str]]
"""(open record, best hit of the batch) -> (title, explanation) when the text depends on the window."""


class Folding:
    """Folds one batch's hits into the open windows (create one per ``process`` call)."""

    def __init__(self, detector: Detector, open_records: dict[str, Any] | None, suppress_s: float,
                 keep_s: float, max_open: int = MAX_OPEN) -> None:
        self.detector = detector
        self.open: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (open_records or {}).items()}
        self.suppress_s = suppress_s
        self.keep_s = max(keep_s, suppress_s)
        self.max_open = max(1, max_open)
        self.touched: dict[tuple[str, float], tuple[dict[str, Any], list[Hit]]] = {}

    def add(self, hit: Hit, newest: float) -> dict[str, Any]:
        """Fold ``hit`` (``newest``: the newest event time seen so far, this hit included)."""
        ts = hit.event.ts
        rec = self.open.get(hit.key)
        if rec is not None and (rec["s"] + self.keep_s <= newest or ts >= rec["s"] + self.suppress_s):
            rec = None  # closed (a hit after it opens a new window)
        standalone = rec is not None and ts <= rec["s"] - self.suppress_s
        if rec is None or standalone:  # standalone: far older than the open window; its own alert
            rec = {"s": ts, "n": 0, "f": ts, "l": ts, "e": [], "p": 0.0, "t": []}
            if not standalone:
                self.open[hit.key] = rec
                if len(self.open) > self.max_open:
                    oldest = min((k for k in self.open if k != hit.key), key=lambda k: self.open[k]["s"])
                    del self.open[oldest]
        rec["n"] += 1
        rec["f"] = min(rec["f"], ts)
        rec["l"] = max(rec["l"], ts)
        rec["e"] = (rec["e"] + [hit.event.id])[-EVIDENCE_EVENTS_MAX:]
        rec["p"] = max(rec["p"], clamp(hit.score))
        if hit.tags:
            rec["t"] = sorted(set(rec["t"]) | set(hit.tags))[:MAX_TAGS]
        entry = self.touched.setdefault((hit.key, rec["s"]), (rec, []))
        entry[1].append(hit)
        return rec

    def expire(self, newest: float | None) -> dict[str, dict[str, Any]]:
        if newest is not None:
            self.open = {k: r for k, r in self.open.items() if r["s"] + self.keep_s > newest}
        return self.open

    def alerts(self, subject: str, describe: Describe | None = None) -> list[Alert]:
        det = self.detector
        out = []
        for (key, start), (rec, hits) in self.touched.items():
            best = max(reversed(hits), key=lambda h: h.score)  # highest score; ties: the latest
            title, explanation = describe(rec, best) if describe else (best.title, best.explanation)
            n = rec["n"]
            if n > 1:
                explanation += (
                    f" {n} matching events between {when(rec['f'])} and {when(rec['l'])} are folded "
                    f"into this alert (one alert per {duration(self.suppress_s)})."
                )
            score = rec["p"]
            out.append(Alert(
                id=alert_id(det.id, subject, f"{key}:{start!r}"),
                detector=det.id,
                detector_version=det.version,
                severity=severity_for(score),
                score=score,
                subject=subject,
                title=title,
                explanation=explanation,
                ts=max(h.event.ts for h in hits),
                first_seen=rec["f"],
                last_seen=rec["l"],
                evidence_event_ids=tuple(rec["e"]),
                evidence=tuple(snapshot(h.event) for h in hits[-EVIDENCE_EVENTS_MAX:]),
                count=n,
                facts={**best.facts, "key": key, "suppress_s": self.suppress_s,
                       **({"tags": list(rec["t"])} if rec["t"] else {})},
            ))
        return out


class RuleDetector(Detector):
    """A detector of per-event rules folded by :class:`Folding`. Subclasses implement :meth:`hits`
    and, if they keep more state than open windows, :meth:`tidy`. State keys ``n`` (newest event
    time) and ``o`` (open windows) are reserved; others belong to the subclass."""

    def keep_s(self) -> float:
        return float(self.config.suppress_s + self.config.grace_s)  # type: ignore[attr-defined]

    def hits(self, subject: str, event: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        raise NotImplementedError

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding) -> bool:
        """Expire the subclass's own state; True if any is left. May add hits to ``fold``."""
        return False

    def describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        return hit.title, hit.explanation

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        st: dict[str, Any] = dict(state) if state else {}
        ref = self.ref
        newest: float | None = st.get("n")
        fold = Folding(self, st.get("o"), self.config.suppress_s, self.keep_s())  # type: ignore[attr-defined]
        for ev in events:
            newest = ev.ts if newest is None else max(newest, ev.ts)
            for hit in self.hits(subject, ev, st, ref, newest):
                fold.add(hit, newest)
        fold.expire(newest)
        more = self.tidy(subject, st, ref, newest, clock, fold)
        alerts = fold.alerts(subject, self.describe)
        if not fold.open and not more:
            return None, alerts
        st["o"] = fold.open
        if newest is not None:
            st["n"] = newest
        return st, alerts
