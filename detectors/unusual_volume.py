"""unusual_volume: a user far busier than usual for that hour, or working at hours they never work,
compared with their own baseline and, when available, their peer group's.

Per user, activity is counted per hour of event time; when an hour closes (``grace_s`` after its
end) its count, zeros included, is folded into an exponentially weighted mean and variance for its
bucket: local hour of day x weekday/weekend (48 buckets, :mod:`detectors.peers`); a bucket's first
``1 / alpha`` observations are plainly averaged, so a new baseline is not biased towards zero. Each event is
checked as its hour's count grows:

``volume``  count >= ``min_events`` and z = (count - mean) / sqrt(var + ``min_variance``) >=
            ``z_threshold``; if a baseline for the user's peer group (``team/role``, reference kind
            ``peer``) is available, the count must also be at least ``peer_z_threshold`` standard
            deviations above the peer mean for that bucket (unusual for the user AND for the job)
``hours``   count >= ``off_hours_min_events`` in a bucket whose mean is below ``off_hours_max_mean``,
            unless the peer group works that hour (``off_hours_peer_usual_mean``; with
            ``off_hours_peer_spread_h``, or the hours either side, weekday or weekend)
            (hours this user does not work)

No alert during the first ``warmup_days`` after the user was first seen. Hits fold per rule per
``suppress_s``.

State (bounded, about 0.45 KB after two months of office hours): per bucket its observation count,
mean and variance (kept to ``PLACES`` decimals: far finer than a count of events), packed as two
texts (``z`` and ``k``, see :func:`pack_baseline`), the first-seen time, the last closed hour, counts
of the hours still open (at most ``grace_s / 3600 + 2``), the open alert windows. It does not expire
while the user is active (the baseline is the point); after ``forget_days`` without events, or once it
is older than ``max_age_days`` (the retention window), it is reset and warm-up starts again. A
baseline stored by an earlier version as three lists (``m``, ``v``, ``k``) is read the same and packed
when next used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from .base import Clock, DetectorConfig, Needs
from .event import Event
from .peers import BUCKETS, HOUR, MAX_GAP_HOURS, bucket_of, hour_of, zone
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, when

PLACES = 4
"""Decimals a bucket's mean and variance are kept to: rounded as each hour is folded in (not when
stored), so the state and the alerts do not depend on how the stream is cut into batches."""

QUARTER = 900.0

SCALE = 10 ** PLACES
"""A mean or variance is packed as the whole number ``round(x * SCALE)`` when that reads back as
exactly ``x`` (always for values rounded to ``PLACES`` decimals below ~10**11)."""

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
"""Base-64 digits of the packed numbers (none of them ``,`` ``.`` ``:``, which separate them)."""

_VALUE = {c: i for i, c in enumerate(DIGITS)}


_PAIR = {a + b: i * 64 + j for i, a in enumerate(DIGITS) for j, b in enumerate(DIGITS)}


def _digits(n: int) -> str:
    """``n`` (>= 0) in base 64, most significant digit first."""
    if n < 4096:
        return DIGITS[n] if n < 64 else DIGITS[n >> 6] + DIGITS[n & 63]
    if n < 262144:
        return DIGITS[n >> 12] + DIGITS[(n >> 6) & 63] + DIGITS[n & 63]
    out = []
    while n:
        n, r = divmod(n, 64)
        out.append(DIGITS[r])
    return "".join(reversed(out))


def _number(text: str) -> int:
    size = len(text)
    if size == 2:
        return _PAIR[text]
    if size == 1:
        return _VALUE[text]
    if size == 3:
        return _VALUE[text[0]] * 4096 + _PAIR[text[1:]]
    n = 0
    for c in text:
        n = n * 64 + _VALUE[c]
    return n


def _fixed(x: float) -> int | None:
    """``x`` as a whole number of 1/SCALE when that reads back exactly (not -0.0, inf, nan or below 0)."""
    if x == 0:
        return 0 if math.copysign(1.0, x) > 0 else None
    if not 0 < x < 1e300:
        return None
    n = round(x * SCALE)
    return n if n / SCALE == x else None


def bucket_token(m: float, v: float) -> str:
    """One bucket's mean and variance: empty when both are 0 (most of the night for a day worker),
    else ``m`` then ``v`` in 1/SCALE units, in base 64 (:data:`DIGITS`), the shorter left-padded with
    ``0`` so that each is half the token. A value that is not an exact fixed-point number (never, from
    :meth:`UnusualVolume._close`) is kept as Python's shortest repr: ``m:v``."""
    fm, fv = _fixed(m), _fixed(v)
    if fm is None or fv is None:
        return f"{m!r}:{v!r}"
    if not fm and not fv:
        return ""
    dm, dv = _digits(fm), _digits(fv)
    if len(dm) != len(dv):
        width = max(len(dm), len(dv))
        return dm.rjust(width, "0") + dv.rjust(width, "0")
    return dm + dv


