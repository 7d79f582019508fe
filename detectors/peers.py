"""Hour buckets, exponentially weighted statistics and the peer-group baseline aggregation.

A user's activity is bucketed by local hour of day and weekday/weekend: 48 buckets
(:func:`bucket_of`), so a baseline is 48 means and variances whatever the history length.

Peer baselines need every member's hourly counts, i.e. state keyed by peer group rather than by
user, which the per-user detector state cannot hold. :class:`PeerAggregator` is that second,
group-keyed computation, pure like a detector: the runtime re-keys events by peer group (``team/role``
from the staff directory), keeps this aggregator's state in a table keyed by group, and publishes each
returned record as reference kind ``peer`` (a compacted topic), where :mod:`detectors.unusual_volume`
reads it through the reference holder. State per group: at most ``members x (grace_s / 3600 + 2)``
open hourly counts plus 48 x 2 running figures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .event import Event

BUCKETS = 48
HOUR = 3600.0
MAX_GAP_HOURS = 24 * 14
"""Hours without events folded as zeros one by one; longer gaps fold only their last this many."""


@lru_cache(maxsize=16)
def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def hour_of(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


def bucket_of(ts: float, tz: str = "Europe/London") -> int:
    """0-23: the local hour on a weekday; 24-47: on a Saturday or Sunday."""
    local = datetime.fromtimestamp(ts, zone(tz))
    return local.hour + (24 if local.weekday() >= 5 else 0)


def ewma(mean: float, var: float, x: float, alpha: float) -> tuple[float, float]:
    """One observation into an exponentially weighted mean and variance (West's update)."""
    diff = x - mean
    incr = alpha * diff
    return mean + incr, (1 - alpha) * (var + diff * incr)


def closing_hours(last_closed: float, upto: float) -> list[float]:
    """Hour starts after ``last_closed`` up to ``upto`` inclusive, the gap capped at MAX_GAP_HOURS."""
    first = max(last_closed + HOUR, upto - (MAX_GAP_HOURS - 1) * HOUR)
    n = int(round((upto - first) / HOUR)) + 1
    return [first + i * HOUR for i in range(max(n, 0))]


class PeerAggregator:
    """Group-keyed: ``process(group, events, members, state)`` -> (state, peer record or None)."""

    def __init__(self, alpha: float = 0.05, grace_s: float = 3600, timezone: str = "Europe/London") -> None:
        self.alpha, self.grace_s, self.timezone = alpha, grace_s, timezone

    def process(self, group: str, events: Sequence[Event], members: int, state: dict[str, Any] | None
                ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        st = dict(state) if state else {"m": [0.0] * BUCKETS, "q": [0.0] * BUCKETS, "o": [], "c": None, "n": None}
        if "k" not in st:
            st["k"] = [0] * BUCKETS  # observations per bucket (a plain average until 1/alpha of them)
        open_hours: list[list[Any]] = st["o"]  # [[hour start, {user hash: count}], …]
        changed = False
        members = max(members, 1)
        for ev in events:
            st["n"] = ev.ts if st["n"] is None else max(st["n"], ev.ts)
            if st["c"] is None:
                st["c"] = hour_of(ev.ts) - HOUR
            upto = hour_of(st["n"] - self.grace_s) - HOUR
            if upto > st["c"]:
                counts = {h: users for h, users in open_hours}
                for h in closing_hours(st["c"], upto):
                    xs = list(counts.get(h, {}).values())
                    b = bucket_of(h, self.timezone)
                    m = sum(xs) / members
                    m2 = sum(x * x for x in xs) / members
                    st["k"][b] = min(st["k"][b] + 1, 10_000)
                    alpha = max(self.alpha, 1 / st["k"][b])  # unbiased while young, then EWMA
                    st["m"][b] += alpha * (m - st["m"][b])
                    st["q"][b] += alpha * (m2 - st["q"][b])
                st["c"] = upto
                open_hours = [o for o in open_hours if o[0] > upto]
                changed = True
            h = hour_of(ev.ts)
            if h <= st["c"]:
                continue  # too late: that hour is closed
            user = hashlib.blake2b(ev.user_id.encode(), digest_size=6).hexdigest()
            for o in open_hours:
                if o[0] == h:
                    o[1][user] = o[1].get(user, 0) + 1
                    break
            else:
                open_hours.append([h, {user: 1}])
        st["o"] = open_hours
        record = None
        if changed:
            std = [math.sqrt(max(q - m * m, 0.0)) for m, q in zip(st["m"], st["q"], strict=True)]
            record = {"group": group, "mean": [round(m, 4) for m in st["m"]],
                      "std": [round(s, 4) for s in std], "members": members}
        return st, record
