"""departing_user: data leaving, and any activity while suspended, around a person's departure.

The departure window runs from ``before_days`` before the notice (resignation) date to ``after_days``
after the leave date in the staff directory (``notice_days`` stands in for the date that is unknown).
Inside it, an event of ``kinds`` that moves data out (copy to removable media, upload, mail with
attachments outside ``internal_domains``) signals ``data_out_departing`` once per kind per day.
Activity while ``suspended`` signals ``active_while_suspended`` once per day. The window also
multiplies every signal's weight in :mod:`detectors.person_risk` (its own ``departing_*`` settings).
Activity after the leave date itself is :mod:`detectors.leaver_activity`'s alert.

State: the day and what it signalled (none outside the window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig
from .event import Event
from .signal import DAY, Daily, Indicator, data_out, departing


@dataclass(frozen=True)
class DepartingUserConfig(DetectorConfig):
    before_days: float = 14.0
    """The departure window opens this many days before the notice date."""
    after_days: float = 30.0
    """... and closes this many days after the leave date."""
    notice_days: float = 30.0
    """Notice period assumed when only one of notice date and leave date is known."""
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    kinds: tuple[str, ...] = ("removable_media", "web_upload", "message")
    """Ways out that count in the window (report downloads and shares are everyday work for many)."""
    weights: dict[str, float] = field(default_factory=lambda: {"data_out_departing": 5.0,
                                                               "active_while_suspended": 25.0})


class DepartingUser(Indicator):
    id = "departing_user"
    version = 1
    summary = "Signals data leaving in the window around a notice/leave date, and activity while suspended."
    Config = DepartingUserConfig
    config: DepartingUserConfig

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        person = self.ref.staff.get(subject)
        if person is None or (person.notice_at is None and person.left_at is None and not person.suspended):
            return state, []
        st: dict[str, Any] | None = state
        out: list[Any] = []
        for ev in events:
            if person.suspended and (person.suspended_at is None or ev.ts >= person.suspended_at):
                st = st if st is not None else {}
                if Daily.first(st, ev.ts, "suspended"):
                    out.append(self.signal(ev, "active_while_suspended", self.weight("active_while_suspended"),
                                           f"{ev.kind.replace('_', ' ')} while suspended (staff directory)"))
            inside = departing(person, ev.ts, cfg.before_days * DAY, cfg.after_days * DAY, cfg.notice_days * DAY)
            if inside and ev.kind in cfg.kinds and data_out(ev, cfg.internal_domains, self.ref):
                st = st if st is not None else {}
                if Daily.first(st, ev.ts, ev.kind):
                    out.append(self.signal(ev, "data_out_departing", self.weight("data_out_departing"),
                                           f"{ev.kind.replace('_', ' ')} inside the departure window "
                                           "(notice/leave date, staff directory)"))
        return st, out
