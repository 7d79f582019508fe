"""host_ownership: a logon to a host assigned to someone else, and mail sent from this person's account
on someone else's host.

Who a host belongs to comes from the staff directory (``primary_hosts``, the asset register), else
from reference kind ``host``: the hosts one person dominates, learned across people from the event
archive by :mod:`detectors.peer_profile` (a site without an asset register, or one that lags). A host
this person has themselves logged on to on at least ``learned_days`` separate days is theirs too
(hot desks, a register that lags a move), learned in a small table of at most ``max_hosts`` hosts
(the least used go first). Signals:

``others_host_logon``  a logon to a host assigned to another person
``others_host_mail``   a message sent from this account on a host assigned to another person (the
                       account being used by someone else, or the person at someone else's desk)

Each (reason, host) signals at most once per ``visit_s`` (4 h) block of the day: going back to a
colleague's machine hours later (a masquerader collecting a keylogger's logs) is new evidence.

State (about 150 bytes): learned hosts ``{host: [days, last day]}``, the day and what it signalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .signal import Daily, Indicator, day_of


@dataclass(frozen=True)
class HostOwnershipConfig(DetectorConfig):
    learned_days: int = 5
    """Days a person logs on to a host before it is taken as theirs."""
    visit_s: int = 4 * 3600
    """Signals for the same host and reason at most once per this (a return visit hours later is new evidence)."""
    max_hosts: int = 6
    """Learned hosts kept per person."""
    weights: dict[str, float] = field(default_factory=lambda: {"others_host_logon": 20.0, "others_host_mail": 20.0})


class HostOwnership(Indicator):
    id = "host_ownership"
    version = 1
    summary = "Signals logons to, and mail sent from, a host assigned to someone else."
    Config = HostOwnershipConfig
    config: HostOwnershipConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset({"logon", "message"}), fields=("host_id",))

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        ref = self.ref
        st: dict[str, Any] | None = state
        out: list[Any] = []
        for ev in events:
            host = (ev.host_id or "").lower()
            if not host:
                continue
            if ev.kind == "logon":
                if st is None:
                    st = {"h": {}}
                self._learn(st["h"], host, day_of(ev.ts))
            owner = ref.host_owner(host)
            if owner is None or owner == subject:
                continue
            learned = st["h"].get(host) if st is not None else None
            if learned is not None and learned[0] >= cfg.learned_days:
                continue
            reason = "others_host_logon" if ev.kind == "logon" else "others_host_mail"
            if st is None:
                st = {"h": {}}
            if Daily.first(st, ev.ts, f"{reason}|{host}|{int(ev.ts // cfg.visit_s)}", 16):
                what = "logged on to" if ev.kind == "logon" else "sent a message from"
                person = ref.staff.get(owner)
                assigned = person is not None and any(h.lower() == host for h in person.primary_hosts)
                whose = ("assigned to another person (staff primary_hosts)" if assigned
                         else "another person's dedicated machine (learned, reference kind host)")
                out.append(self.signal(ev, reason, self.weight(reason), f"{what} host {host[:40]}, {whose}"))
        return st, out

    def _learn(self, hosts: dict[str, list[int]], host: str, day: int) -> None:
        rec = hosts.get(host)
        if rec is None:
            if len(hosts) >= self.config.max_hosts:
                weakest = min(hosts, key=lambda h: (hosts[h][0], hosts[h][1], h))
                del hosts[weakest]
            hosts[host] = [1, day]
        elif day > rec[1]:
            rec[0] = min(rec[0] + 1, 10_000)
            rec[1] = day
