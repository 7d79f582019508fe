"""off_hours: activity at hours the person (and their peers) do not work, at small counts.

Per person, a profile of 168 local hours of the week (Monday 00:00 is 0): for each, on how many
separate weeks the person was active in that hour (a byte each, at most 255). An hour of activity is
*usual* when, in the profile, the person was active in that hour of the week or the hours either side
on at least ``usual_weeks`` weeks, or in that hour of the day (any weekday) or the hours either side
on at least ``usual_days`` days (shift rotas move around the week). Until the person has been active
on ``min_history_days`` days, their own profile is not trusted: the peer group's baseline (reference
kind ``peer``, ``team/role``: mean events per member in that hour) decides, and without one the
site's ``working_hours`` (local, weekdays) do. A person with no history is compared, never skipped.

Signals (weights in ``weights``):

``activity``  the first event in an unusual hour, at most once per ``session_gap_s``
``data``      an event that moves data out (removable media, upload, export, print, share, mail with
              attachments outside) in an unusual hour, once per kind per hour: a single night logon
              with a USB copy gives both
Usual for the peers but not for the person: weights x ``peer_usual_factor``; judged by
``working_hours`` alone (no history, no peer baseline): weights x ``no_baseline_factor``, and
``data`` once per kind per session (``session_gap_s`` from the session's ``activity`` signal) rather
than per hour: with nothing to compare against, a night shift's hourly reports are one piece of
evidence, not one per hour.

State (about 130 bytes, bounded): the profile, raw-deflated in base64 (at most 232 characters,
typically 30-80), the hours of the week added since it was last packed (at most ``PENDING``: packing
costs far more than unpacking, so it is done once per that many active hours, not every hour), the
previous generation's profile once the current one is ``RETENTION_S / 2`` old (so no baseline outlives
the retention window, and at least a year of history is always kept), day counts, the generation's
start (whole seconds), the current hour and what it signalled (the hour's number alone when that is
nothing).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .peers import bucket_of
from .signal import DATA_OUT_KINDS, DAY, RETENTION_S, Indicator, _hour_of_week, data_out, local_hour_of_week

HOURS = 168
PENDING = 8
"""Active hours held unpacked (``a``) before the profile is packed again."""


_COMPRESSOR = zlib.compressobj(9, zlib.DEFLATED, -9, 1)
"""A fresh compressor, never fed: :func:`pack` works on copies (copying it costs ~half of setting one up)."""


def pack(profile: bytes) -> str:
    """A profile -> base64 of its raw deflate stream (most hours of a week are zero: ~30-80 characters).
    A small window and memory level: the input is 168 bytes, and setting up zlib's default 256 KB of
    state is most of the cost of compressing so little."""
    c = _COMPRESSOR.copy()
    return base64.b64encode(c.compress(profile) + c.flush()).decode()


def unpack(text: str) -> bytes:
    """:func:`pack`'s text (or version 1's zlib stream, which begins 0x78) -> the profile."""
    data = base64.b64decode(text)
    if data[:1] == b"\x78":
        return zlib.decompress(data)
    return zlib.decompress(data, -15)


EMPTY = pack(bytes(HOURS))
_UNPACKED: dict[str, bytes] = {}
"""Packed text -> profile, for the texts last read (a profile is repacked once per ``PENDING`` active
hours, so most calls read the same text again); cleared when full."""
_UNPACKED_MAX = 8192


def unpacked(text: str) -> bytes:
    """:func:`unpack`, remembered."""
    profile = _UNPACKED.get(text)
    if profile is None:
        if len(_UNPACKED) >= _UNPACKED_MAX:
            _UNPACKED.clear()
        profile = _UNPACKED[text] = unpack(text)
    return profile


def profile_of(state: dict[str, Any]) -> bytes:
    """The current generation's profile in a state: the packed one plus the hours not yet packed."""
    return bytes(_read(state["p"], state.get("a") or ()))


def _read(packed: str, added: Sequence[int]) -> bytearray:
    """A packed profile plus the hours of the week added since it was packed."""
    profile = bytearray(unpacked(packed))
    for how in added:
        if profile[how] < 255:
            profile[how] += 1
    return profile


