"""The alert model every detector returns and every sink stores.

An alert's id is a digest of (detector id, subject, the detector's dedupe key), so the same evidence
always gives the same id: a replayed or redelivered stream upserts the same row instead of adding one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
EVIDENCE_EVENTS_MAX = 10
"""At most this many evidence event ids and snapshots are carried by one alert."""


def alert_id(detector: str, subject: str, key: str) -> str:
    digest = hashlib.blake2b(f"{detector}\x1f{subject}\x1f{key}".encode(), digest_size=16)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    detector: str
    detector_version: int
    severity: str
    score: float
    subject: str
    title: str
    explanation: str
    ts: float
    """Event time of the event that raised the alert (POSIX seconds)."""
    first_seen: float
    last_seen: float
    evidence_event_ids: tuple[str, ...] = ()
    evidence: tuple[dict[str, Any], ...] = ()
    count: int = 1
    """How many hits are folded into this alert (suppression folds repeats into one alert)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Bounded, structured figures behind the explanation (observed value, threshold, window)."""
    hits: tuple[tuple[float, float, str], ...] = field(default=(), compare=False, repr=False)
    """(event time, score, event id) of each hit this version folded in, in arrival order; for
    person_risk within the run that raised it (never serialised). Empty: the version's own
    ``(ts, score)`` stands for it."""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if not 0 <= self.score <= 100:
            raise ValueError("score must be within 0..100")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict. Shallow on purpose (no deep copy of the evidence): it is serialised at once."""
        return {
            "id": self.id, "detector": self.detector, "detector_version": self.detector_version,
            "severity": self.severity, "score": self.score, "subject": self.subject, "title": self.title,
            "explanation": self.explanation, "ts": self.ts, "first_seen": self.first_seen,
            "last_seen": self.last_seen, "evidence_event_ids": list(self.evidence_event_ids),
            "evidence": list(self.evidence), "count": self.count, "facts": self.facts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        """From :meth:`to_dict`'s form; times may also be ISO 8601 strings (``custodes replay``'s output)."""
        if not isinstance(d, dict):
            raise TypeError(f"an alert is a JSON object, not {type(d).__name__}")
        times = {k: _seconds(d[k]) for k in ("ts", "first_seen", "last_seen") if isinstance(d.get(k), str)}
        return cls(
            **{
                **d,
                **times,
                "evidence_event_ids": tuple(d.get("evidence_event_ids", ())),
                "evidence": tuple(d.get("evidence", ())),
            }
        )


def _seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
