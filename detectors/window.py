"""Sliding windows of event time as sorted ``[[bucket_start, count], …]`` lists (JSON, bounded by
``(window_s + grace_s) / bucket_s + 1`` entries once pruned). A window "at" time t covers the buckets
from ``bucket(t) - window_s + bucket_s`` to ``bucket(t)``, so its edge is exact to ``bucket_s``."""

from __future__ import annotations

import bisect
import math


def bucket_of(ts: float, bucket_s: float) -> float:
    return float(math.floor(ts / bucket_s) * bucket_s)


def add(buckets: list[list[float]], ts: float, bucket_s: float, n: float = 1) -> None:
    b = bucket_of(ts, bucket_s)
    i = bisect.bisect_left(buckets, [b])
    if i < len(buckets) and buckets[i][0] == b:
        buckets[i][1] += n
    else:
        buckets.insert(i, [b, n])


def total(buckets: list[list[float]], at: float, window_s: float, bucket_s: float) -> float:
    end = bucket_of(at, bucket_s)
    return _sum(buckets, end - window_s + bucket_s, end)


def _sum(buckets: list[list[float]], start: float, end: float) -> float:
    """Sum of the counts of buckets from ``start`` to ``end`` inclusive (``buckets`` sorted)."""
    out: float = 0
    for i in range(bisect.bisect_left(buckets, [start]), len(buckets)):
        b = buckets[i]
        if b[0] > end:
            break
        out += b[1]
    return out


def prune(buckets: list[list[float]], horizon: float, bucket_s: float) -> list[list[float]]:
    """Drop buckets that end at or before ``horizon``."""
    return [b for b in buckets if b[0] + bucket_s > horizon]


def peak(buckets: list[list[float]], at: float, window_s: float, bucket_s: float) -> float:
    """The largest count of any window containing time ``at``: windows ending at its bucket or at a
    later bucket up to a window on. In order this is ``total(at)``; for an event that arrives late
    it also counts the newer events it now sits next to."""
    first = bucket_of(at, bucket_s)
    best = _sum(buckets, first - window_s + bucket_s, first)
    last = first + window_s - bucket_s
    for i in range(bisect.bisect_right(buckets, [first, math.inf]), len(buckets)):
        e = buckets[i][0]
        if e > last:
            break
        if e > first:
            end = bucket_of(e, bucket_s)
            n = _sum(buckets, end - window_s + bucket_s, end)
            if n > best:
                best = n
    return best
