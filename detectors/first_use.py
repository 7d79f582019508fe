"""first_use: the first time a person uses removable media, mails an outside domain, uploads to a
destination, logs on to a host or touches a dataset — new to them, after they have a history.

"New" is measured against the person's own history in a Bloom filter (``bloom_bits`` bits, ``hashes``
hash functions over ``<kind>:<value>``): bounded whatever the history, no values kept, and a false
"seen before" (so a missed first use) with probability about (1 - e^(-hashes x n / bits)) ^ hashes:
1 % at 85 values in 512 bits with 3 hashes, 3 % at 60 (a site with more varied mail raises it).
Nothing is signalled until the person has been seen for ``learn_days`` (a new starter's every host
and dataset is new; their first weeks build the filter).

Kinds (weights in ``weights``): ``removable_media`` (first use of removable media at all),
``email_domain`` (a recipient domain outside ``internal_domains``, not a registered sharing
partner's), ``upload_destination`` (the domain of an upload, share or export destination),
``host`` (a logon's host), ``dataset``.

State (about 130 bytes): the filter as base64 (88 characters at 512 bits), the previous
generation's once the current one is ``RETENTION_S / 2`` old (a value learned more than the retention
window ago is forgotten: its next use is new again), and the first-seen time.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .signal import DAY, RETENTION_S, Indicator, domain_of, internal

UPLOAD_KINDS = frozenset({"web_upload", "share", "export"})


@dataclass(frozen=True)
class FirstUseConfig(DetectorConfig):
    learn_days: float = 14.0
    bloom_bits: int = 512
    hashes: int = 3
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    weights: dict[str, float] = field(default_factory=lambda: {
        "removable_media": 10.0, "email_domain": 2.0, "upload_destination": 8.0, "host": 6.0, "dataset": 2.0})


@lru_cache(maxsize=16384)
def positions(key: str, bits: int, hashes: int) -> tuple[int, ...]:
    """Bit positions of a key (cached: the same datasets, hosts and domains recur across people)."""
    digest = hashlib.blake2b(key.encode(), digest_size=4 * hashes).digest()
    return tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") % bits for i in range(hashes))


class FirstUse(Indicator):
    id = "first_use"
    version = 1
    summary = "Signals a person's first removable media, outside mail domain, upload destination, host or dataset."
    Config = FirstUseConfig
    config: FirstUseConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset({"removable_media", "message", "logon", "record_access", *UPLOAD_KINDS}))

    def values(self, ev: Event) -> Iterator[tuple[str, str]]:
        kind = ev.kind
        if kind == "removable_media":
            yield "removable_media", "any"
        if kind == "message" and ev.email_to:
            seen: set[str] = set()
            for address in ev.email_to:
                d = domain_of(address)
                if d and d not in seen and not internal(d, self.config.internal_domains) \
                        and not self.ref.parties_for_domain(d):
                    seen.add(d)
                    yield "email_domain", d
        if kind in UPLOAD_KINDS:
            d = ev.destination_domain or ev.url_domain
            if d:
                yield "upload_destination", d.lower()
        if kind == "logon" and ev.host_id:
            yield "host", ev.host_id.lower()
        if ev.dataset and kind in ("record_access", "export"):
            yield "dataset", ev.dataset

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        bits, k = max(8, cfg.bloom_bits), max(1, cfg.hashes)
        st: dict[str, Any] | None = state
        cur: bytearray | None = None
        old: bytes | None = None
        out: list[Any] = []
        for ev in events:
            found = list(self.values(ev))
            if not found:
                continue
            if st is None:
                st = {"f": ev.ts, "g": ev.ts, "b": None}
            if cur is None:
                cur = bytearray(base64.b64decode(st["b"])) if st.get("b") else bytearray(bits // 8)
                old = base64.b64decode(st["o"]) if st.get("o") else None
            if ev.ts - st["g"] >= RETENTION_S / 2:
                st["o"] = base64.b64encode(bytes(cur)).decode()
                old, cur, st["g"] = bytes(cur), bytearray(bits // 8), ev.ts
            learning = ev.ts - st["f"] < cfg.learn_days * DAY
            for kind, value in found:
                pos = positions(f"{kind}:{value}", bits, k)
                known = all(cur[p >> 3] >> (p & 7) & 1 for p in pos) or (
                    old is not None and all(old[p >> 3] >> (p & 7) & 1 for p in pos))
                for p in pos:
                    cur[p >> 3] |= 1 << (p & 7)
                if not known and not learning:
                    out.append(self.signal(ev, kind, self.weight(kind), _note(kind, value)))
        if st is not None and cur is not None:
            st["b"] = base64.b64encode(bytes(cur)).decode()
        return st, out


def _note(kind: str, value: str) -> str:
    if kind == "removable_media":
        return "first use of removable media in this person's history"
    what = {"email_domain": "mail to", "upload_destination": "upload to", "host": "logon to host",
            "dataset": "use of dataset"}[kind]
    return f"first {what} {value[:60]} in this person's history"