@dataclass(frozen=True)
class OffHoursConfig(DetectorConfig):
    timezone: str = "Europe/London"
    min_history_days: int = 10
    """Active days before the person's own profile decides (peers', then `working_hours`, until then)."""
    usual_weeks: int = 2
    """An hour of the week (+-1 h) is usual once the person was active in it on this many weeks."""
    usual_days: int = 4
    """... or in that hour of the day (+-1 h, any weekday) on this many days (rotas move around the week)."""
    working_hours: tuple[int, ...] = (7, 19)
    """Local weekday hours [start, end) that count as usual for someone with no history and no peers."""
    peer_usual_mean: float = 0.02
    """A peer bucket whose mean events per member per hour reaches this is an hour the job works."""
    peer_usual_factor: float = 0.5
    """Weights are multiplied by this when the hour is unusual for the person but usual for their peers."""
    no_baseline_factor: float = 0.5
    """Weight factor while neither the person's history nor a peer baseline exists (working_hours decide)."""
    session_gap_s: int = 4 * 3600
    """An `activity` signal at most once per this many seconds of unusual-hour activity."""
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    weights: dict[str, float] = field(default_factory=lambda: {"activity": 6.0, "data": 14.0})


def _window(profile: bytes | bytearray, how: int) -> int:
    return profile[(how - 1) % HOURS] + profile[how] + profile[(how + 1) % HOURS]


def _by_day(profile: bytes | bytearray, how: int) -> int:
    hod = how % 24
    return sum(profile[d * 24 + h % 24] for d in range(7) for h in (hod - 1, hod, hod + 1))