def read_token(token: str) -> tuple[float, float]:
    """(mean, variance) of one :func:`bucket_token`."""
    if not token:
        return 0.0, 0.0
    if ":" in token:
        m, v = token.split(":")
        return float(m), float(v)
    half = len(token) // 2
    return _number(token[:half]) / SCALE, _number(token[half:]) / SCALE


def pack_counts(ks: Sequence[int]) -> str:
    """The buckets' observation counts, run-length coded: runs joined by commas, each ``k`` or
    ``k*length`` in base 64 (all 48 buckets of a day worker in ~20 characters). Most people's counts
    are those of others who started in the same hour: recent texts are kept (:data:`_COUNTS_KEPT`)."""
    key = tuple(ks)
    text = _count_texts.get(key)
    if text is None:
        runs = []
        prev, n = ks[0], 0
        for k in ks:
            if k == prev:
                n += 1
                continue
            runs.append(_digits(prev) if n == 1 else f"{_digits(prev)}*{_digits(n)}")
            prev, n = k, 1
        runs.append(_digits(prev) if n == 1 else f"{_digits(prev)}*{_digits(n)}")
        text = ",".join(runs)
        if len(_count_texts) >= _COUNTS_KEPT:
            _count_texts.clear()
        _count_texts[key] = text
    return text


def unpack_counts(text: str) -> list[int]:
    ks = _count_lists.get(text)
    if ks is None:
        got: list[int] = []
        for run in text.split(","):
            if "*" in run:
                k, n = run.split("*")
                got += [_number(k)] * _number(n)
            else:
                got.append(_number(run))
        if len(got) != BUCKETS:
            raise ValueError(f"unusual_volume: {len(got)} bucket counts in a baseline, not {BUCKETS}")
        ks = tuple(got)
        if len(_count_lists) >= _COUNTS_KEPT:
            _count_lists.clear()
        _count_lists[text] = ks
    return list(ks)


_COUNTS_KEPT = 4096
"""Count texts (and their lists) kept per process, each way: ~2 MB at most."""
_count_texts: dict[tuple[int, ...], str] = {}
_count_lists: dict[str, tuple[int, ...]] = {}


def pack_baseline(ks: Sequence[int], ms: Sequence[float], vs: Sequence[float]) -> dict[str, str]:
    """The 48 buckets as stored: ``z``, their :func:`bucket_token` joined by commas (one bucket can be
    read and replaced without decoding the others), and ``k``, their :func:`pack_counts` (a day worker's
    two months: ~330 characters, against ~750 as three JSON lists). Read back exactly by
    :func:`baseline_lists`."""
    return {"z": ",".join(map(bucket_token, ms, vs)), "k": pack_counts(ks)}


def baseline_lists(st: dict[str, Any]) -> tuple[list[int], list[float], list[float]]:
    """(counts, means, variances) of a stored baseline ``b``, packed or as an earlier version kept it."""
    if "z" not in st:
        return list(st["k"]), list(st["m"]), list(st["v"])
    ms: list[float] = []
    vs: list[float] = []
    for token in st["z"].split(","):
        m, v = read_token(token)
        ms.append(m)
        vs.append(v)
    return unpack_counts(st["k"]), ms, vs


