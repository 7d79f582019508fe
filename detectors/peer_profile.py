"""What a peer group commonly uses, its usual day of removable media and attachments, and which hosts
are someone's dedicated machine: learned across people from the event archive.

The per-person detectors cannot see other people's events, so these are group- and host-keyed
computations like :class:`detectors.peers.PeerAggregator`, pure (no I/O): a builder is fed the
archive's events (``custodes reference peers``, or the generator's history before its period) and
returns reference records that every worker then reads:

* per peer group (``team/role``), added to its ``peer`` record:

  ``common``        a Bloom filter of the :mod:`detectors.first_use` keys (``<kind>:<value>``: a
                    dataset, an outside mail domain, an upload destination, a host, removable media at
                    all) that at least ``max(common_members, common_share x members)`` distinct members
                    used, and of those that as large a share of the whole staff used (the suppliers
                    everyone mails are no one's rare find, however small their team); 16 bits per key
                    (about 0.5 % false "common"), ``common_hashes`` hashes
  ``media_day``     the group's usual day on each :mod:`detectors.media_volume` channel: files copied
                    to removable media, attachments mailed outside; the mean count over the members'
                    days of use (0 where nobody used it)

* per host, a ``host`` record ``{"host", "owner", "days", "share"}`` when one person logged on to it on
  at least ``host_min_days`` days and on at least ``host_share`` of all the person-days anyone logged on
  to it: that person's dedicated machine (:mod:`detectors.host_ownership` then notices someone else
  on it). Shared terminals and hot desks (no one person dominates) get none.

Bounded: per group and key at most the threshold's number of member hashes; per host and person a day
count and the last day; per person, day and channel one count while the day is open (days are
folded as the archive moves past them). Only hashed user ids are kept for the groups; host records
name the owner, as the asset register does.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .event import Event
from .first_use import positions, values
from .signal import attachments, day_of, external_recipients

MEDIA_CHANNELS = ("removable_media", "attachments")


def bloom(keys: Sequence[str], hashes: int = 3, bits_per_key: int = 16) -> tuple[bytes, int]:
    """A Bloom filter of ``keys`` (as :func:`detectors.first_use.contains` reads it) and its hashes."""
    bits = max(64, math.ceil(len(keys) * bits_per_key / 64) * 64)
    out = bytearray(bits // 8)
    for key in keys:
        for p in positions(key, bits, hashes):
            out[p >> 3] |= 1 << (p & 7)
    return bytes(out), hashes


class PeerProfiler:
    """Fed ``add(event, group)`` in (roughly) time order; ``peer_extras()`` and ``host_records()`` at the end."""

    def __init__(self, members: Mapping[str, int], reference: Any, *, common_members: int = 3,
                 common_share: float = 0.1, hashes: int = 3,
                 internal_domains: Sequence[str] = ("police.uk", "pnn.police.uk"),
                 host_min_days: int = 5, host_share: float = 0.8) -> None:
        self.members = members
        self.ref = reference
        self.common_members, self.common_share, self.hashes = common_members, common_share, hashes
        self.internal_domains = tuple(internal_domains)
        self.host_min_days, self.host_share = host_min_days, host_share
        self._users: dict[str, dict[str, set[str]]] = {}
        """group -> key -> hashed members who used it (at most the group's threshold)."""
        self._everyone: dict[str, set[str]] = {}
        """key -> hashed users of any group who used it (at most the whole staff's threshold)."""
        self._org_threshold = max(common_members, math.ceil(common_share * sum(members.values())))
        self._days: dict[tuple[str, str, int], list[int]] = {}
        """(group, user hash, day) -> [files to media, attachments outside] of an open day."""
        self._media: dict[str, list[float]] = {}
        """group -> [media total, media days, attachments total, attachment days] of closed days."""
        self._hosts: dict[str, dict[str, list[int]]] = {}
        """host -> person -> [days logged on, last day]."""
        self._newest_day: int | None = None

    def threshold(self, group: str) -> int:
        return max(self.common_members, math.ceil(self.common_share * self.members.get(group, 0)))

    def add(self, ev: Event, group: str | None) -> None:
        day = day_of(ev.ts)
        if self._newest_day is None or day > self._newest_day:
            self._newest_day = day
            self._fold(day - 1)
        if ev.kind == "logon" and ev.host_id:
            per = self._hosts.setdefault(ev.host_id.lower(), {})
            rec = per.get(ev.user_id)
            if rec is None:
                per[ev.user_id] = [1, day]
            elif day > rec[1]:
                rec[0] += 1
                rec[1] = day
        if group is None:
            return
        user = hashlib.blake2b(ev.user_id.encode(), digest_size=6).hexdigest()
        found = values(ev, self.internal_domains, self.ref)
        if found:
            keys = self._users.setdefault(group, {})
            most = self.threshold(group)
            everyone, org = self._everyone, self._org_threshold
            for kind, value in found:
                key = f"{kind}:{value}"
                who = keys.setdefault(key, set())
                if len(who) < most:
                    who.add(user)
                who = everyone.setdefault(key, set())
                if len(who) < org:
                    who.add(user)
        if ev.kind == "removable_media":
            self._days.setdefault((group, user, day), [0, 0])[0] += 1
        elif ev.kind == "message":
            n = attachments(ev)
            if n > 0 and external_recipients(ev, self.internal_domains, self.ref):
                self._days.setdefault((group, user, day), [0, 0])[1] += n

    def _fold(self, upto: int | None) -> None:
        """Fold the person-days up to ``upto`` (all with None) into the groups' usual days."""
        for key in [k for k in self._days if upto is None or k[2] <= upto]:
            counts = self._days.pop(key)
            acc = self._media.setdefault(key[0], [0.0, 0, 0.0, 0])
            for channel, n in enumerate(counts):
                if n > 0:
                    acc[2 * channel] += n
                    acc[2 * channel + 1] += 1

    def peer_extras(self) -> dict[str, dict[str, Any]]:
        """Per group, the fields to add to its ``peer`` record: ``common``, ``common_hashes``, ``media_day``."""
        self._fold(None)
        out: dict[str, dict[str, Any]] = {}
        org = {k for k, who in self._everyone.items() if len(who) >= self._org_threshold}
        for group in sorted(set(self._users) | set(self._media)):
            most = self.threshold(group)
            common = sorted(org | {k for k, who in self._users.get(group, {}).items() if len(who) >= most})
            extras: dict[str, Any] = {}
            if common:
                bits, hashes = bloom(common, self.hashes)
                extras["common"] = base64.b64encode(bits).decode()
                extras["common_hashes"] = hashes
            acc = self._media.get(group)
            if acc is not None:
                extras["media_day"] = [round(acc[0] / acc[1], 3) if acc[1] else 0.0,
                                       round(acc[2] / acc[3], 3) if acc[3] else 0.0]
            out[group] = extras
        return out

    def host_records(self) -> list[dict[str, Any]]:
        """``host`` reference records: each host one person dominates (see the module docstring)."""
        out = []
        for host in sorted(self._hosts):
            per = self._hosts[host]
            total = sum(r[0] for r in per.values())
            owner, (days, _) = max(per.items(), key=lambda kv: (kv[1][0], kv[0]))
            if days >= self.host_min_days and days >= self.host_share * total:
                out.append({"host": host, "owner": owner, "days": days, "share": round(days / total, 3)})
        return out