class OffHours(Indicator):
    id = "off_hours"
    version = 2
    """2: the profile raw-deflated and packed once per ``PENDING`` active hours; without any baseline,
    ``data`` once per kind per session."""
    summary = "Signals activity, and data leaving, at hours the person (or, without history, their peers) never work."
    Config = OffHoursConfig
    config: OffHoursConfig

    def needs(self) -> Needs:
        return Needs()  # every event is activity; nothing to do on a tick

    def process(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        if not events:
            return state, []
        cfg = self.config
        st: dict[str, Any] = state if state is not None else {
            "g": math.floor(events[0].ts), "p": EMPTY, "d": 0, "h": None}
        # the profile is read only when something needs it (a person with history, a late event, a
        # new generation, packing): until then the hours counted are only noted in ``added``
        profile: bytearray | None = None
        added: list[int] = st.get("a") or []
        older = unpacked(st["q"]) if "q" in st else None
        ref = self.ref
        person = ref.staff.get(subject)
        peer = ref.peers.get(person.peer_group) if person is not None and person.peer_group else None
        out: list[Any] = []
        if isinstance(st["h"], int):  # a quiet hour, kept as its number alone
            st["h"] = [st["h"], 0, 0, None]
        tz = cfg.timezone
        floor = math.floor
        generation_s = RETENTION_S / 2
        # judged by working_hours alone while there is no history and no peer baseline (inlined _verdict)
        plain = peer is None
        min_days = cfg.min_history_days
        start_hour, end_hour = self._hours
        w_activity, w_data = self.weight("activity"), self.weight("data")
        internal_domains = cfg.internal_domains
        for ev in events:
            ts = ev.ts
            hour = floor(ts / 3600)
            if ts - st["g"] >= generation_s:  # a new generation: the oldest one goes
                if profile is None:
                    profile = _read(st["p"], added)
                st["q"], st["dq"] = pack(bytes(profile)), st["d"]
                older = bytes(profile)
                profile = bytearray(HOURS)
                added = []
                st["p"] = EMPTY
                st["g"], st["d"] = math.floor(ts), 0
            last = st["h"]
            if last is None or hour > last[0]:
                how = _hour_of_week(int(ts // 900), tz)  # local_hour_of_week, inlined
                if plain and st["d"] + st.get("dq", 0) < min_days:
                    verdict = 0 if how < 120 and start_hour <= how % 24 < end_hour else 3
                else:
                    if profile is None:
                        profile = _read(st["p"], added)
                    verdict = self._verdict(profile, older, st, how, ts, peer)
                new_day = last is None or ts // DAY > (last[0] * 3600) // DAY  # day_of, inlined
                carry = 0
                if (verdict == 3 and last is not None and last[1] == 3 and last[3] is not None
                        and ts - last[3] < cfg.session_gap_s):
                    carry = last[2] & ~1  # judged by working_hours alone: each kind once per session
                st["h"] = last = [hour, verdict, carry, last[3] if last is not None else None]
                if profile is not None and profile[how] < 255:
                    profile[how] += 1
                added.append(how)
                if new_day:
                    st["d"] += 1
            if hour == last[0]:
                verdict = last[1]
            else:  # a late event
                if profile is None:
                    profile = _read(st["p"], added)
                verdict = self._verdict(profile, older, st, local_hour_of_week(ts, cfg.timezone), ts, peer)
            if not verdict:
                continue
            factor = cfg.peer_usual_factor if verdict == 2 else cfg.no_baseline_factor if verdict == 3 else 1.0
            if hour == last[0] and (last[3] is None or ts - last[3] >= cfg.session_gap_s) and not last[2] & 1:
                last[2] |= 1
                last[3] = ts
                out.append(self.signal(ev, "activity", w_activity * factor, self._note(ev, verdict, "activity")))
            kind = ev.kind
            if kind in DATA_OUT_KINDS or (kind == "message" and data_out(ev, internal_domains, ref)):
                bit = 2 << _KIND_BITS.get(ev.kind, 5)
                if hour != last[0] or not last[2] & bit:
                    if hour == last[0]:
                        last[2] |= bit
                    out.append(self.signal(ev, "data", w_data * factor, self._note(ev, verdict, "data")))
        if len(added) >= PENDING:
            st["p"] = pack(bytes(profile if profile is not None else _read(st["p"], added)))
            added = []
        if added:
            st["a"] = added
        else:
            st.pop("a", None)
        if isinstance(st["g"], float):  # version 1 state
            st["g"] = math.floor(st["g"])
        last = st["h"]
        if last is not None:
            if last[3] is not None and last[0] * 3600 - last[3] >= cfg.session_gap_s:
                last[3] = None  # no event still to come can be in that session
            if not last[1] and not last[2] and last[3] is None:
                st["h"] = last[0]
        return st, out

    def _verdict(self, profile: bytearray, older: bytes | None, st: dict[str, Any], how: int, ts: float,
                 peer: Any) -> int:
        """0 usual, 1 unusual, 2 unusual for the person but usual for their peers, 3 unusual against
        ``working_hours`` (no history, no peers)."""
        cfg = self.config
        days = st["d"] + st.get("dq", 0)
        if days >= cfg.min_history_days:
            own = _window(profile, how) + (_window(older, how) if older else 0)
            if own >= cfg.usual_weeks:
                return 0
            if _by_day(profile, how) + (_by_day(older, how) if older else 0) >= cfg.usual_days:
                return 0
            if peer is not None and peer.mean[bucket_of(ts, cfg.timezone)] >= cfg.peer_usual_mean:
                return 2
            return 1
        if peer is not None:
            return 0 if peer.mean[bucket_of(ts, cfg.timezone)] >= cfg.peer_usual_mean else 1
        start, end = self._hours
        hod, dow = how % 24, how // 24
        return 0 if dow < 5 and start <= hod < end else 3

    @cached_property
    def _hours(self) -> tuple[int, int]:
        h = self.config.working_hours
        return (int(h[0]), int(h[1])) if len(h) >= 2 else (7, 19)

    def _note(self, ev: Event, verdict: int, what: str) -> str:
        how = local_hour_of_week(ev.ts, self.config.timezone)
        key = (how, verdict, what, ev.kind if what == "data" else None)
        notes = self._notes
        note = notes.get(key)
        if note is None:
            if len(notes) >= 4096:
                notes.clear()
            note = notes[key] = self._words(how, ev, verdict, what)
        return note

    @cached_property
    def _notes(self) -> dict[tuple[Any, ...], str]:
        """Notes already written, by (hour of the week, verdict, what, the event's kind for data)."""
        return {}

    def _words(self, how: int, ev: Event, verdict: int, what: str) -> str:
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[how // 24]
        seen = "an hour this person rarely or never works" if verdict else ""
        if verdict == 2:
            seen += " (their peers do)"
        elif verdict == 3:
            seen = "outside the usual working hours (no history or peer baseline yet)"
        act = f"{ev.kind.replace('_', ' ')}" if what == "data" else "activity"
        return f"{act} at {day} {how % 24:02d}:00 local, {seen}"


_KIND_BITS = {"removable_media": 0, "web_upload": 1, "export": 2, "print": 3, "share": 4, "message": 5}