def _packed(st: dict[str, Any]) -> dict[str, Any]:
    """A baseline stored as three lists (before ``z``), packed; other keys as they were."""
    out = {key: value for key, value in st.items() if key not in ("m", "v", "k")}
    out.update(pack_baseline(st["k"], st["m"], st["v"]))
    return out


EMPTY = pack_baseline([0] * BUCKETS, [0.0] * BUCKETS, [0.0] * BUCKETS)
"""A new baseline: no observation in any bucket."""


@dataclass(frozen=True)
class UnusualVolumeConfig(DetectorConfig):
    warmup_days: int = 14
    """Days of a person's history before their own hourly baseline is used (peers' until then)."""
    alpha: float = 0.05
    """Weight of each new hourly observation in the running mean/variance of its bucket."""
    z_threshold: float = 4.0
    """Standard deviations above the person's own mean for that hour that raise an alert."""
    min_events: int = 50
    """No volume alert for an hour with fewer events than this."""
    min_variance: float = 4.0
    """Added to the variance, so a near-constant baseline does not make small changes look extreme."""
    peer_z_threshold: float = 3.0
    """Standard deviations above the peer group's mean that raise an alert while the person is warming up."""
    off_hours_min_events: int = 10
    """Events in an hour the person (and their peers) rarely work needed to raise an off-hours alert."""
    off_hours_max_mean: float = 0.05
    """An hour whose mean is at most this is one the person rarely works."""
    off_hours_peer_usual_mean: float = 0.03
    """No ``hours`` alert in an hour the user's peer group works (peer mean per member at least this;
    0: ignore peers): a detective's first on-call night is the job, not misuse."""
    off_hours_peer_spread_h: int = 0
    """The peer group also "works the hour" when it works the hours up to this many either side, on
    weekdays or at weekends (0: that bucket only). On-call rotas move round the week and the night, and
    a small group's baseline of a few weeks holds few nights of each bucket (a zero there is no sample,
    not "never")."""
    timezone: str = "Europe/London"
    forget_days: int = 90
    """A baseline idle for this many days starts again."""
    max_age_days: int = 730
    """A baseline started longer ago than this is reset (explicit expiry: no state derived from events
    older than the retention window survives); warm-up then starts again."""
    grace_s: int = 3600
    suppress_s: int = 86400


