"""first_use: the first time a person uses removable media, mails an outside domain, uploads to a
destination, logs on to a host or touches a dataset — new to them, after they have a history, and
weighted by how rare it is among their peers.

"New" is measured against the person's own history in a Bloom filter (``bloom_bits`` bits, ``hashes``
hash functions over ``<kind>:<value>``): bounded whatever the history, no values kept, and a false
"seen before" (so a missed first use) with probability about (1 - e^(-hashes x n / bits)) ^ hashes:
1 % at 85 values in 512 bits with 3 hashes, 3 % at 60 (a site with more varied mail raises it).
Nothing is signalled until the person has been seen for ``learn_days`` (a new starter's every host
and dataset is new; their first weeks build the filter).

Rarity among peers: the person's peer group (``team/role``, reference kind ``peer``) may carry a
Bloom filter of the keys at least ``common_members`` of its members used (``common``, built from the
event archive by :mod:`detectors.peer_profile`). A first use of something common among the peers
(the team's datasets, the suppliers everyone mails) weighs ``peer_common_factor`` x its weight (0:
not signalled); new to the person AND rare among their peers weighs in full. Without a peer profile
every first use weighs in full.

Kinds (weights in ``weights``): ``removable_media`` (first use of removable media at all),
``email_domain`` (a recipient domain outside ``internal_domains``, not a registered sharing
partner's), ``upload_destination`` (the domain of an upload, share or export destination),
``host`` (a logon's host), ``dataset``.

State (about 110 bytes): the filter as base64 (88 characters at 512 bits), the previous
generation's once the current one is ``RETENTION_S / 2`` old (a value learned more than the retention
window ago is forgotten: its next use is new again), the first-seen time (whole seconds) and, once it
differs from it, the current generation's start.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .signal import DAY, RETENTION_S, Indicator, domain_of, internal

UPLOAD_KINDS = frozenset({"web_upload", "share", "export"})
KINDS = frozenset({"removable_media", "message", "logon", "record_access", *UPLOAD_KINDS})
"""The event kinds that can carry a first use."""


@dataclass(frozen=True)
class FirstUseConfig(DetectorConfig):
    learn_days: float = 14.0
    """Nothing is signalled in a person's first days: their history is being learned."""
    bloom_bits: int = 512
    """Size of the Bloom filter of values seen (bits)."""
    hashes: int = 3
    """Hash functions of the Bloom filter."""
    peer_common_factor: float = 0.0
    """Weight factor for a first use of something common among the person's peers (0: no signal)."""
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    weights: dict[str, float] = field(default_factory=lambda: {
        "removable_media": 10.0, "email_domain": 2.0, "upload_destination": 8.0, "host": 6.0, "dataset": 2.0})


@lru_cache(maxsize=16384)
def positions(key: str, bits: int, hashes: int) -> tuple[int, ...]:
    """Bit positions of a key (cached: the same datasets, hosts and domains recur across people)."""
    digest = hashlib.blake2b(key.encode(), digest_size=4 * hashes).digest()
    return tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") % bits for i in range(hashes))


def contains(bits: bytes, key: str, hashes: int) -> bool:
    """Whether a Bloom filter (as :func:`positions` sets bits) holds ``key``."""
    if not bits:
        return False
    return all(bits[p >> 3] >> (p & 7) & 1 for p in positions(key, len(bits) * 8, hashes))


def values(ev: Event, internal_domains: Sequence[str], ref: Any) -> list[tuple[str, str]]:
    """The ``(kind, value)`` pairs an event uses (what can be new to a person)."""
    kind = ev.kind
    if kind == "record_access":
        return [("dataset", ev.dataset)] if ev.dataset else []
    if kind == "logon":
        return [("host", ev.host_id.lower())] if ev.host_id else []
    if kind == "removable_media":
        return [("removable_media", "any")]
    out: list[tuple[str, str]] = []
    if kind == "message":
        if ev.email_to:
            for address in ev.email_to:
                d = domain_of(address)
                if d and not internal(d, internal_domains) and not ref.parties_for_domain(d) \
                        and ("email_domain", d) not in out:
                    out.append(("email_domain", d))
        return out
    if kind in UPLOAD_KINDS:
        d = ev.destination_domain or ev.url_domain
        if d:
            out.append(("upload_destination", d.lower()))
        if kind == "export" and ev.dataset:
            out.append(("dataset", ev.dataset))
    return out


