"""Signals: what a behaviour indicator says about one event, weighted, for the person's risk score.

An indicator (:class:`Indicator`, a detector) returns :class:`Signal` objects instead of alerts. The
engine does not hand signals to the alert sink: it passes them, with the batch's alerts, to the
person-risk accumulator (:mod:`detectors.person_risk`), which raises one person alert when the
decayed sum of a person's signals crosses a threshold. A signal is about one event (its id is the
evidence), so cutting a stream into batches differently gives the same signals.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from .base import Detector
from .event import Event
from .peers import zone

DAY = 86400.0
RETENTION_S = 730 * DAY
"""The retention window: no baseline keeps anything learned from events older than this."""


@dataclass(frozen=True, slots=True)
class Signal:
    indicator: str
    """The detector id that raised it."""
    reason: str
    """A short key for what was seen (``night_logon``, ``new_upload_destination``)."""
    ts: float
    event_id: str
    weight: float
    """Risk points before decay and context multipliers."""
    note: str = ""
    """Plain words, never content: what was seen, against which baseline."""

    @property
    def id(self) -> str:
        digest = hashlib.blake2b(f"{self.indicator}\x1f{self.reason}\x1f{self.event_id}".encode(), digest_size=12)
        return digest.hexdigest()

    @property
    def count(self) -> int:
        return 1

    @property
    def key(self) -> str:
        return f"{self.indicator}:{self.reason}"


def day_of(ts: float) -> int:
    return int(ts // DAY)


def local_hour_of_week(ts: float, tz: str) -> int:
    """0..167: Monday 00:00-00:59 local time is 0."""
    return _hour_of_week(int(ts // 900), tz)  # zone offsets are whole quarter hours


@lru_cache(maxsize=8192)
def _hour_of_week(quarter: int, tz: str) -> int:
    local = datetime.fromtimestamp(quarter * 900, zone(tz))
    return local.weekday() * 24 + local.hour


def extension(ev: Event) -> str | None:
    """The file extension (lower case, no dot): ``file.extension`` if the event has it, else from
    the file name."""
    ext = getattr(ev, "file_extension", None)
    if ext:
        return str(ext).lower().lstrip(".")
    name = ev.file_name
    if not name or "." not in name:
        return None
    tail = name.rsplit(".", 1)[1].lower()
    return tail if 0 < len(tail) <= 8 and tail.isalnum() else None


def attachments(ev: Event) -> int:
    """How many attachments a message carries: ``attachment_count`` if the event has it, else the
    length of ECS ``email.attachments``, else 1 when a message names a file."""
    n = getattr(ev, "attachment_count", None)
    if n is not None:
        return int(n)
    doc = ev.doc
    if doc:
        email = doc.get("email")
        if isinstance(email, dict) and isinstance(email.get("attachments"), list):
            return len(email["attachments"])
    return 1 if ev.kind == "message" and ev.file_name else 0


def domain_of(address: str) -> str | None:
    at = address.rfind("@")
    if at < 0 or at == len(address) - 1:
        return None
    return address[at + 1:].strip().lower().strip(".") or None


def internal(domain: str, internal_domains: Sequence[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)


def decay(points: float, age_s: float, half_life_s: float) -> float:
    if age_s <= 0:
        return points
    return points * math.pow(0.5, age_s / half_life_s)


class Indicator(Detector):
    """A detector that returns :class:`Signal` objects (weak evidence for the person's risk), not
    reviewer alerts. Its state depends only on the sequence of events it is given (never on the
    clock or on batch boundaries), so batching does not change its signals."""

    def signal(self, ev: Event, reason: str, weight: float, note: str) -> Signal:
        return Signal(self.id, reason, ev.ts, ev.id, round(float(weight), 2), note)

    def weight(self, reason: str) -> float:
        weights: dict[str, Any] = self.config.weights  # type: ignore[attr-defined]
        return float(weights.get(reason, 0.0))


DATA_OUT_KINDS = frozenset({"removable_media", "web_upload", "export", "print", "share"})


def external_recipients(ev: Event, internal_domains: Sequence[str], ref: Any = None) -> list[str]:
    """The distinct recipient domains of a message outside ``internal_domains`` (and, given reference
    data, not a registered sharing partner's: mail to the CPS is the job)."""
    out: list[str] = []
    for address in ev.email_to:
        d = domain_of(address)
        if d and not internal(d, internal_domains) and d not in out:
            if ref is not None and ref.sharing and ref.parties_for_domain(d):
                continue
            out.append(d)
    return out


def data_out(ev: Event, internal_domains: Sequence[str], ref: Any = None) -> bool:
    """Whether the event moves data off the estate's systems: copy to removable media, upload,
    download/export, print, share, or a message with attachments to someone outside (registered
    sharing partners excepted when ``ref`` is given)."""
    if ev.kind in DATA_OUT_KINDS:
        return True
    return ev.kind == "message" and attachments(ev) > 0 and bool(external_recipients(ev, internal_domains, ref))


def departing(person: Any, ts: float, before_s: float, after_s: float, notice_s: float) -> bool:
    """Whether ``ts`` is inside the person's departure window: from ``before_s`` before the notice date
    to ``after_s`` after the leave date (``notice_s`` stands in for whichever of the two is unknown)."""
    if person is None:
        return False
    start, end = person.notice_at, person.left_at
    if start is None and end is None:
        return False
    start = start if start is not None else end - notice_s
    end = end if end is not None else start + notice_s
    return start - before_s <= ts <= end + after_s


class Daily:
    """Once-per-day de-duplication in state: ``{"d": day, "k": [keys already signalled today]}``."""

    @staticmethod
    def first(st: dict[str, Any], ts: float, key: str, cap: int = 32) -> bool:
        day = day_of(ts)
        if st.get("d") != day:
            if st.get("d") is not None and day < st["d"]:
                return False  # a late event of a day already passed: its signals were decided then
            st["d"], st["k"] = day, []
        keys: list[str] = st["k"]
        if key in keys:
            return False
        if len(keys) < cap:
            keys.append(key)
        return True