class UnusualVolume(RuleDetector):
    id = "unusual_volume"
    version = 1
    summary = "Far more activity than the user's (and their peers') baseline for that hour, or work at unusual hours."
    Config = UnusualVolumeConfig
    config: UnusualVolumeConfig

    def needs(self) -> Needs:
        return Needs()  # every event counts, but nothing to do on a tick without state

    @cached_property
    def _limits(self) -> tuple[float, float, float]:
        cfg = self.config
        return cfg.forget_days * 86400, cfg.max_age_days * 86400, cfg.warmup_days * 86400

    @cached_property
    def _buckets(self) -> dict[float, int]:
        return {}

    def _bucket_of(self, ts: float) -> int:
        """:func:`detectors.peers.bucket_of`, cached per quarter hour of UTC when the zone's offset is a
        whole number of quarter hours all through it (always, in practice)."""
        q = ts // QUARTER
        if ts - q * QUARTER > QUARTER - 0.001:  # datetime rounds to the microsecond: play safe at the edge
            return bucket_of(ts, self.config.timezone)
        cache = self._buckets
        b = cache.get(q)
        if b is None:
            tz = zone(self.config.timezone)
            first = datetime.fromtimestamp(q * QUARTER, tz)
            offset = first.utcoffset()
            if (offset is None or offset.total_seconds() % QUARTER
                    or datetime.fromtimestamp(q * QUARTER + QUARTER - 0.001, tz).utcoffset() != offset):
                return bucket_of(ts, self.config.timezone)
            b = first.hour + (24 if first.weekday() >= 5 else 0)
            if len(cache) >= 4096:
                cache.clear()
            cache[q] = b
        return b

    def _close(self, st: dict[str, Any], upto: float) -> None:
        """Fold the hours after the last closed one up to ``upto`` (zeros included) into the baseline
        (:func:`detectors.peers.closing_hours` and :func:`detectors.peers.ewma`, inlined)."""
        alpha0 = self.config.alpha
        open_hours: list[list[float]] = st["h"]  # sorted by hour
        k = 0
        for x in open_hours:
            if x[0] > upto:
                break
            k += 1
        counts = dict(open_hours[:k]) if k else None  # type: ignore[arg-type]
        if k:
            del open_hours[:k]
        parts = st["z"].split(",")
        ks = unpack_counts(st["k"])
        touched: dict[int, list[float]] = {}  # bucket -> [mean, variance], packed once at the end
        cache = self._buckets
        first = max(st["c"] + HOUR, upto - (MAX_GAP_HOURS - 1) * HOUR)
        for i in range(max(int(round((upto - first) / HOUR)) + 1, 0)):
            h = first + i * HOUR
            b = cache.get(h // QUARTER)  # self._bucket_of(h): an hour start is never near a quarter's end
            if b is None:
                b = self._bucket_of(h)
            x = touched.get(b)
            if x is None:
                x = touched[b] = list(read_token(parts[b]))
            n = ks[b] + 1
            if n > 10_000:
                n = 10_000
            ks[b] = n
            a = 1 / n
            alpha = alpha0 if alpha0 >= a else a  # a plain average until 1/alpha observations, then EWMA
            mean = x[0]
            diff = (counts.get(h, 0) if counts else 0) - mean
            incr = alpha * diff
            x[0] = round(mean + incr, PLACES)
            x[1] = round((1 - alpha) * (x[1] + diff * incr), PLACES)
        if touched:
            for b, (mean, var) in touched.items():
                parts[b] = bucket_token(mean, var)
            st["z"] = ",".join(parts)
            st["k"] = pack_counts(ks)
        st["c"] = upto

    def _quick(self, events: Sequence[Event], st: dict[str, Any], newest: float) -> float | None:
        """The common batch in one light pass, with the same outcome as :meth:`scan`'s loop: events in
        time order from the watermark ``newest`` on (so none is late), no reset, no hour that could
        reach the lowest alert threshold past warm-up, and the hours to close within the gap cap.
        Returns the new watermark, or None (and changes nothing) when the batch is not like that."""
        ts = events[0].ts
        last, first = st["l"], st["f"]
        forget_s, max_age_s, warmup_s = self._limits
        if ts < newest or ts - last > forget_s:
            return None
        floor = math.floor
        counts: dict[float, int] = {}
        top = ts
        for ev in events:
            ts = ev.ts
            if ts < top:
                return None  # out of order
            top = ts
            h = floor(ts / HOUR) * HOUR  # hour_of(ts)
            counts[h] = counts.get(h, 0) + 1
        if top - events[0].ts > forget_s or top - first > max_age_s:
            return None  # a gap or an age that may reset the baseline
        open_hours: list[list[Any]] = st["h"]  # every hour in it is at or before the first event's
        if top - first >= self.config.warmup_days * 86400:  # some event may be past warm-up
            cfg = self.config
            least = min(cfg.min_events, cfg.off_hours_min_events)
            held = open_hours[-1] if open_hours else None
            for h, n in counts.items():
                if n + (held[1] if held is not None and held[0] == h else 0) >= least:
                    return None  # may be judged: the baseline must be as it was then
        closed = st["c"]
        upto = floor((top - self.config.grace_s) / HOUR) * HOUR - HOUR  # hour_of(newest - grace) - HOUR
        if upto > closed and upto - (MAX_GAP_HOURS - 1) * HOUR > closed + HOUR:
            return None  # closing in steps would fold hours one close skips
        for h, n in counts.items():  # ascending, and none before the last open hour
            held = open_hours[-1] if open_hours else None
            if held is not None and held[0] == h:
                held[1] += n
            else:
                open_hours.append([h, n])
        if top > last:
            st["l"] = top
        if upto > closed:
            self._close(st, upto)
        return top

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        _, found = self.scan(subject, (ev,), (newest,), state, ref, newest)
        return [hit for hit, _ in found] if found else ()

    def scan(self, subject: str, events: Sequence[Event], marks: Sequence[float] | None,
             state: dict[str, Any], ref: Reference, newest: float | None
             ) -> tuple[float | None, list[tuple[Hit, float]] | None]:
        """:meth:`_scan` on a packed baseline (one stored by an earlier version is packed first)."""
        st = state.get("b")
        if st is not None and "z" not in st:
            state["b"] = _packed(st)
        return self._scan(subject, events, marks, state, ref, newest)

    def _scan(self, subject: str, events: Sequence[Event], marks: Sequence[float] | None,
              state: dict[str, Any], ref: Reference, newest: float | None
              ) -> tuple[float | None, list[tuple[Hit, float]] | None]:
        """Every event, in one loop (the detector sees all of a user's events). Checks whose outcome
        is certain are skipped: the close check while the watermark is over a second short of the next
        hour to close, the reset check while the event is over a second short of it. Closing hours is
        deferred (``pending``) until the baseline is read or the batch ends, which
        folds the same hours in the same order unless the gap cap (MAX_GAP_HOURS) would cut it."""
        st = state.get("b")
        if st is not None and marks is None and newest is not None:
            top = self._quick(events, st, newest)
            if top is not None:
                return top, None
        cfg = self.config
        forget_s, max_age_s, warmup_s = self._limits
        grace_s = cfg.grace_s
        least = min(cfg.min_events, cfg.off_hours_min_events)
        floor = math.floor
        found: list[tuple[Hit, float]] | None = None
        if st is not None:
            last, first, closed = st["l"], st["f"], st["c"]
            close_at = (floor(closed / HOUR) + 2) * HOUR + grace_s - 1.0
            reset_at = min(last + forget_s, first + max_age_s) - 1.0  # no reset for an earlier ts
        pending: float | None = None  # hours up to this are closed (``closed``) but not yet folded
        for i, ev in enumerate(events):
            ts = ev.ts
            at = ts if marks is None else marks[i]
            if newest is None or at > newest:
                newest = at
            if st is None or ts >= reset_at and (ts - last > forget_s or ts - first > max_age_s):
                closed = hour_of(ts) - HOUR
                st = state["b"] = {**EMPTY, "f": ts, "l": ts, "c": closed, "h": []}
                last = first = ts
                pending = None  # the old baseline is gone
                reset_at = min(last + forget_s, first + max_age_s) - 1.0
                close_at = (floor(closed / HOUR) + 2) * HOUR + grace_s - 1.0
            elif ts > last:
                last = st["l"] = ts
            if newest >= close_at:  # else hour_of(newest - grace_s) - HOUR cannot be after closed
                upto = floor((newest - grace_s) / HOUR) * HOUR - HOUR  # hour_of(newest - grace_s) - HOUR
                if upto > closed:
                    if pending is not None and upto - (MAX_GAP_HOURS - 1) * HOUR > st["c"] + HOUR:
                        self._close(st, pending)  # one close to upto would skip hours these fold
                    pending = closed = upto
                    close_at = (floor(closed / HOUR) + 2) * HOUR + grace_s - 1.0
                    reset_at = min(last + forget_s, first + max_age_s) - 1.0  # now and then
            h = floor(ts / HOUR) * HOUR  # hour_of(ts)
            if h <= closed:
                continue  # too late: that hour has been folded into the baseline
            open_hours = st["h"]
            x = open_hours[-1] if open_hours else None
            if x is not None and x[0] == h:
                x[1] += 1
                count = x[1]
            elif x is None or x[0] < h:  # a new latest hour: the list stays sorted
                open_hours.append([h, 1])
                count = 1
            else:
                for x in open_hours:
                    if x[0] == h:
                        x[1] += 1
                        count = x[1]
                        break
                else:
                    open_hours.append([h, 1])
                    open_hours.sort()
                    count = 1
            if count < least or ts - first < warmup_s:
                continue
            if pending is not None:
                self._close(st, pending)
                pending = None
            for hit in self._judge(subject, ev, st, ref, count, h):
                if found is None:
                    found = []
                found.append((hit, newest))
        if pending is not None:
            self._close(st, pending)
        return newest, found

    def _judge(self, subject: str, ev: Event, st: dict[str, Any], ref: Reference, count: int,
               h: float) -> list[Hit]:
        cfg = self.config
        ts = ev.ts
        volume = count >= cfg.min_events
        hours = count >= cfg.off_hours_min_events
        b = self._bucket_of(ts)
        mean, var = read_token(st["z"].split(",")[b])
        sd = math.sqrt(var + cfg.min_variance)
        z = (count - mean) / sd
        out: list[Hit] = []
        if volume and z >= cfg.z_threshold:
            person = ref.person(subject)
            group = person.peer_group if person else None
            peer = ref.peers.get(group) if group else None
            peer_text, peer_facts = "", {}
            if peer is not None and b < len(peer.mean):
                pz = (count - peer.mean[b]) / math.sqrt(peer.std[b] ** 2 + cfg.min_variance)
                if pz < cfg.peer_z_threshold:
                    peer_z_ok = False
                else:
                    peer_z_ok = True
                    peer_text = (f" Their peer group ({group}) averages {peer.mean[b]:.1f} events in such an "
                                 f"hour (z = {pz:.1f}, threshold {cfg.peer_z_threshold}).")
                    peer_facts = {"peer_group": group, "peer_mean": peer.mean[b], "peer_z": round(pz, 2)}
            else:
                peer_z_ok = True
            if peer_z_ok:
                out.append(Hit(
                    key="volume", event=ev, score=min(95.0, 45 + 6 * (z - cfg.z_threshold) + 10),
                    title=f"Unusual volume: {count} events in one hour (usually {mean:.1f})",
                    explanation=(
                        f"This user had {count} events in the hour from {when(h)}; their baseline for that "
                        f"hour of the {'weekend' if b >= 24 else 'week'} is {mean:.1f} (z = {z:.1f}, threshold "
                        f"{cfg.z_threshold}, at least {cfg.min_events} events).{peer_text}"
                    ),
                    facts={"rule": "volume", "count": count, "mean": round(mean, 3), "z": round(z, 2),
                           "bucket": b, **peer_facts},
                ))
        if hours and mean < cfg.off_hours_max_mean and not self._job_works(subject, ref, b):
            out.append(Hit(
                key="hours", event=ev, score=50.0,
                title=f"Activity at unusual hours: {count} events",
                explanation=(
                    f"This user had {count} events in the hour from {when(h)}, a time at which they are "
                    f"almost never active (baseline {mean:.2f} events; thresholds: at least "
                    f"{cfg.off_hours_min_events} events where the baseline is below {cfg.off_hours_max_mean})."
                ),
                facts={"rule": "hours", "count": count, "mean": round(mean, 3), "bucket": b},
            ))
        return out

    def _job_works(self, subject: str, ref: Reference, b: int) -> bool:
        """Whether the user's peer group works that hour (on-call nights, rotas): peer mean per member
        at least ``off_hours_peer_usual_mean`` (0: never asked)."""
        least = self.config.off_hours_peer_usual_mean
        if least <= 0 or not ref.peers:
            return False
        person = ref.person(subject)
        peer = ref.peers.get(person.peer_group) if person is not None and person.peer_group else None
        if peer is None or b >= len(peer.mean):
            return False
        spread = self.config.off_hours_peer_spread_h
        if not spread or len(peer.mean) != BUCKETS:
            return peer.mean[b] >= least
        hour = b % 24
        return any(peer.mean[day + (hour + d) % 24] >= least for day in (0, 24) for d in range(-spread, spread + 1))

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        return "b" in state
