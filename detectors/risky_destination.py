"""risky_destination: visits, uploads and mail to destinations in a risk category — job search,
cloud storage and file sharing, paste and leak sites, hacking tools, personal webmail.

The category of a domain (or of a parent domain) comes from reference kind ``destination``
(config/reference/destinations.jsonl ships a default; sites extend it with their web proxy's
categories). The action is ``visit`` (an event with ``url.domain`` that is not an upload), ``upload``
(an upload, share or export to ``destination.domain``/``url.domain``) or ``mail`` (a message to an
address there; ``mail_attachment`` when it carries attachments). Each (category, action) signals at
most once per day, with the weight ``weights["<category>_<action>"]`` (0: not signalled).

State (about 20 bytes): the day and the (category, action) pairs already signalled that day, as the
bits of one number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .reference_records import DESTINATION_CATEGORIES
from .signal import Indicator, attachments, day_of, domain_of

UPLOADS = frozenset({"web_upload", "share", "export"})
ACTIONS = ("visit", "upload", "mail", "mail_attachment")
BITS = {f"{c}_{a}": 1 << (i * len(ACTIONS) + j) for i, c in enumerate(DESTINATION_CATEGORIES)
        for j, a in enumerate(ACTIONS)}
"""Each (category, action) reason's bit in the day's mask."""


def _weights() -> dict[str, float]:
    return {
        "job_search_visit": 4.0, "job_search_upload": 8.0, "job_search_mail": 4.0, "job_search_mail_attachment": 10.0,
        "cloud_storage_visit": 1.0, "cloud_storage_upload": 18.0, "cloud_storage_mail": 4.0,
        "cloud_storage_mail_attachment": 12.0,
        "paste_leak_visit": 8.0, "paste_leak_upload": 30.0, "paste_leak_mail": 10.0, "paste_leak_mail_attachment": 25.0,
        "hacking_visit": 12.0, "hacking_upload": 20.0, "hacking_mail": 10.0, "hacking_mail_attachment": 20.0,
        "personal_webmail_visit": 0.5, "personal_webmail_upload": 12.0, "personal_webmail_mail": 5.0,
        "personal_webmail_mail_attachment": 16.0,
    }


@dataclass(frozen=True)
class RiskyDestinationConfig(DetectorConfig):
    weights: dict[str, float] = field(default_factory=_weights)


class RiskyDestination(Indicator):
    id = "risky_destination"
    version = 2
    """2: the day's signalled reasons as a bit mask."""
    summary = "Signals visits, uploads and mail to job-search, file-sharing, paste/leak, hacking and webmail sites."
    Config = RiskyDestinationConfig
    config: RiskyDestinationConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset({"message", "other", "web_upload", "share", "export", "logon", "record_access",
                                      "removable_media", "print"}))

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        ref = self.ref
        if not ref.destinations:
            return state, []
        st: dict[str, Any] | None = state
        out: list[Any] = []
        for ev in events:
            for category, action, domain in self._hits(ev, ref):
                reason = f"{category}_{action}"
                w = self.weight(reason)
                if w <= 0:
                    continue
                if st is None:
                    st = {}
                if _first_today(st, ev.ts, reason):
                    note = (f"{action.replace('_', ' ')} {domain[:60]} ({category.replace('_', ' ')}, "
                            "reference kind destination)")
                    out.append(self.signal(ev, reason, w, note))
        return st, out

    def _hits(self, ev: Event, ref: Any) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        if ev.kind == "message" and ev.email_to:
            action = "mail_attachment" if attachments(ev) > 0 else "mail"
            for address in ev.email_to:
                d = domain_of(address)
                c = ref.category_of(d)
                if c is not None and d is not None:
                    found.append((c, action, d))
                    break
        if ev.kind in UPLOADS:
            d = ev.destination_domain or ev.url_domain
            c = ref.category_of(d)
            if c is not None and d is not None:
                found.append((c, "upload", d))
        elif ev.url_domain:
            c = ref.category_of(ev.url_domain)
            if c is not None:
                found.append((c, "visit", ev.url_domain))
        return found


def _first_today(st: dict[str, Any], ts: float, reason: str) -> bool:
    """Whether ``reason`` is not yet signalled on ``ts``'s day (and mark it); a late event of a day
    already passed is not signalled (its day was decided then)."""
    day = day_of(ts)
    if "k" in st:  # version 1: a list of reasons
        st["m"] = sum(BITS.get(k, 0) for k in st.pop("k"))
    if st.get("d") != day:
        if st.get("d") is not None and day < st["d"]:
            return False
        st["d"], st["m"] = day, 0
    bit = BITS.get(reason, 0)
    if not bit or st.get("m", 0) & bit:
        return False
    st["m"] = st.get("m", 0) | bit
    return True
