"""media_volume: more files to removable media, or more attachments mailed outside, in a day than the
person usually moves; executables and archives copied to removable media.

Per channel (``removable_media``: files copied, one per event; ``attachments``: attachments on
messages to a domain outside ``internal_domains``), the day's count is compared, as it grows, with the
person's usual day: an exponentially weighted mean (``alpha``) of their counts on the days they used
that channel. Until they have ``min_use_days`` such days, their peer group's usual day stands in for it
(``media_day`` of reference kind ``peer``, learned from the archive by :mod:`detectors.peer_profile`:
the group's mean count over its members' days of use), and without one ``default_day_count``. Once the
person's own usual day is established, a day must also reach ``peer_ratio`` x the peers' usual day
(0: not asked), so one who has only ever copied a file or two is not flagged for a day their whole
team does routinely. A day reaching both ``min_count`` and ``ratio`` x the usual day signals
``<channel>_volume`` once, weighted ``weights[...] x min(3, count / limit)``.
A copy to removable media of a file whose extension is in ``executables`` or ``archives`` signals
``executable_to_media`` / ``archive_to_media`` once per day each.

State (under 100 bytes): today's day number and counts, per channel the usual day and how many use
days it is built on, and which signals today already gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .signal import Indicator, attachments, day_of, extension, external_recipients

CHANNELS = ("removable_media", "attachments")


@dataclass(frozen=True)
class MediaVolumeConfig(DetectorConfig):
    alpha: float = 0.2
    """Weight of a new use-day in the person's usual day (exponentially weighted mean)."""
    ratio: float = 3.0
    """A day at this many times the usual day (and at least `min_count`) signals."""
    min_count: int = 6
    """Fewest copies or attachments in a day that can signal."""
    min_use_days: int = 3
    """Use days before the person's own usual day is used (`default_day_count`, or peers', until then)."""
    default_day_count: float = 3.0
    """The usual day while the person has fewer than ``min_use_days`` days and no peer baseline says."""
    peer_ratio: float = 2.0
    """Once the person has a usual day of their own, a day must also reach this many times the peers'
    usual day (0: not checked)."""
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    executables: tuple[str, ...] = ("exe", "msi", "dll", "bat", "cmd", "ps1", "vbs", "js", "jar", "scr", "com",
                                    "sh", "py", "hta", "lnk")
    """File extensions of tools: one copied to removable media signals on its own."""
    archives: tuple[str, ...] = ("zip", "7z", "rar", "tar", "gz", "tgz", "bz2", "xz", "iso", "cab", "img")
    """File extensions of archives: one copied to removable media signals on its own."""
    weights: dict[str, float] = field(default_factory=lambda: {
        "removable_media_volume": 10.0, "attachments_volume": 8.0, "executable_to_media": 16.0,
        "archive_to_media": 6.0})


class MediaVolume(Indicator):
    id = "media_volume"
    version = 1
    summary = ("Signals a day of unusually many removable-media copies or outside attachments, and tools or "
               "archives copied to media.")
    Config = MediaVolumeConfig
    config: MediaVolumeConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset({"removable_media", "message"}))

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        st: dict[str, Any] | None = state
        out: list[Any] = []
        peer: Any = False  # not looked up yet
        for ev in events:
            if ev.kind == "removable_media":
                channel, n = 0, 1
            else:
                n = attachments(ev)
                if n <= 0 or not external_recipients(ev, cfg.internal_domains, self.ref):
                    continue
                channel = 1
            if st is None:
                st = {"d": day_of(ev.ts), "c": [0, 0], "u": [[0.0, 0], [0.0, 0]], "s": 0}
            day = day_of(ev.ts)
            if day > st["d"]:
                self._close_day(st)
                st["d"], st["c"], st["s"] = day, [0, 0], 0
            elif day < st["d"]:
                continue  # a late event of a day already closed (its count was folded)
            st["c"][channel] += n
            count = st["c"][channel]
            bit = 1 << channel
            if st["s"] & bit or count < cfg.min_count:
                usual = limit = 0.0
            else:
                if peer is False:
                    peer = self._peer(subject)
                usual, days = st["u"][channel]
                peers = peer[channel] if peer is not None else None
                if days >= cfg.min_use_days:
                    base, whose = usual, "own"
                    limit = max(float(cfg.min_count), cfg.ratio * base)
                    if peers and cfg.peer_ratio > 0:
                        limit = max(limit, cfg.peer_ratio * peers)
                elif peers:
                    base, whose = max(usual, peers), "peers'"
                    limit = max(float(cfg.min_count), cfg.ratio * base)
                else:
                    base, whose = max(usual, cfg.default_day_count), "default"
                    limit = max(float(cfg.min_count), cfg.ratio * base)
            reason = f"{CHANNELS[channel]}_volume"
            if limit and count >= limit:
                st["s"] |= bit
                w = self.weight(reason) * min(3.0, count / limit)
                what = "files copied to removable media" if channel == 0 else "attachments mailed outside"
                out.append(self.signal(ev, reason, w, f"{count} {what} today; usual day {base:.1f} "
                                                      f"({whose}; limit {limit:.0f})"))
            if channel == 0:
                ext = extension(ev)
                if ext:
                    for reason, kinds, bit in (("executable_to_media", cfg.executables, 4),
                                               ("archive_to_media", cfg.archives, 8)):
                        if ext in kinds and not st["s"] & bit:
                            st["s"] |= bit
                            out.append(self.signal(ev, reason, self.weight(reason),
                                                   f"a .{ext} file copied to removable media"))
        return st, out

    def _peer(self, subject: str) -> tuple[float, ...] | None:
        """The person's peer group's usual day per channel (``media_day``), if known."""
        ref = self.ref
        if not ref.peers:
            return None
        person = ref.staff.get(subject)
        group = person.peer_group if person is not None else None
        peer = ref.peers.get(group) if group else None
        if peer is None or len(peer.media_day) < len(CHANNELS):
            return None
        return peer.media_day

    def _close_day(self, st: dict[str, Any]) -> None:
        alpha = self.config.alpha
        for channel in (0, 1):
            c = st["c"][channel]
            if c <= 0:
                continue
            usual, days = st["u"][channel]
            a = max(alpha, 1.0 / (days + 1))  # a plain average while young
            st["u"][channel] = [round(usual + a * (c - usual), 3), min(days + 1, 10_000)]