class FirstUse(Indicator):
    id = "first_use"
    version = 2
    """2: rarity among peers (``peer_common_factor``); state times in whole seconds."""
    summary = "Signals a person's first removable media, outside mail domain, upload destination, host or dataset."
    Config = FirstUseConfig
    config: FirstUseConfig

    def needs(self) -> Needs:
        return Needs(kinds=KINDS)

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        bits, k = max(8, cfg.bloom_bits), max(1, cfg.hashes)
        ref = self.ref
        internal_domains = cfg.internal_domains
        st: dict[str, Any] | None = state
        cur: bytes | bytearray | None = None  # bytes (shared, decoded once) until a bit is set
        old: bytes | None = None
        changed = False
        decoded = self._decoded
        keyed = self._keyed
        peer: Any = False  # not looked up yet
        out: list[Any] = []
        learn_s = cfg.learn_days * DAY
        generation_s = RETENTION_S / 2
        for ev in events:
            if ev.kind == "record_access":  # values(), inlined for the commonest kind
                dataset = ev.dataset
                if not dataset:
                    continue
                found = [("dataset", dataset)]
            else:
                found = values(ev, internal_domains, ref)
                if not found:
                    continue
            ts = ev.ts
            if st is None:
                st = {"f": math.floor(ts), "b": None}
            if cur is None:
                text = st.get("b")
                if text:
                    cur = decoded.get(text)
                    if cur is None:
                        if len(decoded) >= 4096:
                            decoded.clear()
                        cur = decoded[text] = base64.b64decode(text)
                else:
                    cur = bytearray(bits // 8)
                old = base64.b64decode(st["o"]) if st.get("o") else None
            if ts - st.get("g", st["f"]) >= generation_s:
                st["o"] = st["b"] if st.get("b") and not changed else base64.b64encode(bytes(cur)).decode()
                old, cur, st["g"] = bytes(cur), bytearray(bits // 8), math.floor(ts)
                changed = True
            learning = ts - st["f"] < learn_s
            for kind, value in found:
                key = f"{kind}:{value}"
                masks = keyed.get(key)
                if masks is None:
                    if len(keyed) >= 16384:
                        keyed.clear()
                    masks = keyed[key] = tuple((p >> 3, 1 << (p & 7)) for p in positions(key, bits, k))
                known = True
                for i, m in masks:
                    if not cur[i] & m:
                        known = False
                        if not changed:
                            cur = bytearray(cur)  # the decoded filter is shared: copy before the first change
                            changed = True
                        cur[i] |= m
                if not known and old is not None:
                    known = all(old[i] & m for i, m in masks)
                if known or learning:
                    continue
                if peer is False:
                    peer = self._peer(subject)
                weight = self.weight(kind)
                common = peer is not None and contains(peer.common, key, peer.common_hashes)
                if common:
                    weight *= cfg.peer_common_factor
                    if weight <= 0:
                        continue
                out.append(self.signal(ev, kind, weight, _note(kind, value, common)))
        if st is not None and cur is not None and changed:
            st["b"] = base64.b64encode(bytes(cur)).decode()
        if st is not None and "f" in st and isinstance(st["f"], float):  # state of version 1: float times
            st["f"] = math.floor(st["f"])
            if "g" in st:
                st["g"] = math.floor(st["g"])
                if st["g"] == st["f"]:
                    del st["g"]
        return st, out

    @cached_property
    def _decoded(self) -> dict[str, bytes]:
        """Filters decoded from their base64 text (the same text recurs batch after batch)."""
        return {}

    @cached_property
    def _keyed(self) -> dict[str, tuple[tuple[int, int], ...]]:
        """``<kind>:<value>`` -> its bits at this detector's size, each as (byte index, bit mask)."""
        return {}

    def _peer(self, subject: str) -> Any:
        """The person's peer baseline if it carries a ``common`` filter, else None."""
        ref = self.ref
        if not ref.peers:
            return None
        person = ref.staff.get(subject)
        group = person.peer_group if person is not None else None
        peer = ref.peers.get(group) if group else None
        return peer if peer is not None and peer.common else None


def _note(kind: str, value: str, common: bool = False) -> str:
    among = " (common among their peers)" if common else ""
    if kind == "removable_media":
        return f"first use of removable media in this person's history{among}"
    what = {"email_domain": "mail to", "upload_destination": "upload to", "host": "logon to host",
            "dataset": "use of dataset"}[kind]
    return f"first {what} {value[:60]} in this person's history{among}"
